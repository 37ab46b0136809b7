"""Build a :class:`TalosClient` from what a user passes on the command line.

The same options every Talos task accepts: ``--talosconfig``, ``--context``,
``--endpoints``, ``--nodes`` and ``--insecure`` (maintenance mode: talk to the given
nodes directly, no client certificate, no server verification).
"""

from __future__ import annotations

from collections.abc import Sequence

from taltasks.errors import InputError
from taltasks.talos.client import TalosClient
from taltasks.talos.config import Context, TalosConfig


def connect(
    *,
    talosconfig: str | None = None,
    context: str | None = None,
    endpoints: Sequence[str] = (),
    nodes: Sequence[str] = (),
    insecure: bool = False,
) -> TalosClient:
    if insecure:
        targets = list(endpoints) or list(nodes)
        if not targets:
            raise InputError(
                "--insecure needs the node addresses",
                hint="pass --nodes IP (maintenance-mode nodes are dialled directly)",
            )
        ctx = Context(name="maintenance", endpoints=targets)
        return TalosClient.from_context(ctx, insecure=True, nodes=[])
    cfg = TalosConfig.load(talosconfig)
    ctx = cfg.context(context)
    if not (endpoints or ctx.endpoints):
        raise InputError(
            f"context {ctx.name!r} has no endpoints",
            where=str(cfg.path),
            hint="set them with `invoke talos.config.endpoints IP...` or pass --endpoints",
        )
    return TalosClient.from_context(ctx, endpoints=list(endpoints) or None, nodes=list(nodes) or None)
