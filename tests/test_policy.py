"""The upgrade-policy file: shipped demo, defaults, every kind of bad input with file:line."""

from __future__ import annotations

import textwrap

import pytest

from taltasks.errors import InputError
from taltasks.model.durations import format_duration, parse_duration
from taltasks.model.policy import POLICY_FILE, default_policy, load_policy
from testpaths import REPO_ROOT


def write(tmp_path, text: str, name: str = POLICY_FILE):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_shipped_demo_policy_loads():
    policy = load_policy(REPO_ROOT)
    assert policy.source == POLICY_FILE
    assert [g.kind for g in policy.pre] == ["talos-node", "etcd", "kube-node", "ceph", "cnpg", "expression"]
    ceph = next(g for g in policy.post if g.kind == "ceph")
    assert ceph.timeout == 180.0 and ceph.window == policy.stability.window
    check = policy.post[-1]
    assert check.get("expr") == "status.ceph.health in ['HEALTH_OK']" and check.window == 0.0
    assert check.where == f"{POLICY_FILE}:60"


def test_defaults_apply_without_a_file(tmp_path):
    policy = load_policy(tmp_path)
    assert policy == default_policy() and policy.source is None
    assert policy.stability.window == 180.0 and policy.timeouts.reboot < 600
    for stage in ("preflight", "pre", "post"):
        kinds = [g.kind for g in policy.gates(stage)]
        assert kinds == ["talos-node", "etcd", "kube-node", "ceph", "cnpg"]
    windows = {g.kind: g.window for g in policy.post}
    assert windows == {"talos-node": 0.0, "etcd": 0.0, "kube-node": 180.0, "ceph": 180.0, "cnpg": 180.0}


@pytest.mark.parametrize(
    ("text", "domains"),
    [("1 domain", 1), ("2 domains", 2), (3, 3), ("1 failure domain", 1), ("2 failure-domains", 2)],
)
def test_batching_counts_failure_domains(tmp_path, text, domains):
    write(
        tmp_path,
        f"order: {{zoneLabel: topology.rook.io/rack}}\nbatching:\n  by: failure-domain\n  maxUnavailable: {text}\n",
    )
    b = load_policy(tmp_path).batching
    assert (b.max_domains, b.label, b.max_nodes, b.on_unsafe) == (
        domains,
        "topology.rook.io/rack",
        None,
        "one-at-a-time",
    )
    assert b.describe().startswith("workers by topology.rook.io/rack: ")


def test_handoff_section(tmp_path):
    write(
        tmp_path,
        """
        handoff:
          engine: tuppr
          path: kubernetes/apps/system-upgrade/upgrades
          maintenanceWindows:
            - {start: "0 2 * * SUN", duration: 4h30m, timezone: Europe/Paris}
            - {start: "*/15 1-3 * * 1-5", duration: 10m}
        """,
    )
    h = load_policy(tmp_path).handoff
    assert (h.engine, h.path) == ("tuppr", "kubernetes/apps/system-upgrade/upgrades")
    assert [(w.start, w.duration, w.timezone) for w in h.windows] == [
        ("0 2 * * SUN", 16200.0, "Europe/Paris"),
        ("*/15 1-3 * * 1-5", 600.0, "UTC"),
    ]
    assert default_policy().handoff.windows == ()


def test_batching_defaults_to_one_node_at_a_time(tmp_path):
    assert not default_policy().batching.enabled
    assert default_policy().batching.describe() == "one node at a time"
    write(tmp_path, "batching: {by: node}\n")
    assert not load_policy(tmp_path).batching.enabled


def test_reboot_gates_wait_for_talos_and_ready_but_not_schedulable():
    back, ready = default_policy().reboot_gates()
    assert (back.kind, back.id, back.timeout, back.window) == ("talos-node", "back", 540.0, 0.0)
    assert (ready.kind, ready.timeout, ready.window) == ("kube-node", 540.0, 0.0)
    assert ready.get("scope") == "node" and ready.get("schedulable") is False


def test_a_full_policy_maps_onto_values(tmp_path):
    write(
        tmp_path,
        """
        order: {strategy: zones, zoneLabel: example.com/rack, etcdLeaderLast: false}
        batching: {by: failure-domain, maxUnavailable: 1 domain, maxNodes: 5, onUnsafe: stop}
        stability: {window: 4m, freshSamples: 3, staleAfter: 5m}
        timeouts: {gate: 20m, drain: 1h, reboot: 8m, switchover: 90s}
        drain: {enabled: true, gracePeriod: 120, force: true, retryInterval: 10s}
        maintenance:
          flux: {suspend: false}
          cnpg: {maintenanceWindow: true, reusePVC: true}
          tuppr: {pause: false}
        etcdSnapshot: false
        gates:
          pre: [etcd]
          post:
            - gate: ceph
              id: storage
              allow: [RECENT_CRASH]
              window: 10m
              timeout: 30m
            - gate: cnpg
              namespace: db
              labelSelector: {matchLabels: {tier: main}}
        """,
    )
    p = load_policy(tmp_path)
    assert (p.order.strategy, p.order.zone_label, p.order.etcd_leader_last) == (
        "zones",
        "example.com/rack",
        False,
    )
    b = p.batching
    assert (b.enabled, b.label, b.max_domains, b.max_nodes, b.on_unsafe) == (
        True,
        "example.com/rack",
        1,
        5,
        "stop",
    )
    assert b.where == f"{POLICY_FILE}:2"
    assert (p.stability.window, p.stability.fresh_samples, p.stability.stale_after) == (240.0, 3, 300.0)
    assert (p.timeouts.gate, p.timeouts.drain, p.timeouts.switchover) == (1200.0, 3600.0, 90.0)
    assert p.drain.grace_period == 120 and p.drain.force and p.drain.retry_interval == 10.0
    assert not p.maintenance.flux_suspend and p.maintenance.cnpg_maintenance and not p.maintenance.tuppr_pause
    assert not p.etcd_snapshot
    assert [g.kind for g in p.preflight] == [
        "talos-node",
        "etcd",
        "kube-node",
        "ceph",
        "cnpg",
    ]  # untouched stage
    assert [g.id for g in p.pre] == ["etcd"]
    storage, db = p.post
    assert (storage.id, storage.window, storage.timeout, storage.get("allow")) == (
        "storage",
        600.0,
        1800.0,
        ("RECENT_CRASH",),
    )
    assert storage.get("freshSamples") == 3 and storage.get("staleAfter") == 300.0
    assert db.get("labelSelector") == {"matchLabels": {"tier": "main"}, "matchExpressions": []}
    assert db.window == 240.0 and db.timeout == 1200.0


BAD = [
    (
        "unknown top key",
        "stabilty:\n  window: 1m\n",
        "unknown key 'stabilty' in the policy (did you mean 'stability'?)",
        1,
    ),
    (
        "unknown nested key",
        "timeouts:\n  gate: 1m\n  rebot: 5m\n",
        "unknown key 'rebot' in timeouts (did you mean 'reboot'?)",
        3,
    ),
    ("bad duration", "stability:\n  window: 3 minutes\n", "window: '3 minutes' is not a duration", 2),
    ("negative timeout", "timeouts:\n  gate: 0s\n", "gate must be longer than 0s", 2),
    (
        "bad strategy",
        "order:\n  strategy: zone\n",
        "strategy must be one of control-planes-first, zones, not 'zone' (did you mean 'zones'?)",
        2,
    ),
    (
        "unknown gate kind",
        "gates:\n  pre:\n    - etcd\n    - cephh\n",
        "unknown gate kind 'cephh' (did you mean 'ceph'?)",
        4,
    ),
    ("unknown kind in mapping", "gates:\n  post:\n    - gate: postgres\n", "unknown gate kind 'postgres'", 3),
    ("gate entry without kind", "gates:\n  post:\n    - allow: [X]\n", "gate entry has no 'gate' key", 3),
    (
        "unknown gate setting",
        "gates:\n  post:\n    - gate: ceph\n      alow: [X]\n",
        "unknown setting 'alow' for a ceph gate (did you mean 'allow'?)",
        4,
    ),
    (
        "forbidden allow",
        "gates:\n  post:\n    - gate: ceph\n      allow:\n        - OSD_FLAGS\n        - PG_AVAILABILITY\n",
        "PG_AVAILABILITY cannot be allowed",
        6,
    ),
    (
        "full is forbidden",
        "gates:\n  post:\n    - gate: ceph\n      allow: [POOL_NEARFULL]\n",
        "POOL_NEARFULL cannot be allowed",
        4,
    ),
    (
        "bad gate timeout",
        "gates:\n  post:\n    - gate: etcd\n      timeout: soon\n",
        "timeout: 'soon' is not a duration",
        4,
    ),
    (
        "bad scope",
        "gates:\n  post:\n    - gate: kube-node\n      scope: one\n",
        "scope: expected one of node, all",
        4,
    ),
    (
        "name and selector",
        "gates:\n  post:\n    - gate: cnpg\n      name: a\n      labelSelector: {matchLabels: {a: b}}\n",
        "set either 'name' or 'labelSelector', not both",
        5,
    ),
    (
        "selector operator",
        "gates:\n  post:\n    - gate: cnpg\n      labelSelector:\n        matchExpressions:\n          - {key: a, operator: Has}\n",
        "operator must be In, NotIn, Exists or DoesNotExist",
        6,
    ),
    (
        "invalid CEL",
        "healthChecks:\n  - apiVersion: v1\n    kind: Node\n    expr: status.conditions.exists(c, c.type ==\n",
        "invalid CEL at line 1, column",
        4,
    ),
    ("CEL missing", "healthChecks:\n  - apiVersion: v1\n    kind: Node\n", "expression gate needs 'expr'", 2),
    (
        "tuppr unknown field",
        "healthChecks:\n  - apiVersion: v1\n    kind: Node\n    expr: 'true'\n    gate: etcd\n",
        "unknown setting 'gate' for a expression gate",
        5,
    ),
    (
        "tuppr bad timeout",
        "healthChecks:\n  - apiVersion: v1\n    kind: Node\n    expr: 'true'\n    timeout: 10x\n",
        "timeout: '10x' is not a duration",
        5,
    ),
    ("wrong type", "etcdSnapshot: yes please\n", "etcdSnapshot must be true or false", 1),
    (
        "flux kind",
        "maintenance:\n  flux:\n    kinds: [Kustomization, GitRepo]\n",
        "unknown Flux kind 'GitRepo'",
        3,
    ),
    ("gates not a mapping", "gates: [etcd]\n", "gates must be a mapping", 1),
    (
        "old order.batch",
        "order:\n  strategy: zones\n  batch: zone\n",
        "order.batch is replaced by the 'batching' section",
        3,
    ),
    (
        "batching by typo",
        "batching:\n  by: zone\n",
        "by must be one of node, failure-domain, not 'zone'",
        2,
    ),
    (
        "batching domains as nodes",
        "batching:\n  by: failure-domain\n  maxUnavailable: 3 nodes\n",
        "maxUnavailable must count failure domains, like '1 domain', not '3 nodes'",
        3,
    ),
    (
        "batching zero domains",
        "batching:\n  by: failure-domain\n  maxUnavailable: 0\n",
        "maxUnavailable must count failure domains",
        3,
    ),
    (
        "batching label",
        "batching:\n  by: failure-domain\n  label: 'zone name'\n",
        "label: 'zone name' is not a Kubernetes label key",
        3,
    ),
    (
        "batching key without failure-domain",
        "batching:\n  maxNodes: 4\n",
        "batching.maxNodes only applies with 'by: failure-domain'",
        2,
    ),
    (
        "batching maxNodes zero",
        "batching:\n  by: failure-domain\n  maxNodes: 0\n",
        "maxNodes must be a whole number ≥ 1",
        3,
    ),
    (
        "handoff window without start",
        "handoff:\n  maintenanceWindows:\n    - {duration: 4h}\n",
        "a maintenance window needs 'start' (cron) and 'duration'",
        3,
    ),
    (
        "handoff cron fields",
        "handoff:\n  maintenanceWindows:\n    - start: '0 2 * *'\n      duration: 4h\n",
        "start must be a 5-field cron expression, not '0 2 * *'",
        3,
    ),
    (
        "handoff cron range",
        "handoff:\n  maintenanceWindows:\n    - start: '0 25 * * 0'\n      duration: 4h\n",
        "start: hour 25 is outside 0-23",
        3,
    ),
    (
        "handoff window too long",
        "handoff:\n  maintenanceWindows:\n    - {start: '0 2 * * 0', duration: 200h}\n",
        "duration may be at most 168h",
        3,
    ),
    (
        "handoff timezone",
        "handoff:\n  maintenanceWindows:\n    - {start: '0 2 * * 0', duration: 4h, timezone: Mars/Olympus}\n",
        "unknown time zone 'Mars/Olympus'",
        3,
    ),
    ("handoff engine", "handoff:\n  engine: omni\n", "engine must be one of tuppr, not 'omni'", 2),
    ("handoff path escapes", "handoff:\n  path: ../elsewhere\n", "must stay inside the repository", 2),
    (
        "batching onUnsafe",
        "batching:\n  by: failure-domain\n  onUnsafe: serial\n",
        "onUnsafe must be one of one-at-a-time, stop, not 'serial'",
        3,
    ),
    ("malformed yaml", "order: {strategy: zones\n", "malformed YAML", 2),
]


@pytest.mark.parametrize(("label", "text", "message", "line"), BAD, ids=[b[0] for b in BAD])
def test_bad_policy_is_an_error_at_file_and_line(tmp_path, label, text, message, line):
    path = write(tmp_path, text)
    before = path.read_bytes()
    with pytest.raises(InputError) as info:
        load_policy(tmp_path)
    err = info.value
    assert message in err.message, err.render()
    assert err.where == f"{POLICY_FILE}:{line}", err.render()
    assert err.exit_code == 2
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.rglob("*")) == [
        "talos",
        "upgrade-policy.yaml",
    ]


def test_invalid_cel_message_points_at_the_column(tmp_path):
    write(tmp_path, 'healthChecks:\n  - {apiVersion: v1, kind: Node, expr: "status.ready =="}\n')
    with pytest.raises(InputError) as info:
        load_policy(tmp_path)
    assert "status.ready ==\n" in info.value.message and info.value.message.rstrip().endswith("^")
    assert "variables are 'object'" in info.value.hint


TUPPR = """
apiVersion: tuppr.home-operations.com/v1alpha1
kind: TalosUpgrade
metadata:
  name: talos
spec:
  talos: {version: v1.12.1}
  healthChecks:
    - apiVersion: ceph.rook.io/v1
      kind: CephCluster
      name: rook-ceph
      namespace: rook-ceph
      expr: status.ceph.health in ['HEALTH_OK']
      timeout: 10m
    - apiVersion: postgresql.cnpg.io/v1
      kind: Cluster
      labelSelector:
        matchLabels: {app: db}
      expr: status.readyInstances == object.spec.instances
"""


def test_health_checks_from_a_tuppr_manifest(tmp_path):
    write(tmp_path, TUPPR, "kubernetes/apps/system-upgrade/talos.yaml")
    write(
        tmp_path, "healthChecksFrom: kubernetes/apps/system-upgrade/talos.yaml\ngates: {pre: [], post: []}\n"
    )
    p = load_policy(tmp_path)
    ceph, pg = p.pre
    assert (ceph.id, ceph.timeout, ceph.get("name")) == (
        "check CephCluster rook-ceph/rook-ceph",
        600.0,
        "rook-ceph",
    )
    assert pg.get("labelSelector")["matchLabels"] == {"app": "db"} and pg.timeout == 900.0
    assert ceph.where == "kubernetes/apps/system-upgrade/talos.yaml:8"
    assert p.post == p.pre


def test_errors_in_a_tuppr_manifest_point_into_it(tmp_path):
    write(
        tmp_path,
        TUPPR.replace("expr: status.readyInstances", "expr: status.readyInstances ==="),
        "tuppr.yaml",
    )
    write(tmp_path, "healthChecksFrom: tuppr.yaml\n")
    with pytest.raises(InputError) as info:
        load_policy(tmp_path)
    assert info.value.where == "tuppr.yaml:18" and "invalid CEL" in info.value.message
    write(tmp_path, "kind: ConfigMap\n", "tuppr.yaml")
    with pytest.raises(InputError, match="holds no tuppr TalosUpgrade") as info:
        load_policy(tmp_path)
    assert info.value.where == f"{POLICY_FILE}:1"
    write(tmp_path, "healthChecksFrom: missing.yaml\n")
    with pytest.raises(InputError, match=r"missing\.yaml does not exist"):
        load_policy(tmp_path)


def test_repeated_gates_get_distinct_ids(tmp_path):
    write(
        tmp_path,
        """
        gates:
          pre:
            - {gate: ceph, namespace: a}
            - {gate: ceph, namespace: b}
        healthChecks:
          - {apiVersion: v1, kind: Node, expr: 'true'}
          - {apiVersion: v1, kind: Node, expr: 'false'}
        """,
    )
    assert [g.id for g in load_policy(tmp_path).pre] == ["ceph", "ceph #2", "check Node", "check Node #2"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1h30m", 5400), ("500ms", 0.5), ("1m0s", 60), ("2.5s", 2.5), (45, 45)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "ten minutes", "-5s", "5 m", "1d", True, None, -3])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (2.5, "2.5s"), (45, "45s"), (600, "10m"), (5400, "1h30m"), (3600, "1h"), (0, "0s")],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
