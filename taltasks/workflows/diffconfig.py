"""Running machine config vs what the repository generates, per node.

The running config is read through the Talos API (the MachineConfig resource, which needs
``os:admin``); the generated one is ``talos/clusterconfig/<cluster>-<host>.yaml`` as
``invoke configure`` wrote it (or rendered on the fly when that file does not exist yet).

Each node's difference is reported twice: as meaningful settings
(:func:`taltasks.machineconfig.changes.config_changes` — a v1alpha1 section *moved* to a
1.14 document vs a value that really *changed*, and which changes take effect only at the
next reboot), and as a unified diff with secret values masked
(:mod:`taltasks.machineconfig.diff`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from taltasks.errors import TaltasksError
from taltasks.machineconfig.changes import ConfigChanges


@dataclass(frozen=True)
class NodeDiff:
    node: str
    diff: str  # "" when identical
    error: str | None = None
    changes: ConfigChanges = field(default_factory=ConfigChanges)


def diff_nodes(
    root: Path, *, node: str | None = None, talosconfig: str | Path | None = None
) -> list[NodeDiff]:
    from taltasks.machineconfig.changes import config_changes
    from taltasks.machineconfig.diff import unified
    from taltasks.model import load_cluster
    from taltasks.repo import talosconfig_path
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import TalosConfig
    from taltasks.workflows.configure import OUTPUT_DIR, output_name

    cluster = load_cluster(root)
    nodes = [cluster.node(node)] if node else cluster.nodes
    renderer = None
    cfg = TalosConfig.load(talosconfig_path(root, talosconfig))
    from taltasks.talos import roles

    roles.require_context(cfg.context(), roles.ADMIN_ONLY, "reading the running machine configs")
    out = []
    with TalosClient.from_context(cfg.context()) as tc:
        for n in nodes:
            path = root / OUTPUT_DIR / output_name(cluster, n)
            if path.exists():
                generated = path.read_bytes()
            else:
                if renderer is None:
                    from taltasks.machineconfig.render import Renderer
                    from taltasks.secrets.store import SecretStore

                    renderer = Renderer(cluster, SecretStore(root).load(env=cluster.env))
                generated = renderer.render(n)
            try:
                running = tc.get("MachineConfigs.config.talos.dev", "v1alpha1", namespace="config", node=n.ip)
            except TaltasksError as exc:
                out.append(NodeDiff(n.hostname, "", f"cannot read the running config: {exc}"))
                continue
            text = running.spec if isinstance(running.spec, str) else ""
            diff = unified(
                text,
                generated,
                fromfile=f"{n.hostname} (running)",
                tofile=f"{n.hostname} ({path.relative_to(root)})",
            )
            changes = config_changes(text, generated) if diff else ConfigChanges()
            out.append(NodeDiff(n.hostname, diff, changes=changes))
    return out
