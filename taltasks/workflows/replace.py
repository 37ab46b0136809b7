"""Replace a node — a dead control plane is the case that hurts — in the safe order:

1. **etcd first.** The failed member is removed while the rest still has quorum (refused
   when the member is healthy, unless forced, or when the removal would break quorum). A new
   machine cannot join while the old member holds its name and peer URL.
2. **The old node.** If it still answers, it is reset back to maintenance mode (same
   hardware, reinstalled); if it is dead, there is nothing to reset. Its Kubernetes Node
   object is deleted either way, so nothing waits on a ghost.
3. **The new machine.** It must be up in maintenance mode (at the node's address, or a
   temporary one); it gets the node's generated config, installs, boots, joins etcd
   (control planes) and registers its Node.

Each step is an event and a journal entry; a failure stops before the next step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taltasks.errors import InputError
from taltasks.events import NULL, Emitter
from taltasks.talos.client import TalosClient
from taltasks.talos.config import Context, TalosConfig


@dataclass
class ReplaceOptions:
    root: Path
    node: str
    force: bool = False  # remove the etcd member even though it looks healthy
    maintenance_ip: str | None = None  # where the new machine answers before it is configured
    talosconfig: Path | None = None
    kubeconfig: Path | None = None
    timeout: float = 900.0
    poll: float = 0.25


@dataclass
class ReplaceResult:
    node: str
    steps: list[str] = field(default_factory=list)


def _wait(what: str, probe: Callable[[], Any], options: ReplaceOptions, emitter: Emitter, node: str) -> Any:
    from taltasks.workflows.polling import poll_until

    return poll_until(
        probe, what=what, timeout=options.timeout, poll=options.poll, emitter=emitter, node=node
    )


def replace_node(options: ReplaceOptions, emitter: Emitter = NULL) -> ReplaceResult:
    from taltasks.model import load_cluster
    from taltasks.repo import kubeconfig_path, talosconfig_path
    from taltasks.talos.discovery import answering, maintenance_stage
    from taltasks.workflows import etcd as etcd_wf
    from taltasks.workflows.configure import OUTPUT_DIR, output_name
    from taltasks.workflows.journal import Journal

    cluster = load_cluster(options.root)
    node = cluster.node(options.node)
    config_file = options.root / OUTPUT_DIR / output_name(cluster, node)
    if not config_file.exists():
        raise InputError(
            "the node's generated config is missing",
            where=str(config_file.relative_to(options.root)),
            hint="run `invoke configure` first",
        )
    config = config_file.read_bytes()
    others = [n for n in cluster.control_planes if n.hostname != node.hostname]
    if node.control_plane and not others:
        raise InputError(
            f"{node.hostname} is the only control plane: there is no etcd left to replace it into",
            hint="restore the cluster from an etcd snapshot instead",
        )
    cfg = TalosConfig.load(talosconfig_path(options.root, options.talosconfig))
    from taltasks.talos import roles

    roles.require_context(cfg.context(), roles.ADMIN_ONLY, f"replacing {node.hostname}")
    result = ReplaceResult(node.hostname)
    with (
        Journal.open(options.root, "replace-node", meta={"node": node.hostname}) as journal,
        TalosClient.from_context(cfg.context(), endpoints=[n.ip for n in others] or None) as tc,
    ):

        def step(name: str, message: str) -> Any:
            journal.step(node.hostname, name, "started")
            result.steps.append(name)
            return emitter.step(name, message, node=node.hostname)

        # 1. etcd: remove the failed member while the others keep quorum
        if node.control_plane:
            survey = etcd_wf.survey(tc, [n.ip for n in others])
            present = [m for m in survey.members if m.name == node.hostname]
            if present:
                plan = etcd_wf.plan_removal(survey, node.hostname, force=options.force)
                with step("etcd", f"removing etcd member {plan.target.member.id_hex} ({plan.target.detail})"):
                    etcd_wf.remove_member(tc, plan)
                journal.step(node.hostname, "etcd", "done")
            else:
                emitter.emit("node.skipped", "no etcd member to remove", node=node.hostname)
        # 2. the old node: reset it if it still answers, and forget its Node object
        if answering(tc, [node.ip])[node.ip]:
            with step("reset", "the old machine still answers: resetting it into maintenance mode"):
                tc.reset(node=node.ip, graceful=False, reboot=True)
            journal.step(node.hostname, "reset", "done")
        else:
            emitter.emit("info", "the old machine does not answer: nothing to reset", node=node.hostname)
        kube = _kube(options, kubeconfig_path)
        if kube is not None:
            with step("node-object", "deleting its Kubernetes Node object"):
                _delete_node(kube, node.hostname)
            journal.step(node.hostname, "node-object", "done")
        # 3. the new machine: config, install, join
        target = options.maintenance_ip or node.ip
        _wait(
            f"the new machine in maintenance mode at {target}",
            lambda: maintenance_stage(target) == "maintenance",
            options,
            emitter,
            node.hostname,
        )
        with (
            step("apply", f"applying {config_file.name} to the new machine at {target}"),
            TalosClient.from_context(Context("m", endpoints=[target]), insecure=True) as m,
        ):
            m.apply_configuration(config, mode="auto")[0].unwrap("ApplyConfiguration")
        journal.step(node.hostname, "apply", "done")
        _wait(
            f"{node.hostname} to boot configured at {node.ip}",
            lambda: answering(tc, [node.ip])[node.ip],
            options,
            emitter,
            node.hostname,
        )
        if node.control_plane:

            def joined() -> bool:
                s = etcd_wf.survey(tc, [n.ip for n in cluster.control_planes])
                return any(m.name == node.hostname and not m.down for m in s.members) and s.has_quorum()

            _wait(f"{node.hostname} to join etcd and be healthy", joined, options, emitter, node.hostname)
        if kube is not None:
            from taltasks.kube.nodes import get_node

            _wait(
                f"Node {node.hostname} to be registered and Ready",
                lambda: get_node(kube, node.hostname).ready,
                options,
                emitter,
                node.hostname,
            )
            kube.close()
        emitter.emit("node.done", "replaced", node=node.hostname)
    return result


def _kube(options: ReplaceOptions, kubeconfig_path: Callable[..., Path | None]):
    path = kubeconfig_path(options.root, options.kubeconfig)
    if path is None:
        return None
    from taltasks.kube.client import connect

    return connect(path)


def _delete_node(kube: Any, name: str) -> None:
    from taltasks.kube.client import KubeApiError

    try:
        kube.call(f"delete node {name}", kube.core.delete_node, name)
    except KubeApiError as exc:
        if exc.status != 404:
            raise
