"""talos.config.*: what `talosctl config contexts|context|endpoint|node` do."""

from __future__ import annotations

from taltasks.tasks._cli import command, split_list

COLLECTION = "talos.config"
_FILE = {"talosconfig": "talosconfig file (default: $TALOSCONFIG or ~/.talos/config)"}


@command(help={**_FILE, "json": "print machine-readable JSON"})
def contexts(c, talosconfig=None, json=False):
    """List the contexts of the talosconfig; the current one is marked."""
    from taltasks.talos.config import TalosConfig
    from taltasks.ui.tables import print_rows

    cfg = TalosConfig.load(talosconfig)
    rows = [
        {
            "current": "*" if name == cfg.current else "",
            "name": name,
            "endpoints": ctx.endpoints,
            "nodes": ctx.nodes,
        }
        for name, ctx in cfg.contexts.items()
    ]
    print_rows(rows, ["current", "name", "endpoints", "nodes"], as_json=json)


@command(name="use-context", help={**_FILE, "name": "context to make current"})
def use_context(c, name, talosconfig=None):
    """Make NAME the current context."""
    from taltasks.talos.config import TalosConfig

    cfg = TalosConfig.load(talosconfig)
    cfg.context(name)  # a clear error when it does not exist
    cfg.current = name
    cfg.save()
    print(f"current context is now {name!r} ({cfg.path})")


def _set_list(talosconfig, context, attr: str, values) -> None:
    from taltasks.errors import InputError
    from taltasks.talos.config import TalosConfig

    items = split_list(values)
    if attr == "endpoints" and not items:
        raise InputError(
            "give at least one endpoint", hint="invoke talos.config.endpoints 192.0.2.2,192.0.2.3"
        )
    cfg = TalosConfig.load(talosconfig)
    ctx = cfg.context(context)
    setattr(ctx, attr, items)
    cfg.save()
    print(f"{attr} of context {ctx.name!r}: {', '.join(items) or '(none)'}")


@command(
    help={
        **_FILE,
        "ips": "endpoints, comma-separated: 192.0.2.2,192.0.2.3",
        "context": "context to change (default: current)",
    },
)
def endpoints(c, ips, talosconfig=None, context=None):
    """Set the endpoints of the current (or given) context."""
    _set_list(talosconfig, context, "endpoints", ips)


@command(
    help={
        **_FILE,
        "ips": 'default target nodes, comma-separated ("" clears them)',
        "context": "context to change (default: current)",
    },
)
def nodes(c, ips, talosconfig=None, context=None):
    """Set the default target nodes of the current (or given) context."""
    _set_list(talosconfig, context, "nodes", ips)


@command(
    help={
        **_FILE,
        "path": "talosconfig whose contexts to add",
    },
)
def merge(c, path, talosconfig=None):
    """Add the contexts of PATH, like `talosctl config merge`: a name already present with
    different settings is added as NAME-1, NAME-2…; PATH's current context becomes current."""
    from pathlib import Path

    from taltasks.talos.config import TalosConfig, default_path

    target = Path(talosconfig) if talosconfig else default_path()
    cfg = TalosConfig.load(target) if target.exists() else TalosConfig(path=target)
    other = TalosConfig.load(path)
    added = cfg.merge(other)
    cfg.save()
    renamed = [name for name in added if name not in other.contexts]
    print(
        f"added {len(added)} context(s) to {cfg.path}: {', '.join(added) or '(none)'}"
        + (f" (renamed to avoid clashes: {', '.join(renamed)})" if renamed else "")
        + f"; current context is {cfg.current!r}"
    )
