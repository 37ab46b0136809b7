"""The simulated tuppr's semantics on a simulated Kubernetes world: coordination, suspend,
maintenance windows, health checks before each batch, batches, Job placement.

The Talos side is a small stand-in (versions flip on upgrade, the Node goes NotReady and
back), so these run in a second each; the end-to-end hand-off with real simulated Talos
nodes is in test_handoff.py.
"""

# ruff: noqa: F811 - pytest fixtures imported from kubesim are redefined as parameters

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from kubesim import kube_ca, make_world  # noqa: F401 - fixtures

from taltasks.sim.kube.nodes import set_node_ready
from taltasks.sim.operators.tuppr import (
    ACTIVE,
    KUBERNETES,
    TALOS,
    TupprConfig,
    TupprController,
    cron_matches,
    window_state,
)

OLD, NEW = "v1.11.5", "v1.12.0"
NEW_MINOR = "v1.14.0"
WORLD = """\
cluster: {name: demo, controlPlanes: 3, workers: 3}
nodes: {worker-1: {zone: zone-a}, worker-2: {zone: zone-b}, worker-3: {zone: zone-c}}
workloads:
  - {kind: Deployment, namespace: default, name: web, replicas: 2, pdb: {minAvailable: 1}}
"""


class Machines:
    """Talos as tuppr sees it: versions, readiness, boot ids; an upgrade reboots the node."""

    def __init__(self, world) -> None:
        self.world = world
        self.versions = {n["metadata"]["name"]: OLD for n in world.store.list("nodes")}
        self.boots = {n: str(uuid.uuid4()) for n in self.versions}
        self.down: set[str] = set()

    def version(self, node):
        return None if node in self.down else self.versions[node]

    def ready(self, node):
        return node not in self.down

    def boot_id(self, node):
        return self.boots[node]

    def install_image(self, node):
        return f"ghcr.io/siderolabs/installer:{self.versions[node]}"

    def schematic(self, node):
        return ""

    def upgrade(self, node, image):
        target = image.rsplit(":", 1)[1]

        def reboot():
            self.down.add(node)
            set_node_ready(self.world.store, node, False)
            threading.Event().wait(0.05)
            self.versions[node], self.boots[node] = target, str(uuid.uuid4())
            self.down.discard(node)
            set_node_ready(self.world.store, node, True)

        threading.Thread(target=reboot, daemon=True).start()


@pytest.fixture
def tuppr(make_world):
    world = make_world(WORLD)
    world.install_tuppr_crds()
    machines = Machines(world)
    config = TupprConfig(controller_node="worker-3", reconcile_seconds=0.02, job_timeout_seconds=10)
    controller = TupprController(world.reactor, config, machines)
    world.tuppr = controller
    controller.start()
    world.machines = machines
    return world


def plan(name, *, selector=None, parallelism=1, checks=(), annotations=None, windows=None, version=None):
    spec = {"talos": {"version": version or NEW}, "parallelism": parallelism}
    if selector:
        spec["nodeSelector"] = selector
    if checks:
        spec["healthChecks"] = list(checks)
    if windows:
        spec["maintenance"] = {"windows": windows}
    meta = {"name": name, **({"annotations": annotations} if annotations else {})}
    return {
        "apiVersion": "tuppr.home-operations.com/v1alpha1",
        "kind": "TalosUpgrade",
        "metadata": meta,
        "spec": spec,
    }


def status(world, name):
    return world.store.get(TALOS, name).get("status") or {}


def phase_is(world, name, *phases):
    return status(world, name).get("phase") in phases


WORKERS = {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]}
PLANES = {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}


def test_one_plan_at_a_time_and_never_a_job_on_its_own_node(tuppr):
    tuppr.store.create(plan("planes", selector=PLANES))
    tuppr.store.create(plan("workers", selector=WORKERS))
    tuppr.wait_for(
        lambda s: phase_is(tuppr, "planes", "Completed") and phase_is(tuppr, "workers", "Completed"),
        30,
        "both plans done",
    )
    assert set(tuppr.machines.versions.values()) == {NEW}
    # from the record: the plans' active stretches never overlap
    active: set[str] = set()
    for e in tuppr.recorder.entries("tuppr.phase"):
        (active.add if e["phase"] in ACTIVE else active.discard)(e["plan"])
        assert len(active) <= 1, e
    waiting = [
        e
        for e in tuppr.recorder.entries("tuppr.phase")
        if "Waiting for another TalosUpgrade plan" in e["message"]
    ]
    assert waiting
    jobs = tuppr.recorder.entries("tuppr.job")
    assert len(jobs) == 6 and all(j["pod_node"] and j["pod_node"] != j["node"] for j in jobs)
    done = status(tuppr, "workers")
    assert done["completedNodes"] == ["worker-3", "worker-1", "worker-2"]
    assert done["message"] == "Successfully upgraded 3 nodes" and done["completedAt"]
    ready = {c["type"]: c["status"] for c in done["conditions"]}
    assert ready == {"Progressing": "False", "Ready": "True"}


def test_parallelism_takes_a_batch_and_checks_health_before_it(tuppr):
    tuppr.store.create(
        plan(
            "workers",
            selector=WORKERS,
            parallelism=2,
            checks=[
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "web",
                    "namespace": "default",
                    "expr": "status.readyReplicas == object.spec.replicas",
                }
            ],
        )
    )
    tuppr.wait_for(lambda s: phase_is(tuppr, "workers", "Completed"), 30, "plan done")
    jobs = tuppr.recorder.entries("tuppr.job")
    assert [j["node"] for j in jobs] == ["worker-3", "worker-1", "worker-2"]  # the controller's node first
    # worker-3 (the controller's node) and worker-1 together, their Jobs started before either finished
    first_done = tuppr.recorder.entries("tuppr.job_done")[0]
    assert jobs[1].seq < first_done.seq < jobs[2].seq
    batches = [e["nodes"] for e in tuppr.recorder.entries("tuppr.health") if e["passed"]]
    assert batches[:2] == [["worker-3", "worker-1"], ["worker-2"]]
    assert any(
        e["nodes"] == ["worker-3", "worker-1"]
        for e in tuppr.recorder.entries("tuppr.phase", phase="Upgrading")
    )


def test_failing_health_checks_hold_the_plan(tuppr):
    never = {
        "apiVersion": "v1",
        "kind": "Node",
        "expr": "has(object.metadata.labels.never)",
        "description": "nodes carry the never label",
    }
    tuppr.store.create(plan("workers", selector=WORKERS, checks=[never]))
    tuppr.wait_for(lambda s: phase_is(tuppr, "workers", "HealthChecking"), 5, "HealthChecking")
    message = status(tuppr, "workers")["message"]
    assert message.startswith("Waiting for health checks: nodes carry the never label:")
    tuppr.wait_for(lambda s: len(tuppr.recorder.entries("tuppr.health")) >= 3, 5, "checks retried")
    assert tuppr.recorder.entries("tuppr.job") == []


def test_a_kubernetes_upgrade_whose_health_checks_fail_waits_and_touches_no_node(tuppr):
    from taltasks.handoff.tuppr import kubernetes_upgrade

    never = {"apiVersion": "v1", "kind": "Node", "expr": "has(object.metadata.labels.never)"}
    never["description"] = "nodes carry the never label"
    kubelets = {n["metadata"]["name"]: n["status"]["nodeInfo"] for n in tuppr.store.list("nodes")}
    tuppr.store.create(kubernetes_upgrade("v1.35.0", checks=[never]))
    checks: list[int] = []  # the recorder visits each entry once: count the checks until three ran
    tuppr.recorder.wait_for("tuppr.k8s_health", 5, lambda e: checks.append(e.seq) or len(checks) >= 3)
    state = tuppr.store.get(KUBERNETES, "kubernetes")["status"]
    assert state["phase"] == "HealthChecking" and state["targetVersion"] == "v1.35.0"
    assert state["message"].startswith("Waiting for health checks: nodes carry the never label:")
    assert not any(e["passed"] for e in tuppr.recorder.entries("tuppr.k8s_health"))
    assert tuppr.recorder.entries("tuppr.k8s_job") == [] and tuppr.store.list("jobs.batch") == []
    assert {n["metadata"]["name"]: n["status"]["nodeInfo"] for n in tuppr.store.list("nodes")} == kubelets


def test_suspend_and_closed_windows_start_nothing(tuppr):
    tuppr.store.create(
        plan("held", selector=PLANES, annotations={"tuppr.home-operations.com/suspend": "maintenance"})
    )
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).strftime("%M %H * * *")
    tuppr.store.create(
        plan("night", selector=WORKERS, windows=[{"start": later, "duration": "1m", "timezone": "UTC"}])
    )
    tuppr.wait_for(
        lambda s: phase_is(tuppr, "night", "MaintenanceWindow") and phase_is(tuppr, "held", "Pending"),
        5,
        "parked",
    )
    held = status(tuppr, "held")
    assert (
        held["message"]
        == "Controller suspended via annotation (value: maintenance) - remove annotation to resume"
    )
    assert {c["reason"] for c in held["conditions"]} == {"Suspended"}
    assert status(tuppr, "night")["nextMaintenanceWindow"].startswith(
        (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:")
    )
    assert tuppr.recorder.entries("tuppr.job") == []


@pytest.mark.parametrize(
    ("expr", "when", "match"),
    [
        ("0 2 * * 0", dt.datetime(2026, 11, 29, 2, 0), True),  # a Sunday
        ("0 2 * * SUN", dt.datetime(2026, 11, 29, 2, 0), True),
        ("0 2 * * 7", dt.datetime(2026, 11, 29, 2, 0), True),
        ("0 2 * * 1", dt.datetime(2026, 11, 29, 2, 0), False),
        ("*/15 1-3 * * *", dt.datetime(2026, 11, 30, 3, 45), True),
        ("*/15 1-3 * * *", dt.datetime(2026, 11, 30, 3, 50), False),
        ("0 0 1 JAN *", dt.datetime(2027, 1, 1, 0, 0), True),
    ],
)
def test_cron_matching(expr, when, match):
    assert cron_matches(expr, when) is match


def test_window_state_opens_for_its_duration():
    window = {"start": "0 2 * * *", "duration": "4h", "timezone": "Europe/Paris"}
    inside = dt.datetime(2026, 12, 1, 3, 30, tzinfo=dt.UTC)  # 04:30 in Paris
    outside = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)  # 07:00 in Paris
    assert window_state(window, inside)[0] is True
    opened, upcoming = window_state(window, outside)
    assert not opened and upcoming == dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.UTC)


def test_the_job_takes_the_path_talosctl_takes_for_each_node_s_minor(tmp_path, loopback_subnet):
    """1.13+ nodes: ImageService pull, LifecycleService install, Reboot; older: the legacy
    Upgrade — on real simulated Talos nodes, from the simulator's record."""
    from taltasks.sim import scenario as sc
    from taltasks.sim.world import SimWorld

    text = (
        f"cluster: {{name: mixed, subnet: {loopback_subnet}, controlPlanes: 3, workers: 2, talosVersion: v1.13.9}}\n"
        "timings: {reboot: 0.2, boot: 0.05, shutdown: 0.05, install: 0.05, upgradePull: 0.05, imagePull: 0.02}\n"
        "nodes: {worker-2: {version: v1.12.11}}\n"
        "tuppr: {reconcileSeconds: 0.02, controllerNode: worker-1}\n"
    )
    doc = tmp_path / "scenario.yaml"
    doc.write_text(text)
    world = SimWorld(sc.load(doc), directory=tmp_path / "sim").start()
    try:
        world.kube.wait_settled(20)
        world.kube.store.create(plan("all", version=NEW_MINOR))
        world.kube.wait_for(lambda s: phase_is(world.kube, "all", "Completed"), 60, "plan done")
        assert {n.hostname: n.version for n in world.talos.nodes} == dict.fromkeys(
            ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2"], NEW_MINOR
        )
        rec = world.recorder
        lifecycle = {e["node"] for e in rec.entries("talos.lifecycle_upgrade")}
        legacy = {e["node"] for e in rec.entries("talos.upgrade")}
        assert lifecycle == {"cp-1", "cp-2", "cp-3", "worker-1"} and legacy == {"worker-2"}
        pulled = {e["node"] for e in rec.entries("talos.image_pull", source="ImageService")}
        assert pulled == lifecycle
        assert {e["node"] for e in rec.entries("talos.reboot")} == lifecycle
        assert rec.entries("tuppr.job")[0]["node"] == "worker-1"  # the controller's node first
    finally:
        world.stop()
