"""``talos.apply-node``: send a node its generated machine config, and see it through.

The config is the one ``invoke configure`` wrote (``talos/clusterconfig/<cluster>-<host>.yaml``),
or rendered in memory from the repo when that file does not exist. Whether the node is
in maintenance mode is found out, not asked: the talosconfig's mutual TLS is tried first;
a node that refuses it but answers an unauthenticated Version with Unimplemented is in
maintenance mode (``--insecure`` skips the probe). Then:

* ``--dry-run``: Talos's own dry run — which mode it would use and the config diff —
  with secret values redacted; nothing changes;
* otherwise the apply itself, as the Talos version the node runs does it
  (:mod:`taltasks.talos.generations`):

  - ``auto``: what can apply live does. A change that needs a reboot (a new install disk,
    kernel modules, volumes…) reboots the node *safely* up to Talos 1.13, where Talos's
    AUTO would reboot it anyway: cordon and drain first, as ``upgrade-node`` does. Talos
    1.14 takes such a change without a reboot and lets it wait for the next boot; this
    says so — which settings, and why — and does not claim the change is in effect;
  - ``reboot`` — "apply, then reboot safely", on every version: cordon, drain, apply
    (Talos's REBOOT mode up to 1.13; 1.14 has none, so apply, then ``Reboot``), follow the
    node until it is back (running, ready, a new boot id), uncordon;
  - ``no-reboot`` / ``try``: Talos up to 1.13 refuses a change that needs a reboot; 1.14
    takes it and the outcome names what waits for the next boot; ``staged``: everything
    waits for the next boot.

Whether a change needs a reboot comes from Talos's own dry run where Talos says it (AUTO
resolving to REBOOT, up to 1.13); on 1.14, which no longer says, from comparing the
running config with the new one (:mod:`taltasks.machineconfig.changes`). Maintenance
mode is served as the node's version serves it: up to 1.12 a separate service taking
auto / reboot / try; from 1.13 apid in read-only mode, taking staged and no-reboot too
(staged: the node keeps waiting in maintenance mode for its next boot). An install is
followed until the node runs under its new identity (reachable with the talosconfig).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from taltasks.errors import ConnectionFailed
from taltasks.events import NULL, Emitter
from taltasks.model import Cluster, Node

if TYPE_CHECKING:
    from taltasks.kube.client import KubeClient
    from taltasks.model.policy import DrainPolicy
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import Context
    from taltasks.talos.generations import Generation
    from taltasks.talos.results import ApplyResult

MODES = ("auto", "reboot", "no-reboot", "staged", "try")


@dataclass(frozen=True)
class ApplyOptions:
    mode: str = "auto"
    dry_run: bool = False
    insecure: bool = False  # the node is in maintenance mode: skip the probe
    timeout: float = 600.0  # for the node to come back after a reboot
    drain_timeout: float = 600.0
    drain: DrainPolicy | None = None  # how to drain before a reboot (the upgrade policy's)


@dataclass
class ApplyOutcome:
    node: str
    config_source: str
    maintenance: bool
    mode: str  # REBOOT (applied with a safe reboot), NO_REBOOT, STAGED, TRY; INSTALL in maintenance mode
    details: str
    rebooted: bool = False
    seconds: float = 0.0
    # False when (part of) the change waits for the node's next boot: ``next_boot`` says what
    in_effect: bool = True
    next_boot: tuple[str, ...] = ()

    def summary(self) -> str:
        if self.in_effect:
            return self.details or self.mode
        return f"{self.details}; NOT in effect yet: {waits(self.next_boot)}"


def node_config(root: Path, cluster: Cluster, node: Node) -> tuple[bytes, str]:
    """The node's machine config and where it came from."""
    from taltasks.workflows.configure import OUTPUT_DIR, output_name

    path = Path(root) / OUTPUT_DIR / output_name(cluster, node)
    if path.exists():
        return path.read_bytes(), str(OUTPUT_DIR / path.name)
    from taltasks.machineconfig.render import Renderer
    from taltasks.secrets.store import SecretStore

    secrets = SecretStore(Path(root)).load(env=cluster.env)
    return Renderer(cluster, secrets).render(node), "rendered from talos/ (not written)"


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
    kube: Callable[[], KubeClient] | None = None,
) -> ApplyOutcome:
    """``kube`` connects to Kubernetes, asked only when the node is to reboot (to cordon and
    drain it first); without it such an apply is refused before anything changes."""
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
        outcome = _apply_configured(context, node, data, options, emitter, kube)
    outcome.config_source = source
    outcome.seconds = round(time.monotonic() - started, 3)
    return outcome


def _apply_configured(
    context: Context,
    node: Node,
    data: bytes,
    options: ApplyOptions,
    emitter: Emitter,
    kube: Callable[[], KubeClient] | None,
) -> ApplyOutcome:
    from taltasks.talos.client import TalosClient
    from taltasks.workflows.configure import redact

    host = node.hostname
    with TalosClient.from_context(context, nodes=[]) as client:
        gen = client.generation(node.ip)
        # Talos's REBOOT mode is never previewed (1.14 refuses it): AUTO shows the diff, and
        # up to 1.13 whether the change needs a reboot
        asked = "auto" if options.mode == "reboot" else options.mode
        [preview] = client.apply_configuration(data, nodes=[node.ip], mode=asked, dry_run=True)
        plan = preview.unwrap("ApplyConfiguration")
        later = _next_boot(client, node, data, plan, gen)
        reboot = options.mode == "reboot" or (
            options.mode == "auto" and bool(later) and gen.apply_auto_may_reboot
        )
        if options.dry_run:
            details = redact(plan.mode_details)
            waiting = () if reboot else later
            if waiting:
                details += f"\nNot in effect until the node reboots: {waits(waiting)}"
            mode = "REBOOT" if reboot else plan.mode
            return ApplyOutcome(host, "", False, mode, details, in_effect=not waiting, next_boot=waiting)
        if reboot:
            if kube is None:
                from taltasks.errors import InputError

                raise InputError(
                    f"{host} would reboot, and a reboot needs the Kubernetes API to cordon and drain the node first",
                    where=host,
                    hint="pass --kubeconfig (nothing was changed)",
                )
            return _apply_and_reboot(client, kube(), node, data, gen, later, options, emitter)
        with emitter.step("apply", f"applying the config to {host} ({plan.mode.lower()})", node=host):
            [reply] = client.apply_configuration(data, nodes=[node.ip], mode=asked)
            result = reply.unwrap("ApplyConfiguration")
        waiting = ("the whole config: staged for the next boot",) if result.mode == "STAGED" else later
        if waiting:
            emitter.emit(
                "warning",
                f"{host}: applied, but not in effect until it reboots: {waits(waiting)}"
                + (
                    ""
                    if result.mode == "STAGED"
                    else f" (reboot safely: invoke talos.apply-node --node {host} --mode reboot)"
                ),
                node=host,
                step="apply",
                next_boot=list(waiting),
            )
        return ApplyOutcome(
            host, "", False, result.mode, result.mode_details, in_effect=not waiting, next_boot=waiting
        )


def _next_boot(
    client: TalosClient, node: Node, data: bytes, plan: ApplyResult, gen: Generation
) -> tuple[str, ...]:
    """What of this change takes effect only at the node's next boot, and why. Up to 1.13
    Talos says it (AUTO resolved to REBOOT, with its reason); 1.14 no longer does, so the
    running config is compared with the new one."""
    if gen.apply_auto_may_reboot:
        if plan.mode != "REBOOT":
            return ()
        # "Dry run summary:\nApplied configuration with a reboot: <reason> (skipped in dry-run)."
        line = next((x for x in plan.mode_details.splitlines() if x.startswith("Applied configuration")), "")
        reason = line.removesuffix(" (skipped in dry-run).").partition(": ")[2]
        return (reason or "Talos says the change needs a reboot",)
    from taltasks.machineconfig.changes import config_changes

    running = client.machine_config(node.ip)
    return tuple(f"{c.subject} ({c.reboot})" for c in config_changes(running, data).reboot_only)


def waits(next_boot: tuple[str, ...]) -> str:
    return "; ".join(next_boot) or "nothing"


def _apply_and_reboot(
    client: TalosClient,
    kube: KubeClient,
    node: Node,
    data: bytes,
    gen: Generation,
    later: tuple[str, ...],
    options: ApplyOptions,
    emitter: Emitter,
) -> ApplyOutcome:
    """Apply, then reboot safely: cordon and drain first, as upgrade-node does; Talos's
    REBOOT mode where it exists (up to 1.13), else apply and ``Reboot``; follow the node
    back (running, ready, new boot id); uncordon, whatever happened."""
    from taltasks.kube.nodes import cordon, list_nodes, uncordon
    from taltasks.talos import actions
    from taltasks.talos.results import ActionAck

    host = node.hostname
    state = next((n for n in list_nodes(kube) if n.name == host), None)
    was_cordoned = state.unschedulable if state is not None else None
    if state is None:  # not registered in Kubernetes: nothing to cordon or drain
        emitter.emit("warning", f"{host} has no Kubernetes Node: rebooting without a drain", node=host)
    applied: list[ApplyResult] = []

    def act() -> ActionAck:
        mode = "reboot" if gen.apply_reboot_mode else "no-reboot"
        [reply] = client.apply_configuration(data, nodes=[node.ip], mode=mode)
        applied.append(reply.unwrap("ApplyConfiguration"))
        if gen.apply_reboot_mode:
            return ActionAck("")  # Talos reboots by itself
        return client.reboot(node=node.ip)

    try:
        if was_cordoned is not None:
            with emitter.step("cordon", f"cordoning {host}", node=host):
                cordon(kube, host, emitter=emitter)
            _drain(kube, host, options, emitter)
        how = "with a reboot" if gen.apply_reboot_mode else "then rebooting it"
        with emitter.step("apply", f"applying the config to {host} {how}", node=host):
            back = actions.follow_reboot(client, node.ip, act, timeout=options.timeout)
    finally:
        if was_cordoned is False:
            uncordon(kube, host, emitter=emitter)
    emitter.emit(
        "node.done",
        f"{host} is back after {back.seconds:.1f}s, boot id {back.boot_id_after[:8]}",
        node=host,
    )
    details = applied[0].mode_details if applied else ""
    if later:
        details += f" (rebooted for: {waits(later)})"
    return ApplyOutcome(host, "", False, "REBOOT", details, rebooted=True, next_boot=later)


def _drain(kube: KubeClient, host: str, options: ApplyOptions, emitter: Emitter) -> None:
    from taltasks.kube.drain import drain_node

    d = options.drain
    drain_node(
        kube,
        host,
        timeout=options.drain_timeout,
        retry_interval=d.retry_interval if d else 5.0,
        poll_interval=min(1.0, d.retry_interval if d else 5.0) / 4,
        grace_period_seconds=d.grace_period if d else None,
        force=d.force if d else False,
        delete_emptydir_data=d.delete_emptydir_data if d else True,
        uncordon_on_failure=False,  # ours to undo, in the caller's finally
        emitter=emitter,
    )


def _apply_maintenance(
    context: Context, node: Node, data: bytes, options: ApplyOptions, emitter: Emitter
) -> ApplyOutcome:
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import Context as Ctx

    host = node.hostname
    with TalosClient.from_context(Ctx("maintenance", endpoints=[node.ip]), insecure=True, nodes=[]) as bare:
        gen = _maintenance_generation(bare)
        if options.mode not in gen.maintenance_apply_modes:
            from taltasks.errors import InputError

            raise InputError(
                f"{host} is in maintenance mode, where this Talos takes no {options.mode!r} apply",
                where=host,
                hint=f"use --mode {' or '.join(m for m in MODES if m in gen.maintenance_apply_modes)}"
                " (auto installs and reboots)",
            )
        [reply] = bare.apply_configuration(data, mode=options.mode, dry_run=options.dry_run)
        result = reply.unwrap("ApplyConfiguration")
    if options.dry_run:
        return ApplyOutcome(host, "", True, "INSTALL", result.mode_details)
    if options.mode == "staged":
        emitter.emit("warning", f"{host}: config staged; it installs it when it next boots", node=host)
        return ApplyOutcome(
            host,
            "",
            True,
            "STAGED",
            result.mode_details,
            in_effect=False,
            next_boot=("the whole config (staged)",),
        )
    with emitter.step("install", f"installing {host} and waiting for it to boot configured", node=host):
        _wait_configured(context, node, options.timeout)
    emitter.emit("node.done", f"{host} is installed and running", node=host)
    return ApplyOutcome(host, "", True, "INSTALL", result.mode_details, rebooted=True)


def _maintenance_generation(bare: TalosClient) -> Generation:
    """A node in maintenance mode up to 1.12 answers Version with Unimplemented (to anyone
    but a SideroLink admin); from 1.13 it tells every reader its version."""
    from taltasks.talos.generations import generation
    from taltasks.talos.results import TalosCallError

    try:
        [reply] = bare.version(None)
    except TalosCallError:
        return generation("v1.12.0")
    return generation(reply.value.tag if reply.ok and reply.value is not None else "v1.12.0")


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
