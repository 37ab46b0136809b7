"""etcd bootstrap against nodes whose runtime is still coming up: the simulator refuses as
machined does (v1.8 … v1.14: "bootstrap is not available yet" until CRI runs, "time is not
in sync yet" until the clock syncs), the workflow retries those within its deadline and,
when they never pass, gives up naming the last refusal."""

from __future__ import annotations

import threading
import time

import pytest

from configure_support import copy_demo, move_to_subnet
from taltasks.errors import OperationFailed
from taltasks.events import Collector, Emitter
from taltasks.sim import scenario as sc
from taltasks.sim.world import SimWorld
from taltasks.talos.client import TalosClient
from taltasks.talos.config import TalosConfig
from taltasks.talos.results import TalosCallError
from taltasks.workflows.bootstrap import BootstrapOptions, bootstrap, bootstrap_etcd
from taltasks.workflows.configure import configure
from testpaths import REPO_ROOT
from waiting import wait_until

SCENARIO = REPO_ROOT / "tests" / "scenarios" / "rook-cnpg.yaml"
FAST = {"reboot": 0.2, "boot": 0.05, "shutdown": 0.05, "install": 0.05, "timeSyncWait": 0.2}
# machined's messages (internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go)
NOT_AVAILABLE = "bootstrap is not available yet"
NOT_SYNCED = "time is not in sync yet"


@pytest.fixture
def held(tmp_path, loopback_subnet):
    """The demo repo, configured, and its machines in maintenance mode; cp-1's runtime will
    not come up (CRI stalled, clock unsynced) until the test lets it."""
    repo = move_to_subnet(copy_demo(tmp_path / "repo"), loopback_subnet)
    configure(repo, dry_run=False, confirm_new_secrets=False, emitter=Emitter())
    scenario = sc.load(SCENARIO)
    scenario.maintenance = True
    scenario.timings.update({sc.TIMING_KEYS[k]: v for k, v in FAST.items()})
    scenario.talos_faults["cp-1"] = {"cri_stalled": True, "time_unsynced": True}
    world = SimWorld.from_repo(repo, scenario).start()
    yield repo, world
    world.stop()


def _configured(repo) -> TalosClient:
    """Apply every node's config (the bootstrap's first stage), then a client with the
    cluster's talosconfig."""
    bootstrap(BootstrapOptions(root=repo, until="configs", timeout=30, poll=0.05), Emitter())
    return TalosClient.from_context(
        TalosConfig.load(repo / "talos" / "clusterconfig" / "talosconfig").context()
    )


def _refusals(events: Collector) -> list[str]:
    return [e.message for e in events.of("info") if "refused" in e.message]


def _bootstrap_calls(world) -> list[str]:
    return [e.data["code"] for e in world.recorder.entries("talos.api", method="Bootstrap")]


def test_bootstrap_retries_until_the_runtime_is_up(held):
    repo, world = held
    bootstrap(BootstrapOptions(root=repo, until="configs", timeout=30, poll=0.05), Emitter())
    events = Collector()
    cp1 = world.talos.node("cp-1")

    def release_in_order() -> None:
        # let the runtime come up only once each refusal has been seen by the workflow
        wait_until(lambda: any(NOT_AVAILABLE in m for m in _refusals(events)), 20, "'not available'")
        cp1.set_faults(cri_stalled=False)
        wait_until(lambda: any(NOT_SYNCED in m for m in _refusals(events)), 20, "'not in sync'")
        cp1.set_faults(time_unsynced=False)

    helper = threading.Thread(target=release_in_order, daemon=True)
    helper.start()
    run = bootstrap(BootstrapOptions(root=repo, until="etcd", timeout=30, poll=0.05), Emitter(events))
    helper.join(5)
    assert run.done == ["etcd"]
    calls = _bootstrap_calls(world)
    assert calls[-1] == "OK" and set(calls[:-1]) == {"FAILED_PRECONDITION"} and len(calls) >= 3
    assert world.talos.etcd.bootstrapped
    assert sorted(m.hostname for m in world.talos.etcd.members.values()) == ["cp-1", "cp-2", "cp-3"]


def test_bootstrap_gives_up_at_its_deadline_naming_the_last_refusal(held):
    repo, world = held
    bootstrap(BootstrapOptions(root=repo, until="configs", timeout=30, poll=0.05), Emitter())
    world.set_talos_faults("cp-1", cri_stalled=False)  # CRI runs; the clock never syncs
    started = time.monotonic()
    with pytest.raises(OperationFailed) as info:
        bootstrap(BootstrapOptions(root=repo, until="etcd", timeout=2.0, poll=0.05), Emitter())
    took = time.monotonic() - started
    assert took <= 2.0 * 1.1 + 0.5  # the deadline, plus the stage's own quick checks
    assert "etcd bootstrap" in info.value.message and NOT_SYNCED in info.value.message
    assert "FAILED_PRECONDITION" in info.value.message
    assert not world.talos.etcd.bootstrapped
    assert set(_bootstrap_calls(world)) == {"FAILED_PRECONDITION"}


def test_a_refusal_waiting_cannot_fix_stops_at_once(held):
    repo, world = held
    worker = world.talos.node("worker-1")
    with _configured(repo) as talos:
        started = time.monotonic()
        with pytest.raises(OperationFailed, match="control plane") as info:
            bootstrap_etcd(talos, worker.ip, timeout=20, poll=0.05)
    assert time.monotonic() - started < 5
    assert "not a worker" in info.value.hint
    assert _bootstrap_calls(world) == ["UNIMPLEMENTED"]


def test_simulator_refuses_with_machineds_messages_and_shows_why(held):
    repo, world = held
    cp1 = world.talos.node("cp-1")
    with _configured(repo) as talos:
        [services] = talos.services([cp1.ip])
        cri = next(s for s in services.value if s.id == "cri")
        assert (cri.state, cri.healthy) == ("Preparing", False)
        with pytest.raises(TalosCallError) as first:
            talos.bootstrap(node=cp1.ip)
        assert (first.value.code, first.value.error.message) == ("FAILED_PRECONDITION", NOT_AVAILABLE)
        cp1.set_faults(cri_stalled=False)
        status = talos.get("TimeStatuses.v1alpha1.talos.dev", "node", namespace="runtime", node=cp1.ip)
        assert status.spec["synced"] is False
        started = time.monotonic()
        with pytest.raises(TalosCallError) as second:
            talos.bootstrap(node=cp1.ip)
        assert (second.value.code, second.value.error.message) == ("FAILED_PRECONDITION", NOT_SYNCED)
        assert time.monotonic() - started >= 0.2  # machined waits for the clock before refusing
        cp1.set_faults(time_unsynced=False)
        talos.bootstrap(node=cp1.ip)
        status = talos.get("TimeStatuses.v1alpha1.talos.dev", "node", namespace="runtime", node=cp1.ip)
        assert status.spec["synced"] is True
        with pytest.raises(TalosCallError) as again:
            talos.bootstrap(node=cp1.ip)
        assert again.value.code == "ALREADY_EXISTS"
