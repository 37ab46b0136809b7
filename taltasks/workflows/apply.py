"""``talos.apply-node``: send a node its generated machine config, and see it through.

The config is the one ``invoke configure`` wrote (``talos/clusterconfig/<cluster>-<host>.yaml``),
or rendered in memory from the repo when that file does not exist. Whether the node is
in maintenance mode is found out, not asked: the talosconfig's mutual TLS is tried first;
a node that refuses it but answers an unauthenticated Version with Unimplemented is in
maintenance mode (``--insecure`` skips the probe). Then:

* ``--dry-run``: Talos's own dry run — which mode it would use and the config diff —
  with secret values redacted; nothing changes;
* otherwise the apply itself. When it reboots the node (mode ``reboot``, or ``auto``
  resolving to a reboot, or a maintenance-mode install) the node is followed until it is
  back: running and ready with a new boot id for a configured node, and running under
  its new identity (reachable with the talosconfig) after an install.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from taltasks.errors import ConnectionFailed
from taltasks.events import NULL, Emitter
from taltasks.model import Cluster, Node

if TYPE_CHECKING:
    from taltasks.talos.config import Context

MODES = ("auto", "reboot", "no-reboot", "staged", "try")


@dataclass(frozen=True)
class ApplyOptions:
    mode: str = "auto"
    dry_run: bool = False
    insecure: bool = False  # the node is in maintenance mode: skip the probe
    timeout: float = 600.0  # for the node to come back after a reboot


@dataclass
class ApplyOutcome:
    node: str
    config_source: str
    maintenance: bool
    mode: str  # what Talos resolved: REBOOT, NO_REBOOT, STAGED, TRY; INSTALL in maintenance mode
    details: str
    rebooted: bool = False
    seconds: float = 0.0


def node_config(root: Path, cluster: Cluster, node: Node) -> tuple[bytes, str]:
    """The node's machine config and where it came from."""
    from taltasks.workflows.configure import OUTPUT_DIR, output_name

    path = Path(root) / OUTPUT_DIR / output_name(cluster, node)
    if path.exists():
        return path.read_bytes(), str(OUTPUT_DIR / path.name)
    from taltasks.machineconfig.render import Renderer
    from taltasks.secrets.store import SecretStore

    return Renderer(cluster, SecretStore(Path(root)).load()).render(
        node
    ), "rendered from talos/ (not written)"


def in_maintenance(context: Context, ip: str) -> bool:
    """True when the node at ``ip`` is in maintenance mode (see the module docstring)."""
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import Context as Ctx
    from taltasks.talos.results import TalosCallError

    try:
        with TalosClient.from_context(context, endpoints=[ip], nodes=[], connect_timeout=5.0) as secure:
            [reply] = secure.version(None)
            if reply.ok:
                return False
    except ConnectionFailed as refused:
        try:
            with TalosClient.from_context(
                Ctx("maintenance", endpoints=[ip]), insecure=True, nodes=[]
            ) as bare:
                [reply] = bare.version(None)
        except ConnectionFailed:
            raise refused from None
        except TalosCallError as exc:
            if exc.code == "UNIMPLEMENTED":
                return True
            raise
        if reply.ok or (reply.error is not None and reply.error.code == "UNIMPLEMENTED"):
            return True
        raise refused from None
    return False


def apply_node(
    root: Path,
    cluster: Cluster,
    name: str,
    context: Context,
    options: ApplyOptions = ApplyOptions(),
    *,
    emitter: Emitter = NULL,
) -> ApplyOutcome:
    from taltasks.errors import InputError

    if options.mode not in MODES:
        raise InputError(f"unknown apply mode {options.mode!r}", hint=f"use one of: {', '.join(MODES)}")
    node = cluster.node(name)
    data, source = node_config(root, cluster, node)
    maintenance = options.insecure or in_maintenance(context, node.ip)
    if not maintenance:  # even a dry run: Talos answers ApplyConfiguration to os:admin only
        from taltasks.talos import roles

        roles.require_context(context, roles.ADMIN_ONLY, f"applying a config to {node.hostname}")
    where = "maintenance mode" if maintenance else "configured"
    emitter.emit("info", f"{node.hostname} ({node.ip}) is {where}; config: {source}", node=node.hostname)
    started = time.monotonic()
    if maintenance:
        outcome = _apply_maintenance(context, node, data, options, emitter)
    else:
        outcome = _apply_configured(context, node, data, options, emitter)
    outcome.config_source = source
    outcome.seconds = round(time.monotonic() - started, 3)
    return outcome


def _apply_configured(
    context: Context, node: Node, data: bytes, options: ApplyOptions, emitter: Emitter
) -> ApplyOutcome:
    from taltasks.talos import actions
    from taltasks.talos.client import TalosClient
    from taltasks.talos.results import ActionAck
    from taltasks.workflows.configure import redact

    host = node.hostname
    with TalosClient.from_context(context, nodes=[]) as client:
        [preview] = client.apply_configuration(data, nodes=[node.ip], mode=options.mode, dry_run=True)
        plan = preview.unwrap("ApplyConfiguration")
        if options.dry_run:
            return ApplyOutcome(host, "", False, plan.mode, redact(plan.mode_details))
        if plan.mode != "REBOOT":
            with emitter.step("apply", f"applying the config to {host} ({plan.mode.lower()})", node=host):
                [reply] = client.apply_configuration(data, nodes=[node.ip], mode=options.mode)
                result = reply.unwrap("ApplyConfiguration")
            return ApplyOutcome(host, "", False, result.mode, result.mode_details)
        applied: list[str] = []

        def act() -> ActionAck:
            [reply] = client.apply_configuration(data, nodes=[node.ip], mode=options.mode)
            applied.append(reply.unwrap("ApplyConfiguration").mode_details)
            return ActionAck("")

        with emitter.step("apply", f"applying the config to {host} with a reboot", node=host):
            back = actions.follow_reboot(client, node.ip, act, timeout=options.timeout)
        emitter.emit(
            "node.done",
            f"{host} is back after {back.seconds:.1f}s, boot id {back.boot_id_after[:8]}",
            node=host,
        )
        return ApplyOutcome(host, "", False, "REBOOT", applied[0] if applied else "", rebooted=True)


def _apply_maintenance(
    context: Context, node: Node, data: bytes, options: ApplyOptions, emitter: Emitter
) -> ApplyOutcome:
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import Context as Ctx

    host = node.hostname
    if options.mode not in ("auto", "reboot", "try"):
        from taltasks.errors import InputError

        raise InputError(
            f"{host} is in maintenance mode, where mode {options.mode!r} does not exist",
            hint="use --mode auto (it installs and reboots)",
        )
    with TalosClient.from_context(Ctx("maintenance", endpoints=[node.ip]), insecure=True, nodes=[]) as bare:
        [reply] = bare.apply_configuration(data, mode=options.mode, dry_run=options.dry_run)
        result = reply.unwrap("ApplyConfiguration")
    if options.dry_run:
        return ApplyOutcome(host, "", True, "INSTALL", result.mode_details)
    with emitter.step("install", f"installing {host} and waiting for it to boot configured", node=host):
        _wait_configured(context, node, options.timeout)
    emitter.emit("node.done", f"{host} is installed and running", node=host)
    return ApplyOutcome(host, "", True, "INSTALL", result.mode_details, rebooted=True)


def _wait_configured(context: Context, node: Node, timeout: float) -> None:
    """Until the node answers the talosconfig's mutual TLS and its machine is running."""
    from taltasks.gates.talossource import ApiTalosSource
    from taltasks.talos.client import TalosClient
    from taltasks.workflows.polling import NotYet, poll_until

    def running() -> bool:
        with TalosClient.from_context(context, endpoints=[node.ip], nodes=[], connect_timeout=2.0) as c:
            state = ApiTalosSource(c, watch=False).machine(node.ip)
        if state.stage != "running":
            raise NotYet(f"stage {state.stage}")
        return True

    poll_until(
        running,
        what=f"{node.hostname} to come up configured",
        timeout=timeout,
        poll=0.2,
        node=node.hostname,
        hint="check the node's console: it may not boot the installed system, or its address changed",
    )
