"""`invoke configure` on the shipped demo repository: clean run, idempotence, dry-run.

Validation of what it writes (official schemas, Talos's decoding rules) is in
test_validation_*.py."""

from __future__ import annotations

import json
import stat

import pytest

from configure_support import copy_demo, edit, run_invoke, snapshot
from taltasks.errors import InputError
from taltasks.events import Collector, Emitter
from taltasks.machineconfig import pki
from taltasks.machineconfig.encode import load_documents
from taltasks.model import load_cluster
from taltasks.model.schematic import schematic_id
from taltasks.secrets.store import SecretStore
from taltasks.talos.config import TalosConfig
from taltasks.workflows.configure import OUTPUT_DIR, configure


@pytest.fixture
def demo(tmp_path):
    return copy_demo(tmp_path / "repo")


def test_shipped_definition_loads_as_the_demo_cluster(demo):
    cluster = load_cluster(demo)
    assert (cluster.name, cluster.endpoint) == ("demo", "https://127.0.10.10:6443")
    assert (cluster.talos_version, cluster.kubernetes_version) == ("v1.11.5", "v1.34.3")
    assert [(n.hostname, n.ip) for n in cluster.control_planes] == [
        (f"cp-{i}", f"127.0.10.1{i}") for i in (1, 2, 3)
    ]
    assert [(n.hostname, n.ip, n.zone) for n in cluster.workers] == [
        (f"worker-{i}", f"127.0.10.2{i}", f"zone-{z}") for i, z in ((1, "a"), (2, "b"), (3, "c"))
    ]
    worker = cluster.node("worker-2")
    assert worker.schematic_id == schematic_id(
        {
            "customization": {
                "systemExtensions": {
                    "officialExtensions": ["siderolabs/iscsi-tools", "siderolabs/util-linux-tools"]
                }
            }
        }
    )
    assert worker.installer_image == f"factory.talos.dev/metal-installer/{worker.schematic_id}:v1.11.5"
    assert cluster.node("127.0.10.11").installer_image == "ghcr.io/siderolabs/installer:v1.11.5"
    assert all(n.install_disk == "/dev/sda" for n in cluster.nodes)
    with pytest.raises(InputError) as info:
        cluster.node("worker-9")
    assert "did you mean 'worker-" in info.value.message and "cp-1 (127.0.10.11)" in info.value.hint


def test_demo_configures_cleanly(demo):
    events = Collector()
    plan = configure(demo, emitter=Emitter(events))
    out = demo / OUTPUT_DIR
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        ".gitignore",
        *sorted(f"demo-{h}.yaml" for h in ("cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3")),
        "talosconfig",
    ]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for p in out.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert not events.of("warning"), [e.message for e in events.of("warning")]
    assert [r["config"] for r in plan.rows()] == ["created"] * 6
    worker = load_documents((out / "demo-worker-1.yaml").read_bytes())[0]
    cp = load_documents((out / "demo-cp-1.yaml").read_bytes())[0]
    assert worker["machine"]["install"]["image"].startswith("factory.talos.dev/metal-installer/")
    assert worker["machine"]["nodeLabels"] == {"topology.kubernetes.io/zone": "zone-a"}
    assert worker["machine"]["network"]["hostname"] == "worker-1"
    assert worker["machine"]["kubelet"]["extraArgs"] == {"rotate-server-certificates": "true"}
    assert worker["machine"]["kernel"]["modules"] == [{"name": "rbd"}, {"name": "nbd"}]
    assert cp["cluster"]["proxy"] == {"image": "registry.k8s.io/kube-proxy:v1.34.3", "disabled": True}
    assert cp["machine"]["nodeLabels"] == {"node.kubernetes.io/exclude-from-external-load-balancers": ""}
    # contract 1.11: the endpoint host first, then additionalApiServerCertSans
    assert cp["cluster"]["apiServer"]["certSANs"] == ["127.0.10.10", "k8s.demo.internal"]
    assert "etcd" not in worker["cluster"] and worker["machine"]["ca"]["key"] == ""


def test_talosconfig_has_admin_cert_and_cluster_addresses(demo):
    configure(demo)
    tc = TalosConfig.load(demo / OUTPUT_DIR / "talosconfig")
    ctx = tc.context()
    assert tc.current == "demo"
    assert ctx.endpoints == ["127.0.10.11", "127.0.10.12", "127.0.10.13"]
    assert ctx.nodes == [
        "127.0.10.11",
        "127.0.10.12",
        "127.0.10.13",
        "127.0.10.21",
        "127.0.10.22",
        "127.0.10.23",
    ]
    secrets = SecretStore(demo).load()
    assert ctx.ca == secrets.os.crt
    assert pki.verify_signed_by(ctx.crt, secrets.os.crt)
    cert = pki.load_certificate(ctx.crt)
    assert pki.organizations(cert) == ["os:admin"]
    assert pki.key_algorithm(pki.load_private_key(ctx.key)) == "ed25519"


def all_documents(out):
    for p in sorted(out.glob("demo-*.yaml")):
        yield p.name, load_documents(p.read_bytes())


def test_second_run_rewrites_nothing(demo):
    configure(demo)
    before = snapshot(demo)
    plan = configure(demo)
    assert snapshot(demo) == before  # same bytes, same mtimes, no new file
    assert {f.status for f in plan.files} == {"unchanged"}


def test_a_change_rewrites_only_the_affected_node(demo):
    configure(demo)
    before = snapshot(demo)
    edit(
        demo / "talos" / "talconfig.yaml",
        "topology.kubernetes.io/zone: zone-b",
        "topology.kubernetes.io/zone: zone-x",
    )
    plan = configure(demo)
    after = snapshot(demo)
    changed = sorted(k for k in after if after[k] != before.get(k))
    assert changed == ["talos/clusterconfig/demo-worker-2.yaml", "talos/talconfig.yaml"]
    assert [f.relpath for f in plan.changed] == ["talos/clusterconfig/demo-worker-2.yaml"]


def test_dry_run_writes_nothing_and_shows_a_redacted_diff(demo):
    configure(demo)
    edit(demo / "talos" / "talconfig.yaml", "installDisk: /dev/sda", "installDisk: /dev/nvme0n1")  # cp-1
    before = snapshot(demo)
    plan = configure(demo, dry_run=True)
    assert snapshot(demo) == before
    [change] = plan.changed
    diff = change.diff()
    assert diff.startswith(
        "--- a/talos/clusterconfig/demo-cp-1.yaml\n+++ b/talos/clusterconfig/demo-cp-1.yaml\n"
    )
    assert "-    disk: /dev/sda\n+    disk: /dev/nvme0n1\n" in diff
    assert plan.rows(dry_run=True)[0]["config"] == "would be changed"


@pytest.mark.parametrize("shipped", [False, True], ids=["contract-1.11", "contract-1.14"])
def test_dry_run_diff_never_shows_secret_values(tmp_path, shipped):
    """Also on contract 1.14, whose documents hold the cluster secret as ``clusterSecret``
    and private keys as PEM blocks (``privateKey: |``, ``issuingCA.key``): no line of them."""
    demo = copy_demo(tmp_path / "fresh", shipped=shipped)
    plan = configure(demo, dry_run=True)
    secrets = SecretStore(demo).load()
    text = "".join(f.diff() for f in plan.files)
    assert "+version: v1alpha1" in text
    key_lines = [
        line
        for pem in (secrets.os.key, secrets.etcd.key, secrets.k8s.key, secrets.k8s_aggregator.key)
        for line in pem.decode().splitlines()[1:-1]
    ] + secrets.service_account_key.decode().splitlines()[1:-1]
    for value in (
        secrets.trustd_token,
        secrets.bootstrap_token,
        secrets.cluster_secret,
        secrets.secretbox_secret,
        *key_lines,
    ):
        assert value not in text
    assert "<redacted sha256:" in text
    if shipped:
        assert "+clusterSecret: <redacted sha256:" in text and "+  privateKey: |\n+    <redacted" in text


def test_a_diff_of_a_config_is_redacted_on_its_added_lines_too():
    """Talos's dry-run answer is a unified diff: `+`/`-` lines and multi-line values are masked."""
    from taltasks.machineconfig.diff import redact

    diff = (
        "--- a\n+++ b\n@@ -1,6 +1,6 @@\n"
        "-  token: abcdef.0123456789abcdef\n+  token: ghijkl.0123456789abcdef\n"
        "   ca:\n     key: |\n       c2VjcmV0\n-      b2xk\n+      bmV3\n     crt: Y2VydA==\n"
        " kind: Other\n"
    )
    shown = redact(diff)
    for secret in ("abcdef.", "ghijkl.", "c2VjcmV0", "b2xk", "bmV3", "Y2VydA=="):
        assert secret not in shown
    assert shown.count("<redacted sha256:") == 6
    assert shown.startswith("--- a\n+++ b\n@@ -1,6 +1,6 @@\n-  token: <redacted")
    assert "\n+      <redacted sha256:" in shown and shown.endswith(" kind: Other\n")


def test_first_run_creates_secrets_only_when_confirmed(tmp_path):
    demo = copy_demo(tmp_path / "new", with_secrets=False)
    before = snapshot(demo)
    with pytest.raises(InputError) as info:
        configure(demo, confirm_new_secrets=lambda _path: False)
    assert info.value.where == "talos/talsecret.sops.yaml"
    assert snapshot(demo) == before
    asked = []
    configure(demo, confirm_new_secrets=lambda path: asked.append(path) or True)
    assert asked == ["talos/talsecret.sops.yaml"]
    assert (demo / "talos" / "talsecret.sops.yaml").exists()
    assert (
        SecretStore(demo).load().os.crt
        in TalosConfig.load(demo / OUTPUT_DIR / "talosconfig").context().ca + b""
    )


def test_dry_run_of_a_first_run_writes_no_secrets(tmp_path):
    demo = copy_demo(tmp_path / "new", with_secrets=False)
    before = snapshot(demo)
    plan = configure(demo, dry_run=True)
    assert plan.new_secrets is not None
    assert snapshot(demo) == before


def test_demo_key_with_real_addresses_warns(demo):
    edit(demo / "talos" / "talconfig.yaml", "ipAddress: 127.0.10.23", "ipAddress: 203.0.113.23")
    events = Collector()
    plan = configure(demo, dry_run=True, emitter=Emitter(events))
    assert any("THROW-AWAY demo age key" in w and "203.0.113.23" in w for w in plan.warnings)
    assert events.of("warning")


def test_invoke_configure_end_to_end(demo):
    env = {"TALTASKS_ROOT": str(demo)}
    first = run_invoke("configure", cwd=demo, env=env)
    assert first.returncode == 0, first.stderr
    assert "worker-3" in first.stdout and "created" in first.stdout
    second = run_invoke("configure", "--json", cwd=demo, env=env)
    assert second.returncode == 0, second.stderr
    rows = json.loads(second.stdout)
    assert {r["config"] for r in rows} == {"unchanged"} and len(rows) == 6
    bad = run_invoke("configure", "--root", str(demo / "nowhere"), cwd=demo, env=env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "talos/talconfig.yaml: cluster definition not found" in bad.stderr


def test_removed_node_leaves_its_old_file_and_says_so(demo):
    configure(demo)
    text = (demo / "talos" / "talconfig.yaml").read_text()
    start = text.index("  - hostname: worker-3")
    (demo / "talos" / "talconfig.yaml").write_text(text[:start])
    events = Collector()
    plan = configure(demo, emitter=Emitter(events))
    assert plan.stale == ["talos/clusterconfig/demo-worker-3.yaml"]
    assert (demo / "talos/clusterconfig/demo-worker-3.yaml").exists()
    assert any("demo-worker-3.yaml belongs to no node" in e.message for e in events.of("warning"))
    assert TalosConfig.load(demo / OUTPUT_DIR / "talosconfig").context().nodes[-1] == "127.0.10.22"
