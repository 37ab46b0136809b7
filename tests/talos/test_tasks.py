"""The Talos tasks as a user runs them: `invoke ...` in a subprocess against `sim.up`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from testpaths import REPO_ROOT


def invoke(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("sim")
    up = invoke("sim.up", "--dir", str(d), "--control-planes", "3", "--workers", "3")
    assert up.returncode == 0, up.stderr
    yield d
    down = invoke("sim.down", "--dir", str(d))
    assert down.returncode == 0, down.stderr
    assert not (d / "sim.json").exists()


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
    assert lines and lines[0].startswith("error: "), proc.stderr
    assert len([x for x in lines if not x.strip().startswith("hint:")]) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, proc.stderr)


def test_sim_up_writes_a_private_talosconfig_and_status_lists_nodes(sim_dir):
    tc = sim_dir / "talosconfig"
    assert tc.exists() and (tc.stat().st_mode & 0o777) == 0o600
    status = invoke("sim.status", "--dir", str(sim_dir), "--json")
    assert status.returncode == 0, status.stderr
    nodes = json.loads(status.stdout)["nodes"]
    assert [n["name"] for n in nodes] == ["cp-1", "cp-2", "cp-3", "worker-1", "worker-2", "worker-3"]
    assert all(n["ip"].startswith("127.") and n["stage"] == "running" for n in nodes)


def test_version_prints_one_row_per_node(sim_dir):
    proc = invoke("talos.version", env={"TALOSCONFIG": str(sim_dir / "talosconfig")})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["NODE", "TAG"]
    assert len(lines) == 1 + 6
    assert len({line.split()[0] for line in lines[1:]}) == 6


def test_version_json_has_one_entry_per_node(sim_dir):
    proc = invoke("talos.version", "--json", env={"TALOSCONFIG": str(sim_dir / "talosconfig")})
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert len(entries) == 6 and len({e["node"] for e in entries}) == 6
    assert all(e["tag"] == "v1.12.0" for e in entries)


def test_health_services_get_and_etcd_tasks(sim_dir):
    env = {"TALOSCONFIG": str(sim_dir / "talosconfig")}
    health = invoke("talos.health", "--json", env=env)
    assert health.returncode == 0, health.stderr
    assert all(c["result"] == "OK" for c in json.loads(health.stdout))
    members = json.loads(invoke("etcd.members", "--json", env=env).stdout)
    assert {m["hostname"] for m in members} == {"cp-1", "cp-2", "cp-3"}
    status = json.loads(invoke("etcd.status", "--json", env=env).stdout)
    assert sum(1 for s in status if s["is_leader"]) == 1
    ms = invoke("talos.get", "machinestatus", "--json", env=env)
    assert ms.returncode == 0, ms.stderr
    items = json.loads(ms.stdout)
    assert len(items) == 6 and all(i["spec"]["stage"] == "running" for i in items)
    svc = invoke("talos.services", "--json", env=env)
    assert {r["service"] for r in json.loads(svc.stdout)} >= {"etcd", "kubelet", "apid"}


def test_missing_talosconfig_names_the_file(tmp_path):
    missing = tmp_path / "nope" / "talosconfig"
    proc = invoke("talos.version", env={"TALOSCONFIG": str(missing)})
    assert_one_line_error(proc, str(missing), "not found")


def test_corrupt_talosconfig_names_the_file(tmp_path):
    bad = tmp_path / "talosconfig"
    bad.write_text("context: demo\ncontexts: [this is: not, valid\n")
    proc = invoke("talos.version", env={"TALOSCONFIG": str(bad)})
    assert_one_line_error(proc, str(bad), "not valid YAML")


def test_unknown_context_is_named(sim_dir):
    proc = invoke("talos.version", "--context", "prod", env={"TALOSCONFIG": str(sim_dir / "talosconfig")})
    assert_one_line_error(proc, "'prod'", "known contexts: sim")


def test_unreachable_endpoint_is_named(sim_dir):
    from taltasks.sim.addresses import closed_port

    dead = f"127.0.0.1:{closed_port()}"
    proc = invoke("talos.version", "--endpoints", dead, env={"TALOSCONFIG": str(sim_dir / "talosconfig")})
    assert_one_line_error(proc, dead, "connection refused")
    assert proc.returncode == 3


def test_config_tasks_edit_contexts(sim_dir, tmp_path):
    cfg = tmp_path / "talosconfig"
    cfg.write_bytes((sim_dir / "talosconfig").read_bytes())
    env = {"TALOSCONFIG": str(cfg)}
    assert invoke("talos.config.endpoints", "127.0.0.11,127.0.0.12", env=env).returncode == 0
    assert invoke("talos.config.nodes", "127.0.0.13", env=env).returncode == 0
    rows = json.loads(invoke("talos.config.contexts", "--json", env=env).stdout)
    assert rows == [
        {"current": "*", "name": "sim", "endpoints": ["127.0.0.11", "127.0.0.12"], "nodes": ["127.0.0.13"]}
    ]
    assert_one_line_error(invoke("talos.config.use-context", "nope", env=env), "'nope'")
    assert (cfg.stat().st_mode & 0o777) == 0o600


def test_etcd_snapshot_and_remove_member_tasks(sim_dir, tmp_path):
    env = {"TALOSCONFIG": str(sim_dir / "talosconfig")}
    snap = invoke("etcd.snapshot", str(tmp_path / "db.snap"), "--json", env=env)
    assert snap.returncode == 0, snap.stderr
    info = json.loads(snap.stdout.strip().splitlines()[-1])
    assert info["size"] == (tmp_path / "db.snap").stat().st_size > 0
    refused = invoke("etcd.remove-member", "cp-3", "--yes", env=env)
    assert_one_line_error(refused, "cp-3", "up and healthy")
    assert len(json.loads(invoke("etcd.members", "--json", env=env).stdout)) == 9  # 3 views × 3 members


def test_destructive_tasks_need_confirmation_without_a_terminal(sim_dir):
    env = {"TALOSCONFIG": str(sim_dir / "talosconfig")}
    proc = invoke("talos.reset-node", "--node", "worker-3", env=env)
    assert_one_line_error(proc, "refusing without confirmation")


def test_logs_kubeconfig_and_unknown_node(sim_dir, tmp_path):
    env = {"TALOSCONFIG": str(sim_dir / "talosconfig")}
    logs = invoke("talos.logs", "kubelet", "--node", "worker-1", env=env)
    assert logs.returncode == 0 and "kubelet" in logs.stdout
    out = tmp_path / "kubeconfig"
    kc = invoke("talos.kubeconfig", "--out", str(out), env=env)
    assert kc.returncode == 0, kc.stderr
    assert "clusters" in out.read_text() and (out.stat().st_mode & 0o777) == 0o600
    assert_one_line_error(invoke("talos.logs", "kubelet", "--node", "nope", env=env), "unknown node 'nope'")
