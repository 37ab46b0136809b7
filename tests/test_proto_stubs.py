"""The committed gRPC stubs must be exactly what the generator makes from the .proto files."""

from __future__ import annotations

import pytest

from testpaths import REPO_ROOT


def test_committed_stubs_match_a_fresh_generation(tmp_path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools (dev extra) regenerates the stubs")
    from taltasks.talos.api import generate

    fresh = generate.generate(tmp_path)
    assert fresh, "the generator produced nothing"
    stale = []
    for path in fresh:
        committed = REPO_ROOT / path.relative_to(tmp_path)
        if not committed.exists() or committed.read_bytes() != path.read_bytes():
            stale.append(str(committed.relative_to(REPO_ROOT)))
    assert not stale, f"stale stubs, run `python -m taltasks.talos.api.generate`: {stale}"


def test_wire_names_and_numbers_match_talos():
    """Spot checks against talos-api.md: names and numbers that other tools depend on."""
    from taltasks.talos.api import cosi_resource_pb2, machine_pb2

    svc = machine_pb2.DESCRIPTOR.services_by_name["MachineService"]
    assert svc.full_name == "machine.MachineService"
    assert svc.methods_by_name["EtcdSnapshot"].server_streaming
    member = machine_pb2.EtcdMember.DESCRIPTOR
    assert member.fields_by_name["id"].number == 2  # no field 1 upstream
    status = machine_pb2.EtcdMemberStatus.DESCRIPTOR
    assert status.fields_by_name["member_id"].number == 10
    assert status.fields_by_name["storage_version"].number == 11
    apply = machine_pb2.ApplyConfigurationRequest.DESCRIPTOR
    assert [apply.fields_by_name[n].number for n in ("data", "mode", "dry_run", "try_mode_timeout")] == [
        1,
        4,
        5,
        6,
    ]
    assert cosi_resource_pb2.WatchRequest.DESCRIPTOR.fields_by_name["id"].has_presence
    assert cosi_resource_pb2.DESCRIPTOR.services_by_name["State"].full_name == "cosi.resource.State"


def test_talos_1_13_and_1_14_services_and_specs():
    """LifecycleService, ImageService, ContainerdInstance, BootID and the k8s specs with
    their 1.13 field moves, against Talos v1.13.9 / v1.14.0-rc.1."""
    from taltasks.talos.api import (
        common_pb2,
        definitions_k8s_pb2,
        definitions_runtime_pb2,
        image_pb2,
        lifecycle_pb2,
    )

    lifecycle = lifecycle_pb2.DESCRIPTOR.services_by_name["LifecycleService"]
    assert lifecycle.full_name == "machine.LifecycleService"
    assert all(lifecycle.methods_by_name[m].server_streaming for m in ("Install", "Upgrade"))
    progress = lifecycle_pb2.LifecycleServiceInstallProgress.DESCRIPTOR
    assert [(f.name, f.number) for f in progress.oneofs_by_name["response"].fields] == [
        ("message", 1),
        ("exit_code", 2),
    ]
    upgrade = lifecycle_pb2.LifecycleServiceUpgradeRequest.DESCRIPTOR
    assert upgrade.fields_by_name["containerd"].message_type.full_name == "common.ContainerdInstance"
    assert upgrade.fields_by_name["source"].number == 2
    images = image_pb2.DESCRIPTOR.services_by_name["ImageService"]
    assert images.full_name == "machine.ImageService"
    assert images.methods_by_name["Pull"].server_streaming and images.methods_by_name["List"].server_streaming
    assert image_pb2.ImageServicePullRequest.DESCRIPTOR.fields_by_name["image_ref"].number == 3
    pulled = image_pb2.ImageServicePullResponse.DESCRIPTOR.fields_by_name
    assert (pulled["name"].number, pulled["pull_progress"].number) == (1, 2)
    instance = common_pb2.ContainerdInstance.DESCRIPTOR.fields_by_name
    assert (instance["driver"].number, instance["namespace"].number) == (1, 2)
    assert definitions_runtime_pb2.BootIDSpec.DESCRIPTOR.fields_by_name["boot_id"].number == 1
    k8s = definitions_k8s_pb2
    for spec, new, old in (
        (k8s.APIServerConfigSpec, 13, 7),
        (k8s.ControllerManagerConfigSpec, 10, 6),
        (k8s.SchedulerConfigSpec, 8, 3),
    ):
        fields = spec.DESCRIPTOR.fields_by_name
        assert fields["extra_args"].number == new
        assert fields["extra_args"].message_type.fields_by_name["value"].message_type.name == "ArgValues"
        assert fields["legacy_extra_args"].number == old
