"""Talosconfigs without os:admin: reads and gates work through what os:reader / os:operator
may see; a task that needs a role says so before it does anything."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from test_tasks import assert_one_line_error, invoke

from simtalos import client_with
from taltasks.gates.checks import GateContext, NodeTarget
from taltasks.gates.engine import GateEngine
from taltasks.gates.kubesource import ApiKubeSource
from taltasks.gates.talossource import ApiTalosSource
from taltasks.model.policy import default_policy
from upgrade_support import NEW, OLD, demo_cluster


@pytest.fixture
def demo(tmp_path, loopback_subnet):
    d = demo_cluster(tmp_path, loopback_subnet)
    yield d
    d.stop()


def _talosconfig(d, tmp_path, role: str):
    path = tmp_path / f"talosconfig-{role.replace(':', '-')}"
    d.world.talos.talosconfig(roles=(role,), nodes=[n.ip for n in d.world.talos.nodes]).save(path)
    return path


def _api_calls_by(d, role: str) -> list[str]:
    return [e.data["method"] for e in d.recorder.entries("talos.api") if e.data.get("roles") == [role]]


def test_reads_and_plan_work_with_a_reader_talosconfig(demo, tmp_path):
    reader = _talosconfig(demo, tmp_path, "os:reader")
    version = invoke("talos.version", "--talosconfig", str(reader), "--json")
    assert version.returncode == 0, version.stderr
    assert {e["tag"] for e in json.loads(version.stdout)} == {OLD}
    plan = invoke("talos.plan", "--root", str(demo.repo), "--talosconfig", str(reader), "--json")
    assert plan.returncode == 0, plan.stderr
    rows = json.loads(plan.stdout)
    assert len(rows) == 6 and {r["running"] for r in rows} == {OLD} and {r["desired"] for r in rows} == {NEW}
    assert {r["action"] for r in rows} == {"upgrade"}, rows
    services = invoke("talos.services", "--talosconfig", str(reader), "--json")
    assert services.returncode == 0, services.stderr
    assert {r["service"] for r in json.loads(services.stdout)} >= {"etcd", "kubelet", "apid"}
    health = invoke("talos.health", "--talosconfig", str(reader), "--json")
    assert health.returncode == 0, health.stderr
    assert all(c["result"] == "OK" for c in json.loads(health.stdout))
    get = invoke("talos.get", "machinestatus", "--talosconfig", str(reader), "--json")
    assert get.returncode == 0, get.stderr
    assert {i["spec"]["stage"] for i in json.loads(get.stdout)} == {"running"}
    calls = _api_calls_by(demo, "os:reader")
    assert "Read" not in calls  # the boot id was never asked for with the admin-only Read


@pytest.mark.parametrize(
    ("role", "task", "needs"),
    [
        ("os:reader", ("talos.upgrade-all",), "os:admin"),
        ("os:operator", ("talos.upgrade-node", "--node", "worker-1"), "os:admin"),
        ("os:reader", ("talos.apply-node", "--node", "worker-1"), "os:admin"),
        ("os:reader", ("talos.reboot-node", "worker-1"), "os:admin or os:operator"),
        ("os:operator", ("talos.reset-node", "worker-1", "--yes"), "os:admin"),
        ("os:reader", ("etcd.snapshot", "SNAP"), "os:admin or os:etcd:backup or os:operator"),
        ("os:reader", ("talos.upgrade-k8s", "--to", "v1.34.3", "--dry-run"), "os:admin"),
    ],
)
def test_a_task_that_needs_a_role_says_so_before_doing_anything(demo, tmp_path, role, task, needs):
    cfg = _talosconfig(demo, tmp_path, role)
    args = [a.replace("SNAP", str(tmp_path / "db.snap")) for a in task]
    common = ["--root", str(demo.repo)] if args[0].startswith(("talos.upgrade", "talos.apply")) else []
    before = len(demo.recorder.entries())
    proc = invoke(*args, *common, "--talosconfig", str(cfg), env={"KUBECONFIG": str(demo.kubeconfig)})
    assert_one_line_error(proc, needs, role)
    assert proc.returncode == 2
    later = demo.recorder.entries()[before:]
    calls = [e.data["method"] for e in later if e.kind == "talos.api"]
    assert set(calls) <= {"Version"}, calls  # at most a look at the node (is it in maintenance?)
    assert not [
        e for e in later if e.kind.startswith("kube.") and e.data.get("verb") not in (None, "get", "list")
    ]
    assert not (demo.repo / ".taltasks").exists() or not any((demo.repo / ".taltasks").iterdir())


def test_operator_reboots_a_node_and_the_gates_see_the_new_boot(demo, tmp_path):
    """os:operator may reboot; on Talos < 1.14 it cannot read the boot id (Read is admin's),
    so the gate takes it from the Kubernetes Node (the kubelet reports the same id)."""
    from taltasks.kube.client import connect as kube_connect

    worker = demo.world.talos.node("worker-2")
    before = worker.boot_id
    operator = _talosconfig(demo, tmp_path, "os:operator")
    reboot = invoke("talos.reboot-node", "worker-2", "--talosconfig", str(operator), "--timeout", "30")
    assert reboot.returncode == 0, reboot.stderr
    assert worker.boot_id != before
    with client_with(demo.world, roles=("os:operator",)) as talos, kube_connect(demo.kubeconfig) as kube:
        source, kube_source = ApiTalosSource(talos), ApiKubeSource(kube, watch_seconds=2)
        assert source.machine(worker.ip).boot_id == ""  # unreadable for this role on 1.11
        target = NodeTarget(worker.hostname, worker.ip)
        ctx = GateContext([target], target, stage="reboot", expected_version=OLD, previous_boot_id=before)
        back = replace(default_policy().reboot_gates()[0], timeout=20)
        engine = GateEngine(kube_source, source, poll_interval=0.1, resync_interval=0.5)
        try:
            started = time.monotonic()
            engine.wait([back], ctx)
            assert time.monotonic() - started < 20
            status = engine.check([back], ctx)[0]
            rebooted = next(c for c in status.checks if c.name == "rebooted")
            assert rebooted.ok and rebooted.observed == "new boot id"
            # and against the previous boot it is not fooled
            stale = replace(ctx, previous_boot_id=worker.boot_id)
            assert not engine.check([back], stale)[0].ok
        finally:
            source.close()
            kube_source.close()


def test_on_1_14_every_role_reads_the_boot_id_from_the_bootid_resource(loopback_subnet):
    """Talos 1.14 publishes BootIDs.runtime.talos.dev/boot-id: readers and operators get the
    kernel boot id from it (no admin-only Read), and a gate sees a reboot without Kubernetes."""
    from simtalos import make_world

    world = make_world(loopback_subnet, talos_version="v1.14.0").start()
    try:
        node = world.talos.node("worker-1")
        with client_with(world, roles=("os:reader",)) as reader:
            before = reader.boot_id(node.ip)
            assert before == node.boot_id
            source = ApiTalosSource(reader)
            target = NodeTarget(node.hostname, node.ip)
            with client_with(world, roles=("os:operator",)) as operator:
                operator.reboot(node=node.ip)
            ctx = GateContext(
                [target], target, stage="reboot", expected_version="v1.14.0", previous_boot_id=before
            )
            back = replace(default_policy().reboot_gates()[0], timeout=20)
            try:
                GateEngine(None, source, poll_interval=0.1, resync_interval=0.5).wait([back], ctx)
            finally:
                source.close()
            assert source.machine(node.ip).boot_id == node.boot_id != before
        reads = [e for e in world.recorder.entries("talos.api", method="Read")]
        assert reads == []
    finally:
        world.stop()
