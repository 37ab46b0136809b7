"""Talos's own leniency and strictness through `configure`, with findings at the file:line
that wrote the value (a patch's own line), values printed as YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from configure_support import LENIENT_PATCH, add_global_patch, copy_demo, edit, line_of, snapshot
from taltasks.errors import InputError
from taltasks.events import Collector, Emitter
from taltasks.machineconfig.encode import load_documents
from taltasks.machineconfig.validate import FindingsError
from taltasks.workflows.configure import OUTPUT_DIR, configure

TALCONFIG = Path("talos/talconfig.yaml")


@pytest.fixture
def demo(tmp_path):
    return copy_demo(tmp_path / "repo")


def add_node_patch(root: Path, node: str, text: str) -> str:
    """A patch for one node from the node patch folder (talos/patches/nodes/<node>.yaml)."""
    folder = root / "talos/patches/nodes"
    folder.mkdir(exist_ok=True)
    (folder / f"{node}.yaml").write_text(text)
    return f"talos/patches/nodes/{node}.yaml"


def written(root: Path, node: str) -> list[dict]:
    return load_documents((root / OUTPUT_DIR / f"demo-{node}.yaml").read_bytes())


def refused(root: Path) -> InputError:
    before = snapshot(root)
    with pytest.raises(InputError) as info:
        configure(root)
    assert snapshot(root) == before, "configure wrote something although the input was bad"
    return info.value


@pytest.mark.parametrize("talos", ["v1.11.5", "v1.13.2"])
def test_unquoted_numbers_and_booleans_in_string_maps_are_written_as_talos_loads_them(demo, talos):
    edit(demo / "talos/talenv.yaml", "talosVersion: v1.11.5", f"talosVersion: {talos}")
    add_global_patch(demo, "lenient.yaml", LENIENT_PATCH)
    events = Collector()
    configure(demo, emitter=Emitter(events))
    assert not events.of("warning"), [e.message for e in events.of("warning")]
    cp = written(demo, "cp-1")[0]
    assert cp["machine"]["sysctls"]["vm.max_map_count"] == "262144"
    assert cp["machine"]["kubelet"]["extraArgs"]["rotate-server-certificates"] == "true"
    assert cp["cluster"]["apiServer"]["extraArgs"]["enable-aggregator-routing"] == "true"
    text = (demo / OUTPUT_DIR / "demo-worker-1.yaml").read_text()
    assert "vm.max_map_count: '262144'" in text  # a string in the file, as Talos reads it


def test_deprecated_fields_talos_still_reads_are_accepted_with_a_warning(demo):
    source = add_global_patch(
        demo,
        "legacy.yaml",
        "machine:\n"
        "  systemDiskEncryption:\n"  # 2
        "    state:\n"
        "      provider: luks2\n"
        "      keys:\n"
        "        - slot: 0\n"
        "          tpm: {}\n"
        "  logging:\n"
        "    destinations:\n"
        "      - endpoint: udp://127.0.0.1:5140/\n"  # a URL string (Talos's Endpoint)
        "        format: json_lines\n"
        "cluster:\n"
        "  allowSchedulingOnMasters: true\n",  # 13
    )
    events = Collector()
    plan = configure(demo, emitter=Emitter(events))
    masters = next(w for w in plan.warnings if "allowSchedulingOnMasters" in w)
    assert masters.startswith(
        f"{source}:13: v1alpha1 cluster.allowSchedulingOnMasters: deprecated in Talos 1.11"
    )
    assert "use `allowSchedulingOnControlPlanes` instead" in masters and "(all 6 nodes)" in masters
    encryption = next(w for w in plan.warnings if "systemDiskEncryption" in w)
    assert encryption.startswith(f"{source}:2: ") and "write a VolumeConfig document instead" in encryption
    assert len(plan.warnings) == 2 and len(events.of("warning")) == 2
    cp = written(demo, "cp-1")[0]
    assert cp["cluster"]["allowSchedulingOnMasters"] is True
    assert cp["machine"]["logging"]["destinations"][0]["endpoint"] == "udp://127.0.0.1:5140/"
    assert cp["machine"]["systemDiskEncryption"]["state"]["keys"] == [{"slot": 0, "tpm": {}}]


def test_error_in_a_global_strategic_patch_names_its_line_and_prints_yaml(demo):
    source = add_global_patch(
        demo,
        "bad.yaml",
        "machine:\n  install:\n    wipe: maybe\n  network:\n    interfaces:\n"
        "      - interface: eth0\n        mtu: true\n",
    )
    err = refused(demo)
    assert isinstance(err, FindingsError) and len(err.findings) == 2
    text = str(err)
    assert f"{source}:3: v1alpha1 machine.install.wipe: expected true or false, got maybe" in text
    assert f"{source}:7: v1alpha1 machine.network.interfaces[0].mtu: expected an integer, got true" in text
    assert "True" not in text


def test_error_in_a_node_strategic_patch_names_its_line(demo):
    source = add_node_patch(demo, "worker-2", "machine:\n  kubelet:\n    extraMounts: yes\n")
    err = refused(demo)
    assert f"{source}:3: " in str(err) and "machine.kubelet.extraMounts: expected a list, got yes" in str(err)


def test_error_from_a_global_json_patch_names_the_value_line(demo):
    source = add_global_patch(
        demo,
        "json.yaml",
        "- op: add\n"
        "  path: /machine/network/interfaces\n"
        "  value:\n"
        "    - interface: eth1\n"
        "      mtu: '9000'\n",  # 5
    )
    err = refused(demo)
    assert str(err).startswith(f"{source}:5: all 6 nodes: the generated config is not valid for Talos 1.11")
    assert 'machine.network.interfaces[0].mtu: expected an integer, got "9000"' in str(err)


def test_error_from_a_node_json_patch_names_the_operation_line(demo):
    source = add_node_patch(
        demo,
        "worker-3",
        "- op: replace\n"
        "  path: /machine/network\n"
        "  value:\n"
        "    interfaces:\n"
        "      - interface: eth0\n"
        "        vip:\n"  # 6
        "          ip: 127.0.10.99\n",
    )
    err = refused(demo)
    assert str(err).startswith(f"{source}:6: node worker-3: ")
    assert "a worker must not have a shared VIP" in str(err)
    assert line_of(demo / "talos/patches/nodes/worker-3.yaml", "vip:") == 6


def test_problem_from_a_talconfig_field_names_the_line_it_was_read_from(demo):
    # the worker group's interfaces give every worker a shared VIP: the finding points at the
    # group's field, where the value was written, for each worker
    edit(
        demo / TALCONFIG,
        "worker:\n  patches:",
        "worker:\n  networkInterfaces:\n    - interface: eth0\n      vip:\n        ip: 127.0.10.99\n  patches:",
    )
    err = refused(demo)
    line = line_of(demo / TALCONFIG, "  networkInterfaces:")
    assert str(err).startswith(f"talos/talconfig.yaml:{line}: nodes worker-1, worker-2, worker-3: ")
    assert "machine.network.interfaces[0].vip: a worker must not have a shared VIP" in str(err)


def test_one_run_reports_the_problems_of_every_node_not_only_the_first(demo):
    # two nodes, two different mistakes, plus one shared by every worker: one refusal names
    # them all (each shared problem once, with its nodes), and nothing is written
    cp2 = add_node_patch(demo, "cp-2", "machine:\n  kubelet:\n    extraMounts: yes\n")
    w3 = add_node_patch(demo, "worker-3", "machine:\n  install:\n    wipe: maybe\n")
    edit(
        demo / TALCONFIG,
        "worker:\n  patches:",
        "worker:\n  networkInterfaces:\n    - interface: eth0\n      vip:\n        ip: 127.0.10.99\n  patches:",
    )
    err = refused(demo)
    assert isinstance(err, FindingsError)
    text = str(err)
    # cp-2 and worker-3 stop at their patches' own lines; worker-1 and worker-2 at the VIP
    assert text.startswith("the configs of 4 nodes are not valid (3 problems):"), text
    vip = line_of(demo / TALCONFIG, "  networkInterfaces:")
    assert text.splitlines()[1:] == [
        f"    {cp2}:3: v1alpha1 machine.kubelet.extraMounts: expected a list, got yes",
        "      hint: write the items as a YAML list (`- item`)",
        f"    talos/talconfig.yaml:{vip}: v1alpha1 machine.network.interfaces[0].vip: a worker must not "
        "have a shared VIP (nodes worker-1, worker-2)",
        f"    {w3}:3: v1alpha1 machine.install.wipe: expected true or false, got maybe",
        "      hint: write true or false",
    ], text
