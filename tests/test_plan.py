"""Upgrade planning and the etcd quorum guard: pure tables of cases."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from taltasks.errors import InputError, OperationFailed
from taltasks.gates.etcd import MemberHealth
from taltasks.model.policy import BatchingPolicy, OrderPolicy, default_policy
from taltasks.workflows.plan import ObservedNode, compare_versions, plan_upgrade, worker_batches
from taltasks.workflows.quorum import quorum_verdict, require_quorum

ZONE = "topology.kubernetes.io/zone"
IMAGE = "factory.talos.dev/installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:{}"


@dataclass(frozen=True)
class Node:
    """Shaped like the model's Node (hostname, ip, control_plane, talos_version, installer_image, zone, labels)."""

    hostname: str
    ip: str
    control_plane: bool = False
    talos_version: str = "v1.12.2"
    installer_image: str = ""
    zone: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.installer_image:
            object.__setattr__(self, "installer_image", IMAGE.format(self.talos_version))


CLUSTER = [
    Node("cp2", "127.0.0.12", True, zone="b"),
    Node("w1", "127.0.0.21", labels={ZONE: "a"}),
    Node("cp1", "127.0.0.11", True, zone="a"),
    Node("w3", "127.0.0.23", labels={ZONE: "a"}),
    Node("cp3", "127.0.0.13", True, zone="c"),
    Node("w2", "127.0.0.22", labels={ZONE: "b"}),
]


def running(version="v1.12.1", leader="cp1", **per_node):
    out = {}
    for n in CLUSTER:
        v = per_node.get(n.hostname, version)
        out[n.hostname] = (
            v
            if isinstance(v, ObservedNode)
            else ObservedNode(n.hostname, v, etcd_leader=n.hostname == leader)
        )
    return out


def order_of(plan):
    return [s.hostname for s in plan.steps]


def test_control_planes_first_leader_last_then_workers():
    plan = plan_upgrade(CLUSTER, running(), default_policy())
    assert order_of(plan) == ["cp2", "cp3", "cp1", "w1", "w2", "w3"]
    assert [s.batch for s in plan.steps] == [1, 2, 3, 4, 5, 6]
    assert [s.reason for s in plan.steps] == ["v1.12.1 → v1.12.2"] * 6
    assert [s.snapshot_before for s in plan.steps] == [True, False, False, False, False, False]
    assert plan.step("cp1").row()["role"] == "controlplane (etcd leader)"
    assert plan.summary() == "6 to upgrade"


def test_leader_order_can_be_switched_off():
    plan = plan_upgrade(CLUSTER, running(), OrderPolicy(etcd_leader_last=False))
    assert order_of(plan)[:3] == ["cp1", "cp2", "cp3"]
    assert not any(s.snapshot_before for s in plan.steps)  # an OrderPolicy alone carries no snapshot setting


BY_ZONE = BatchingPolicy(by="failure-domain")


def test_zone_order_and_zone_batches():
    by_zone = OrderPolicy(strategy="zones")
    plan = plan_upgrade(CLUSTER, running(), by_zone)
    assert order_of(plan) == ["cp2", "cp3", "cp1", "w1", "w3", "w2"]
    assert [s.batch for s in plan.steps] == [1, 2, 3, 4, 5, 6]
    plan = plan_upgrade(CLUSTER, running(), by_zone, batching=BY_ZONE)
    assert [s.batch for s in plan.steps] == [1, 2, 3, 4, 4, 5]
    assert [[s.hostname for s in b] for b in plan.batches()] == [
        ["cp2"],
        ["cp3"],
        ["cp1"],
        ["w1", "w3"],
        ["w2"],
    ]
    assert [s.domain for s in plan.steps] == [None, None, None, "a", "a", "b"]
    assert plan.batching == BY_ZONE


def test_zone_from_observation_and_nodes_without_zone_go_last_alone():
    nodes = [Node("w1", "127.0.0.21"), Node("w2", "127.0.0.22", labels={ZONE: "a"}), Node("w3", "127.0.0.23")]
    seen = {
        "w1": ObservedNode("w1", "v1.12.1", zone="b"),
        "w2": ObservedNode("w2", "v1.12.1"),
        "w3": ObservedNode("w3", "v1.12.1"),
    }
    plan = plan_upgrade(nodes, seen, OrderPolicy(strategy="zones"), batching=BY_ZONE)
    assert [(s.hostname, s.zone, s.batch) for s in plan.steps] == [
        ("w2", "a", 1),
        ("w1", "b", 2),
        ("w3", None, 3),
    ]


RACK = "topology.rook.io/rack"


def workers(spec: str, *, label: str = ZONE) -> list[Node]:
    """``"a:3 b:2 -:1"`` → 3 workers in domain a, 2 in b, 1 without the label."""
    out = []
    for part in spec.split():
        domain, count = part.split(":")
        for _ in range(int(count)):
            i = len(out) + 1
            labels = {} if domain == "-" else {label: domain}
            out.append(Node(f"w{i:02d}", f"127.0.0.{20 + i}", labels=labels))
    return out


BATCH_CASES = [
    # (workers, batching, batches as "domain×size" per batch)
    ("a:3 b:3 c:3", BY_ZONE, ["a×3", "b×3", "c×3"]),
    ("a:10 b:10 c:10", BY_ZONE, ["a×10", "b×10", "c×10"]),
    (
        "a:10 b:10 c:10",
        BatchingPolicy(by="failure-domain", max_nodes=4),
        ["a×4", "a×3", "a×3", "b×4", "b×3", "b×3", "c×4", "c×3", "c×3"],
    ),
    ("a:2 b:2 c:2 d:2", BatchingPolicy(by="failure-domain", max_domains=2), ["a×2+b×2", "c×2+d×2"]),
    ("a:2 b:2 c:2", BatchingPolicy(by="failure-domain", max_domains=2), ["a×2+b×2", "c×2"]),
    ("a:2 -:2 b:1", BY_ZONE, ["a×2", "b×1", "-×1", "-×1"]),
    ("-:3", BY_ZONE, ["-×1", "-×1", "-×1"]),
    ("a:2 b:2", BatchingPolicy(), ["a×1", "a×1", "b×1", "b×1"]),
]


def shape(batch) -> str:
    counts: dict[str, int] = {}
    for s in batch:
        counts[s.domain or "-"] = counts.get(s.domain or "-", 0) + 1
    return "+".join(f"{d}×{n}" for d, n in counts.items())


@pytest.mark.parametrize(("spec", "batching", "expected"), BATCH_CASES)
def test_failure_domain_batches(spec, batching, expected):
    nodes = workers(spec)
    seen = {n.hostname: ObservedNode(n.hostname, "v1.12.1") for n in nodes}
    plan = plan_upgrade(nodes, seen, default_policy(), batching=batching)
    got = [shape(b) for b in plan.batches()]
    if not batching.enabled:  # one at a time: no domains recorded, zones come from the labels
        got = [f"{s.zone}×1" for b in plan.batches() for s in b]
    assert got == expected
    assert sorted(s.hostname for b in plan.batches() for s in b) == sorted(n.hostname for n in nodes)
    assert [s.order for s in plan.steps] == list(range(1, len(nodes) + 1))


def test_batching_reads_its_own_label_from_talconfig_or_the_live_node():
    nodes = [
        Node("w1", "127.0.0.21", labels={RACK: "r1", ZONE: "a"}),
        Node("w2", "127.0.0.22", labels={ZONE: "a"}),
        Node("w3", "127.0.0.23"),
    ]
    seen = {
        "w1": ObservedNode("w1", "v1.12.1"),
        "w2": ObservedNode("w2", "v1.12.1", labels={RACK: "r1"}),
        "w3": ObservedNode("w3", "v1.12.1", zone="b", labels={RACK: "r2"}),
    }
    plan = plan_upgrade(
        nodes, seen, default_policy(), batching=BatchingPolicy(by="failure-domain", label=RACK)
    )
    assert [[s.hostname for s in b] for b in plan.batches()] == [["w1", "w2"], ["w3"]]
    assert [s.domain for s in plan.steps] == ["r1", "r1", "r2"]


def test_control_planes_never_batch_and_skipped_workers_keep_their_domain_row():
    cluster = [
        Node("cp1", "127.0.0.11", True, labels={ZONE: "a"}),
        Node("cp2", "127.0.0.12", True, labels={ZONE: "a"}),
        *workers("a:3 b:2"),
    ]
    seen = {n.hostname: ObservedNode(n.hostname, "v1.12.1") for n in cluster}
    seen["w02"] = ObservedNode("w02", "v1.12.2")  # already done
    plan = plan_upgrade(cluster, seen, default_policy(), batching=BY_ZONE)
    assert [[s.hostname for s in b] for b in plan.batches()] == [
        ["cp1"],
        ["cp2"],
        ["w01", "w03"],
        ["w04", "w05"],
    ]
    assert order_of(plan) == ["cp1", "cp2", "w01", "w03", "w02", "w04", "w05"]
    assert plan.step("w02").batch is None and plan.step("w02").domain == "a"
    assert plan.step("cp1").domain is None


def test_worker_batches_is_pure_over_steps():
    nodes = workers("b:1 a:2")
    plan = plan_upgrade(
        nodes,
        {n.hostname: ObservedNode(n.hostname, "v1.12.1") for n in nodes},
        default_policy(),
        batching=BY_ZONE,
    )
    regrouped = worker_batches(list(reversed(plan.actions)), BY_ZONE)
    assert [[s.hostname for s in b] for b in regrouped] == [["w02", "w03"], ["w01"]]


CASES = [
    # (running on w2, desired on w2, allow_downgrade, action, reason)
    ("v1.12.1", "v1.12.2", False, "upgrade", "v1.12.1 → v1.12.2"),
    ("v1.12.2", "v1.12.2", False, "skip", "already at v1.12.2"),
    ("1.12.2", "v1.12.2", False, "skip", "already at v1.12.2"),
    (
        "v1.12.10",
        "v1.12.9",
        False,
        "refuse",
        "downgrade v1.12.10 → v1.12.9 refused without --allow-downgrade",
    ),
    ("v1.12.10", "v1.12.9", True, "upgrade", "downgrade v1.12.10 → v1.12.9 (allowed)"),
    ("v1.13.0-beta.1", "v1.13.0", False, "upgrade", "v1.13.0-beta.1 → v1.13.0"),
    (
        "v1.13.0",
        "v1.13.0-beta.1",
        False,
        "refuse",
        "downgrade v1.13.0 → v1.13.0-beta.1 refused without --allow-downgrade",
    ),
    (None, "v1.12.2", False, "refuse", "not reachable: connection refused"),
    ("banana", "v1.12.2", False, "refuse", "cannot compare versions vbanana and v1.12.2"),
]


@pytest.mark.parametrize(("run", "want", "allow", "action", "reason"), CASES)
def test_action_and_reason_per_node(run, want, allow, action, reason):
    nodes = [Node("w2", "127.0.0.22", talos_version=want)]
    seen = {"w2": ObservedNode("w2", run, error="connection refused" if run is None else None)}
    step = plan_upgrade(nodes, seen, allow_downgrade=allow).steps[0]
    assert (step.action, step.reason) == (action, reason)
    assert (step.batch is not None) == (action == "upgrade")


def test_per_node_pins_and_schematic_changes():
    nodes = [
        Node("w1", "127.0.0.21", talos_version="v1.12.2"),
        Node("w2", "127.0.0.22", talos_version="v1.11.6"),  # pinned to an older release on purpose
        Node(
            "w3",
            "127.0.0.23",
            talos_version="v1.12.2",
            installer_image="factory.talos.dev/installer/abc:v1.12.2",
        ),
    ]
    seen = {
        "w1": ObservedNode("w1", "v1.12.2", image=IMAGE.format("v1.12.2")),
        "w2": ObservedNode("w2", "v1.11.6"),
        "w3": ObservedNode("w3", "v1.12.2", image=IMAGE.format("v1.12.2")),
    }
    plan = plan_upgrade(nodes, seen)
    assert [(s.hostname, s.action, s.reason) for s in plan.steps] == [
        ("w1", "skip", "already at v1.12.2"),
        ("w2", "skip", "already at v1.11.6"),
        ("w3", "upgrade", "installer image changes (Talos stays v1.12.2)"),
    ]


def test_rerun_after_completion_has_nothing_to_do():
    plan = plan_upgrade(CLUSTER, running("v1.12.2"), default_policy())
    assert plan.nothing_to_do and plan.batches() == []
    assert plan.summary() == "0 to upgrade, 6 already at the desired version"
    assert {r["action"] for r in plan.rows()} == {"skip"}


def test_resume_skips_nodes_already_done():
    seen = running("v1.12.1", cp2="v1.12.2", cp3="v1.12.2")
    plan = plan_upgrade(CLUSTER, seen, default_policy())
    assert [s.hostname for s in plan.actions] == ["cp1", "w1", "w2", "w3"]
    assert plan.step("cp1").snapshot_before  # the first control plane still to do


def test_refusals_block_the_whole_run_with_every_reason():
    seen = running(w1=ObservedNode("w1", None, error="i/o timeout"), w3="v1.13.0")
    plan = plan_upgrade(CLUSTER, seen, default_policy())
    with pytest.raises(InputError) as info:
        plan.require_executable()
    assert info.value.message == (
        "cannot upgrade w1: not reachable: i/o timeout; also w3: downgrade v1.13.0 → v1.12.2 refused without --allow-downgrade"
    )
    assert info.value.where == "w1" and "--allow-downgrade" in info.value.hint
    plan_upgrade(CLUSTER, running(), default_policy()).require_executable()  # nothing refused: no error


def test_only_selected_nodes_and_unknown_names():
    plan = plan_upgrade(CLUSTER, running(), default_policy(), only=["w2"])
    assert order_of(plan) == ["w2"]
    with pytest.raises(InputError) as info:
        plan_upgrade(CLUSTER, running(), default_policy(), only=["w4x", "cp1"])
    assert info.value.message == "unknown node 'w4x'"
    assert info.value.hint == "nodes in talos/talconfig.yaml: cp2, w1, cp1, w3, cp3, w2"
    with pytest.raises(InputError, match="did you mean 'cp3'"):
        plan_upgrade(CLUSTER, running(), only=["cp33"])


@pytest.mark.parametrize(
    ("a", "b", "result"),
    [
        ("v1.12.1", "v1.12.1", 0),
        ("v1.12.1", "v1.12.10", -1),
        ("v1.13.0", "v1.12.99", 1),
        ("v1.13.0-alpha.2", "v1.13.0-beta.1", -1),
        ("v1.13.0-beta.10", "v1.13.0-beta.9", 1),
        ("v1.12", "v1.12.0", 0),
        ("latest", "v1.12.0", None),
    ],
)
def test_compare_versions(a, b, result):
    assert compare_versions(a, b) == result


# ---- quorum guard ---------------------------------------------------------------------------


def members(*spec: str) -> list[MemberHealth]:
    """'cp1' healthy, '!cp2' unhealthy, '~cp4' learner."""
    return [MemberHealth(s.lstrip("!~"), not s.startswith("!"), s.startswith("~")) for s in spec]


QUORUM = [
    (
        "3 healthy",
        ("cp1", "cp2", "cp3"),
        "cp1",
        True,
        "with cp1 down, 2 of 3 members stay healthy (quorum 2)",
    ),
    (
        "another unhealthy",
        ("cp1", "!cp2", "cp3"),
        "cp1",
        False,
        "with cp1 down, only 1 of 3 members would be healthy, below quorum 2 (unhealthy now: cp2)",
    ),
    (
        "target unhealthy",
        ("cp1", "!cp2", "cp3"),
        "cp2",
        True,
        "with cp2 down, 2 of 3 members stay healthy (quorum 2) (unhealthy now: cp2)",
    ),
    (
        "two members",
        ("cp1", "cp2"),
        "cp1",
        False,
        "with cp1 down, only 1 of 2 members would be healthy, below quorum 2",
    ),
    (
        "single member",
        ("cp1",),
        "cp1",
        True,
        "cp1 is the only etcd member: etcd is down while it reboots, its data is kept",
    ),
    (
        "five, one down",
        ("cp1", "!cp2", "cp3", "cp4", "cp5"),
        "cp1",
        True,
        "with cp1 down, 3 of 5 members stay healthy (quorum 3) (unhealthy now: cp2)",
    ),
    (
        "five, two down",
        ("cp1", "!cp2", "!cp3", "cp4", "cp5"),
        "cp1",
        False,
        "with cp1 down, only 2 of 5 members would be healthy, below quorum 3 (unhealthy now: cp2, cp3)",
    ),
    (
        "learners do not vote",
        ("cp1", "cp2", "cp3", "~cp4"),
        "cp1",
        True,
        "with cp1 down, 2 of 3 members stay healthy (quorum 2)",
    ),
    (
        "target is a learner",
        ("cp1", "!cp2", "cp3", "~cp4"),
        "cp4",
        True,
        "cp4 is a learner; quorum is unaffected",
    ),
    ("not a member", ("cp1", "cp2", "cp3"), "cp9", True, "cp9 is not an etcd member; quorum is unaffected"),
]


@pytest.mark.parametrize(("label", "spec", "target", "allowed", "reason"), QUORUM, ids=[q[0] for q in QUORUM])
def test_quorum_verdict(label, spec, target, allowed, reason):
    v = quorum_verdict(members(*spec), target)
    assert (v.allowed, v.reason) == (allowed, reason)


def test_force_skips_only_the_quorum_guard():
    with pytest.raises(OperationFailed) as info:
        require_quorum(members("cp1", "!cp2", "cp3"), "cp1")
    assert info.value.message.startswith("refusing to upgrade control plane cp1: with cp1 down, only 1 of 3")
    assert "--force" in info.value.hint and info.value.exit_code == 4
    v = require_quorum(members("cp1", "!cp2", "cp3"), "cp1", force=True)
    assert v.allowed and v.forced and v.reason.startswith("quorum guard skipped by --force: with cp1 down")
    assert not require_quorum(members("cp1", "cp2", "cp3"), "cp1", force=True).forced


# ---- several minors at once ------------------------------------------------------------------

PATH_CASES = [
    # (running, desired, action, path)
    ("v1.13.2", "v1.14.7", "upgrade", ["v1.14.7"]),
    ("v1.14.1", "v1.14.7", "upgrade", ["v1.14.7"]),
    ("v1.12.11", "v1.14.7", "refuse", ["v1.13.9", "v1.14.7"]),
    ("v1.10.3", "v1.14.7", "refuse", ["v1.10.9", "v1.11.6", "v1.12.11", "v1.13.9", "v1.14.7"]),
    (
        "v1.8.0",
        "v1.14.7",
        "refuse",
        ["v1.8.4", "v1.9.6", "v1.10.9", "v1.11.6", "v1.12.11", "v1.13.9", "v1.14.7"],
    ),
]


@pytest.mark.parametrize(("run", "want", "action", "path"), PATH_CASES)
def test_the_path_goes_minor_by_minor_through_each_latest_patch(run, want, action, path):
    step = plan_upgrade(
        [Node("w2", "127.0.0.22", talos_version=want)], {"w2": ObservedNode("w2", run)}
    ).steps[0]
    assert step.action == action
    assert [str(h.version) for h in step.path] == path
    assert [h["version"] for h in step.row()["path"]] == path  # what `talos.plan --json` shows


def test_a_jump_over_minors_is_refused_with_the_path_and_the_reasons():
    plan = plan_upgrade(
        [Node("w2", "127.0.0.22", talos_version="v1.14.7")], {"w2": ObservedNode("w2", "v1.10.3")}
    )
    step = plan.steps[0]
    assert step.reason == (
        "v1.10.3 → v1.14.7 skips Talos 1.11, 1.12, 1.13: upgrades are tested only between adjacent "
        "minors, and the 1.14 installer refuses hosts older than v1.12.0; "
        "path: v1.10.3 → v1.10.9 → v1.11.6 → v1.12.11 → v1.13.9 → v1.14.7"
    )
    hops = step.row()["path"]
    assert hops[0] == {
        "version": "v1.10.9",
        "contract": "1.10",
        "kubernetes": "1.28–1.33",
        "reason": "latest 1.10 patch first: the tested starting point for 1.11",
    }
    assert hops[1]["reason"] == (
        "latest 1.11 patch: upgrades are tested between adjacent minors; its installer accepts hosts from v1.9.0"
    )
    assert hops[-1] == {
        "version": "v1.14.7",
        "contract": "1.14",
        "kubernetes": "1.32–1.37",
        "reason": "desired version; its installer accepts hosts from v1.12.0",
    }
    with pytest.raises(InputError) as info:
        plan.require_executable()
    assert "set talosVersion to v1.10.9" in info.value.hint and "talos.plan" in info.value.hint
    (nodes, running, path) = plan.paths()[0]
    assert nodes == ["w2"] and running == "v1.10.3" and len(path) == 5


def test_skipping_one_minor_that_the_installer_accepts_is_still_refused():
    """1.12 → 1.14 passes the 1.14 installer's floor (1.12.0) but skips the tested 1.13 step."""
    step = plan_upgrade(
        [Node("w2", "127.0.0.22", talos_version="v1.14.7")], {"w2": ObservedNode("w2", "v1.12.11")}
    ).steps[0]
    assert (
        step.action == "refuse" and "skips Talos 1.13" in step.reason and "refuses hosts" not in step.reason
    )
