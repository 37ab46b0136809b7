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
