"""Upgrading Kubernetes on a Talos cluster through machine-config patches (``talos.upgrade-k8s``).

The procedure is ``talosctl upgrade-k8s`` (talos-api.md §10.3), planned first and carried
out step by step:

1. **Observe** (:func:`observe`): the Nodes (names, internal IPs, roles, kubelet
   versions), every node's Talos version and running machine config, and the image tags of
   the running kube-apiserver pods — the lowest is the version the cluster runs.
2. **Plan** (:func:`plan_upgrade`, pure): refuse — before anything changes — a path that is
   not within a minor or to the next one, and a target some node's Talos version does not
   support; otherwise list the steps: pre-pull images per node, one etcd snapshot, then
   kube-apiserver, kube-controller-manager and kube-scheduler node by node, kube-proxy
   (unless disabled), and the kubelet on every node. A step whose change is already in
   the node's config is only *verified*; a step with nothing to do is *skipped*.
3. **Execute** (:func:`execute`): each component change sets one image in the node's
   config and applies it without a reboot, after opening a watch on the component's COSI
   config resource; done means the resource was UPDATED and the mirror pod on that node
   carries the new ``talos.dev/config-version`` and is Ready. A kubelet change is done when
   the kubelet's ``Services`` resource went away and came back running and healthy, and the
   Node reports the new version.

The repository's ``talos/talenv.yaml`` stays the source of truth: the default target is its
``kubernetesVersion``, and nothing here writes it. Every step is journaled; a run that
stopped (error, Ctrl-C, a lost laptop) is resumed by running the command again — steps
already in the nodes' configs are verified instead of repeated.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from taltasks import deadline as deadlines
from taltasks.errors import InputError, OperationFailed
from taltasks.events import NULL, Emitter
from taltasks.kube.client import KubeClient
from taltasks.machineconfig.kubecomponents import (
    BY_NAME,
    CONTROL_PLANE,
    KUBE_PROXY,
    KUBELET,
    Component,
    proxy_disabled_in,
)
from taltasks.model.images import image_tag, retag, split
from taltasks.model.versions import (
    Version,
    kubernetes_path_refusal,
    kubernetes_supported,
    support_range,
)
from taltasks.talos.client import TalosClient
from taltasks.talos.results import SnapshotResult

OPERATION = "upgrade-k8s"
SERVICES = "Services.v1alpha1.talos.dev"


# ---- observation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservedNode:
    """One node as it runs: ``images`` maps a component to the image its config names
    (None when the config leaves it to Talos's default)."""

    name: str
    ip: str
    control_plane: bool
    talos_version: str | None
    kubelet_version: str
    images: dict[str, str | None] = field(default_factory=dict)
    proxy_disabled: bool = False
    error: str | None = None

    @property
    def role(self) -> str:
        return "controlplane" if self.control_plane else "worker"


@dataclass(frozen=True)
class ClusterState:
    nodes: tuple[ObservedNode, ...]
    apiserver_tags: dict[str, str]  # kube-apiserver pod → image tag

    @property
    def control_planes(self) -> list[ObservedNode]:
        return [n for n in self.nodes if n.control_plane]

    def running_version(self) -> Version | None:
        """The lowest kube-apiserver version running (what talosctl upgrades from); the
        control planes' configured images when no pod shows one."""
        tags = list(self.apiserver_tags.values()) or [
            t for n in self.control_planes if (t := image_tag(n.images.get("kube-apiserver")))
        ]
        versions = []
        for tag in tags:
            try:
                versions.append(Version.parse(tag))
            except ValueError:
                continue
        return min(versions) if versions else None


def observe(talos: TalosClient, kube: KubeClient) -> ClusterState:
    """Read what the plan needs; nothing is changed."""
    from taltasks.kube.nodes import list_nodes
    from taltasks.kube.staticpods import component_versions

    k8s_nodes = list_nodes(kube)
    if not k8s_nodes:
        raise OperationFailed("the cluster has no Nodes", where=kube.server)
    versions = {r.node: r for r in talos.version([n.internal_ip for n in k8s_nodes])}
    observed = []
    for n in sorted(k8s_nodes, key=lambda n: (not n.control_plane, n.name)):
        v = versions.get(n.internal_ip)
        error = None if v is not None and v.ok else (str(v.error) if v else "no Version reply")
        images: dict[str, str | None] = {}
        proxy_disabled = False
        if error is None:
            try:
                raw = talos.machine_config(n.internal_ip)
            except OperationFailed as exc:
                error = f"cannot read its machine config: {exc.message}"
            else:
                images = {c.name: c.image_in(raw) for c in BY_NAME.values()}
                proxy_disabled = proxy_disabled_in(raw)
        observed.append(
            ObservedNode(
                name=n.name,
                ip=n.internal_ip,
                control_plane=n.control_plane,
                talos_version=v.value.tag if v is not None and v.ok and v.value else None,
                kubelet_version=n.kubelet_version,
                images=images,
                proxy_disabled=proxy_disabled,
                error=error,
            )
        )
    return ClusterState(tuple(observed), component_versions(kube, "kube-apiserver"))


# ---- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step: ``kind`` is pre-pull, snapshot, control-plane, kube-proxy or kubelet;
    ``action`` is upgrade (change the config), verify (the config has it already: only
    wait for the result), run (pre-pull, snapshot) or skip."""

    kind: str
    component: str
    node: str
    ip: str
    images: tuple[str, ...]
    current: str | None
    action: str
    reason: str

    @property
    def key(self) -> str:
        """The step's name in the journal: stable across runs for the same target."""
        return f"{self.kind}:{self.component}:{self.node}:{','.join(self.images)}"

    @property
    def image(self) -> str:
        return self.images[0] if self.images else ""

    def row(self) -> dict[str, Any]:
        """One line of the plan table (``images`` carries the full references for JSON)."""
        repos = [split(i)[0] for i in self.images]
        return {
            "step": self.kind if self.kind in ("pre-pull", "snapshot") else self.component,
            "node": self.node,
            "ip": self.ip,  # the live view files events naming the node by address under it
            "from": image_tag(self.current) or "",
            "to": image_tag(self.image) or "",
            "image": ", ".join(r.rsplit("/", 1)[-1] for r in repos)
            if self.kind == "pre-pull"
            else ", ".join(repos),
            "action": self.action,
            "reason": self.reason,
            "images": list(self.images),
        }


@dataclass(frozen=True)
class K8sUpgradePlan:
    from_version: Version
    to_version: Version
    steps: tuple[Step, ...]

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action == "upgrade"]

    def rows(self) -> list[dict[str, Any]]:
        return [s.row() for s in self.steps]


def _target_image(current: str | None, component: Component, to: Version) -> str:
    return retag(current or component.repository, str(to))


def plan_upgrade(
    state: ClusterState,
    to: Version,
    *,
    pre_pull: bool = True,
    kubelet: bool = True,
) -> K8sUpgradePlan:
    """The steps from ``state`` to Kubernetes ``to``; :class:`InputError` when the upgrade
    must not start (the path, the Talos support matrix, nodes that cannot be read)."""
    unreadable = [n for n in state.nodes if n.error]
    if unreadable:
        raise OperationFailed(
            "cannot plan: " + "; ".join(f"{n.name} ({n.ip}): {n.error}" for n in unreadable),
            hint="every node must answer before Kubernetes is upgraded; check `invoke talos.version`",
        )
    if not state.control_planes:
        raise OperationFailed("the cluster has no control-plane Nodes to upgrade")
    current = state.running_version()
    if current is None:
        raise OperationFailed(
            "cannot tell which Kubernetes version runs: no kube-apiserver pod or image shows a version"
        )
    refusal = kubernetes_path_refusal(current, to)
    if refusal:
        raise InputError(f"refusing to upgrade Kubernetes: {refusal}", hint="nothing was changed")
    unsupported = [
        n for n in state.nodes if not kubernetes_supported(Version.parse(n.talos_version or "0.0.0"), to)
    ]
    if unsupported:
        listed = ", ".join(
            f"{n.name} runs Talos {n.talos_version} (Kubernetes {support_range(Version.parse(n.talos_version or '0.0.0'))})"
            for n in unsupported
        )
        raise InputError(
            f"refusing to upgrade Kubernetes to {to}: not supported by the Talos version of {listed}",
            hint="upgrade Talos first (`invoke talos.upgrade-all`), then Kubernetes; nothing was changed",
        )

    changes: list[Step] = []
    for component in CONTROL_PLANE:
        for n in state.control_planes:
            changes.append(_config_step("control-plane", component, n, to))
    for n in state.control_planes:
        if n.proxy_disabled:
            changes.append(
                Step(
                    "kube-proxy",
                    "kube-proxy",
                    n.name,
                    n.ip,
                    (),
                    n.images.get("kube-proxy"),
                    "skip",
                    "kube-proxy is disabled",
                )
            )
        else:
            step = _config_step("kube-proxy", KUBE_PROXY, n, to)
            if step.action == "verify":  # nothing to wait for: kube-proxy runs as a DaemonSet
                step = replace(step, action="skip", reason="already at the target image")
            changes.append(step)
    for n in state.nodes:
        if not kubelet:
            changes.append(
                Step("kubelet", "kubelet", n.name, n.ip, (), n.kubelet_version, "skip", "--no-kubelet")
            )
            continue
        step = _config_step("kubelet", KUBELET, n, to)
        if step.action == "verify" and n.kubelet_version == str(to):
            step = replace(step, action="skip", reason=f"the Node already reports {to}")
        changes.append(step)

    pulls: list[Step] = []
    for n in state.nodes:
        for kind, wanted in (("control-plane", CONTROL_PLANE), ("kubelet", (KUBELET,))):
            images = tuple(
                s.image
                for s in changes
                if s.node == n.name and s.action == "upgrade" and s.component in {c.name for c in wanted}
            )
            if not images:
                continue
            if pre_pull:
                pulls.append(
                    Step("pre-pull", kind, n.name, n.ip, images, None, "run", "pull before the switch")
                )
            else:
                pulls.append(Step("pre-pull", kind, n.name, n.ip, images, None, "skip", "--no-pre-pull"))
    upgrading = any(s.action == "upgrade" for s in changes)
    snapshot = Step(
        "snapshot",
        "etcd",
        "",
        "",
        (),
        None,
        "run" if upgrading else "skip",
        "before the first change" if upgrading else "nothing to change",
    )
    return K8sUpgradePlan(current, to, (*pulls, snapshot, *changes))


def _config_step(kind: str, component: Component, n: ObservedNode, to: Version) -> Step:
    current = n.images.get(component.name)
    target = _target_image(current, component, to)
    if current == target:
        action, reason = "verify", "in the config already: wait for it to run"
    elif current:
        action, reason = "upgrade", "set in the config, applied without a reboot"
    else:
        action, reason = "upgrade", "the config uses Talos's default image: set it explicitly"
    return Step(kind, component.name, n.name, n.ip, (target,), current, action, reason)


# ---- execution ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeouts:
    """Seconds each kind of step may take (talosctl: 5 min per static pod, 3 min for a
    Node to report its kubelet version)."""

    control_plane: float = 300.0
    kubelet: float = 180.0
    pull: float = 900.0
    snapshot: float = 600.0


@dataclass
class K8sUpgradeResult:
    plan: K8sUpgradePlan
    done: list[str] = field(default_factory=list)  # step keys carried out
    verified: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    snapshot: SnapshotResult | None = None
    seconds: float = 0.0
    resumed: bool = False


PLAN_COLUMNS = ("step", "node", "from", "to", "image", "action", "reason")


def emit_plan(plan: K8sUpgradePlan, emitter: Emitter) -> None:
    emitter.emit(
        "plan",
        f"Kubernetes {plan.from_version} → {plan.to_version}: {len(plan.changes)} change(s)",
        from_version=str(plan.from_version),
        to_version=str(plan.to_version),
        steps=plan.rows(),
    )


def execute(
    talos: TalosClient,
    kube: KubeClient,
    plan: K8sUpgradePlan,
    *,
    root: Path,
    emitter: Emitter = NULL,
    timeouts: Timeouts = Timeouts(),
    snapshot_dir: Path | None = None,
) -> K8sUpgradeResult:
    """Carry out ``plan`` step by step, journaled under ``root/.taltasks``."""
    from taltasks.workflows.journal import Journal

    started = time.monotonic()
    result = K8sUpgradeResult(plan)
    emit_plan(plan, emitter)
    with Journal.open(
        root, OPERATION, meta={"from": str(plan.from_version), "to": str(plan.to_version)}
    ) as journal:
        earlier = set()
        if journal.previous is not None:
            result.resumed = True
            earlier = {
                e["step"] for e in journal.previous.entries if e["type"] == "step" and e["status"] == "done"
            }
            emitter.emit("info", f"resuming the run journaled in {journal.path}")
        runner = _Runner(
            talos, kube, plan, emitter, timeouts, snapshot_dir or Path(root) / ".taltasks" / "snapshots"
        )
        for step in plan.steps:
            if step.action == "skip" or (step.kind == "snapshot" and step.key in earlier):
                reason = step.reason if step.action == "skip" else "taken before the interruption"
                emitter.emit(
                    "node.skipped", f"{_label(step)}: {reason}", node=step.node or None, step=step.key
                )
                result.skipped.append(step.key)
                continue
            journal.step(step.node or None, step.key, "started")
            try:
                with emitter.step(step.kind, _label(step), node=step.node or None, action=step.action):
                    outcome = runner.run(step)
            except BaseException as exc:
                journal.step(step.node or None, step.key, "failed", error=str(exc) or type(exc).__name__)
                raise
            journal.step(step.node or None, step.key, "done")
            if isinstance(outcome, SnapshotResult):
                result.snapshot = outcome
            (result.verified if step.action == "verify" else result.done).append(step.key)
    result.seconds = time.monotonic() - started
    emitter.emit(
        "summary",
        f"Kubernetes is at {plan.to_version}: {len([s for s in result.done if not s.startswith(('pre-pull', 'snapshot'))])} change(s) applied, "
        f"{len(result.verified)} verified, {len(result.skipped)} skipped in {result.seconds:.1f}s",
        done=len(result.done),
        verified=len(result.verified),
        skipped=len(result.skipped),
    )
    return result


def _label(step: Step) -> str:
    if step.kind == "pre-pull":
        names = ", ".join(split(i)[0].rsplit("/", 1)[-1] for i in step.images)
        return f"pre-pulling {names} {image_tag(step.image) or ''}".rstrip()
    if step.kind == "snapshot":
        return "etcd snapshot"
    if step.action == "upgrade":
        return f"upgrading {step.component} to {step.image}"
    return f"verifying that {step.component} runs {step.image}"


class _Runner:
    """Carries out one step at a time (see the module docstring for what "done" means)."""

    def __init__(
        self,
        talos: TalosClient,
        kube: KubeClient,
        plan: K8sUpgradePlan,
        emitter: Emitter,
        timeouts: Timeouts,
        snapshot_dir: Path,
    ) -> None:
        self.talos = talos
        self.kube = kube
        self.plan = plan
        self.emitter = emitter
        self.timeouts = timeouts
        self.snapshot_dir = snapshot_dir

    def run(self, step: Step) -> Any:
        if step.kind == "pre-pull":
            return self.pre_pull(step)
        if step.kind == "snapshot":
            return self.snapshot()
        if step.kind == "control-plane":
            return self.control_plane(step)
        if step.kind == "kube-proxy":
            return self.apply_image(step, BY_NAME[step.component])
        if step.kind == "kubelet":
            return self.kubelet(step)
        raise AssertionError(f"unknown step kind {step.kind}")

    # ---- steps -----------------------------------------------------------------------------

    def pre_pull(self, step: Step) -> None:
        cri = step.component != "kubelet"  # the kubelet runs from containerd's system namespace
        for image in step.images:
            [res] = self.talos.image_pull(image, nodes=[step.ip], cri=cri, timeout=self.timeouts.pull)
            if res.ok:
                continue
            if res.error is not None and res.error.code == "UNIMPLEMENTED":
                self.emitter.emit(
                    "warning", f"{step.node} cannot pre-pull images; it will pull on switch", node=step.node
                )
                return
            raise OperationFailed(f"pulling {image} failed: {res.error}", where=step.node)

    def snapshot(self) -> SnapshotResult:
        from taltasks.workflows import etcd

        cps = [s.ip for s in self.plan.steps if s.kind == "control-plane"]
        survey = etcd.survey(self.talos, list(dict.fromkeys(cps)))
        source = etcd.pick_snapshot_source(survey)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.snapshot_dir / f"etcd-before-k8s-{self.plan.to_version}-{stamp}.db"
        return etcd.snapshot(self.talos, path, source, self.emitter)

    def apply_image(self, step: Step, component: Component) -> bool:
        """Set the component's image in the node's config and apply it without a reboot;
        False when the config already had it."""
        raw = self.talos.machine_config(step.ip)
        patched = component.with_image(raw, step.image, where=step.node)
        if patched is None:
            return False
        [res] = self.talos.apply_configuration(patched, nodes=[step.ip], mode="NO_REBOOT")
        res.unwrap()
        self.emitter.emit(
            "info", f"applied {component.where(raw)} = {step.image} (no reboot)", node=step.node
        )
        return True

    def control_plane(self, step: Step) -> None:
        from taltasks.kube.staticpods import wait_for_static_pod
        from taltasks.talos.watching import ResourceWatch

        component = BY_NAME[step.component]
        assert component.resource is not None
        deadline = time.monotonic() + self.timeouts.control_plane
        with (
            deadlines.until(deadline),  # the config read and apply too, not only the watch
            ResourceWatch(
                self.talos,
                component.resource,
                component.name,
                namespace="controlplane",
                node=step.ip,
                timeout=self.timeouts.control_plane,
            ) as watch,
        ):
            if watch.initial.type != "CREATED" or watch.initial.resource is None:
                raise OperationFailed(
                    f"{component.resource} {component.name} does not exist: is this a control plane?",
                    where=step.node,
                )
            version = watch.initial.resource.version
            if self.apply_image(step, component):
                updated = watch.until(
                    lambda e: (
                        e.type == "UPDATED" and e.resource is not None and e.resource.version != version
                    ),
                    f"{component.name}'s config resource to update",
                )
                assert updated.resource is not None
                version = updated.resource.version
        wait_for_static_pod(
            self.kube,
            component.name,
            step.node,
            version,
            ip=step.ip,
            timeout=max(1.0, deadline - time.monotonic()),
            emitter=self.emitter,
        )

    def kubelet(self, step: Step) -> None:
        from taltasks.kube.nodes import wait_for_node
        from taltasks.talos.watching import ResourceWatch

        deadline = time.monotonic() + self.timeouts.kubelet

        def healthy(e: Any) -> bool:
            spec = (e.resource.spec or {}) if e.resource is not None else {}
            return (
                e.type in ("CREATED", "UPDATED") and bool(spec.get("running")) and bool(spec.get("healthy"))
            )

        if step.action == "upgrade":
            with (
                deadlines.until(deadline),  # the config read and apply too, not only the watch
                ResourceWatch(
                    self.talos,
                    SERVICES,
                    "kubelet",
                    namespace="runtime",
                    node=step.ip,
                    timeout=self.timeouts.kubelet,
                ) as watch,
            ):
                if not healthy(watch.initial):
                    raise OperationFailed(
                        "the kubelet is not healthy before its upgrade; fix it first",
                        where=step.node,
                        hint=f"look at `invoke talos.logs kubelet --node {step.node}`",
                    )
                if self.apply_image(step, KUBELET):
                    self.emitter.emit(
                        "gate.waiting", "waiting for the kubelet to restart", node=step.node, gate="kubelet"
                    )
                    watch.until(lambda e: e.type == "DESTROYED", "the kubelet to stop")
                    watch.until(healthy, "the kubelet to run again, healthy")
                    self.emitter.emit("gate.passed", "the kubelet restarted", node=step.node, gate="kubelet")
        wait_for_node(
            self.kube,
            step.node,
            timeout=max(1.0, deadline - time.monotonic()),
            kubelet_version=str(self.plan.to_version),
            emitter=self.emitter,
        )


def upgrade_kubernetes(
    talos: TalosClient,
    kube: KubeClient,
    to: Version,
    *,
    root: Path,
    emitter: Emitter = NULL,
    pre_pull: bool = True,
    kubelet: bool = True,
    dry_run: bool = False,
    timeouts: Timeouts = Timeouts(),
) -> K8sUpgradePlan | K8sUpgradeResult:
    """Observe, plan and (unless ``dry_run``) execute; the dry run returns the plan."""
    from taltasks.talos import roles

    # even the plan reads the nodes' machine configs, which Talos shows to os:admin only
    roles.require(talos, roles.ADMIN_ONLY, "upgrading Kubernetes")
    state = observe(talos, kube)
    plan = plan_upgrade(state, to, pre_pull=pre_pull, kubelet=kubelet)
    if dry_run:
        emit_plan(plan, emitter)
        return plan
    return execute(talos, kube, plan, root=root, emitter=emitter, timeouts=timeouts)


__all__: Sequence[str] = (
    "ClusterState",
    "K8sUpgradePlan",
    "K8sUpgradeResult",
    "ObservedNode",
    "Step",
    "Timeouts",
    "execute",
    "observe",
    "plan_upgrade",
    "upgrade_kubernetes",
)
