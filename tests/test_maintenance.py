"""Maintenance switches of an upgrade run, undone from the journal alone — as the next run
does after a run was killed outright (no ``finally``, no cleanup)."""

# ruff: noqa: F811 - pytest fixtures imported from kubesim are redefined as parameters
from __future__ import annotations

from kubesim import kube_ca, make_world  # noqa: F401 - fixtures

from taltasks.kube import nodes
from taltasks.kube.client import connect
from taltasks.workflows import maintenance as mt
from taltasks.workflows.cleanup import CleanupStack
from taltasks.workflows.journal import Journal, journal_path, read_journal

TUPPR = {
    "apiVersion": "tuppr.home-operations.com/v1alpha1",
    "kind": "TalosUpgrade",
    "metadata": {"name": "talos"},
    "spec": {"talos": {"version": "v1.12.0"}},
}
KS = "kustomizations.kustomize.toolkit.fluxcd.io"
CNPG = "clusters.postgresql.cnpg.io"


def snapshot(store) -> dict:
    """What the switches touch, as it is now."""
    return {
        "flux": {(o["metadata"]["name"]): bool(o["spec"].get("suspend")) for o in store.list(KS)},
        "cnpg": {o["metadata"]["name"]: o["spec"].get("nodeMaintenanceWindow") for o in store.list(CNPG)},
        "tuppr": store.get("talosupgrades.tuppr.home-operations.com", "talos")["metadata"].get("annotations"),
        "cordoned": sorted(
            n["metadata"]["name"] for n in store.list("nodes") if n["spec"].get("unschedulable")
        ),
    }


def test_a_killed_runs_changes_are_undone_from_the_journal_alone(make_world, tmp_path):
    world = make_world()
    store = world.store
    store.create(dict(TUPPR))
    before = snapshot(store)
    assert before["flux"] == {"cluster-apps": False, "tuppr": True} and before["cordoned"] == []

    with connect(world.kubeconfig_path) as kube:  # the run that dies
        journal = Journal.open(tmp_path, "demo")
        for kind, plan, apply in (
            (mt.FLUX, mt.plan_flux(kube, ("Kustomization", "HelmRelease")), mt.apply_flux),
            (mt.CNPG, mt.plan_cnpg(kube), lambda k, d: mt.apply_cnpg(k, d, True)),
            (mt.TUPPR, mt.plan_tuppr(kube), mt.apply_tuppr),
        ):
            journal.change(kind, kind, plan)  # write-ahead, then the change itself
            apply(kube, plan)
        journal.change(mt.CORDON, "worker-1", {"node": "worker-1"})
        nodes.cordon(kube, "worker-1")
        journal.close()  # killed: nothing undone, the journal still says "running"
    during = snapshot(store)
    assert during["flux"] == {"cluster-apps": True, "tuppr": True}
    assert all(w["inProgress"] for w in during["cnpg"].values())
    assert during["tuppr"] == {"tuppr.home-operations.com/suspend": "true"} and during["cordoned"] == [
        "worker-1"
    ]

    state = read_journal(journal_path(tmp_path, "demo"))
    assert state.status == "running" and [c.kind for c in state.pending] == [
        mt.CORDON,
        mt.TUPPR,
        mt.CNPG,
        mt.FLUX,
    ]
    with connect(world.kubeconfig_path) as kube:  # the next run: only the journal to go on
        with Journal.open(tmp_path, "demo") as journal, CleanupStack(journal) as cleanup:
            cleanup.adopt(journal.previous, mt.undo_handlers(kube))
        after = snapshot(store)
        assert after["flux"] == before["flux"] and after["cnpg"] == before["cnpg"]
        assert not (after["tuppr"] or {}).get("tuppr.home-operations.com/suspend") and after["cordoned"] == []
        assert read_journal(journal_path(tmp_path, "demo")).pending == []
        # undoing again is harmless (the changes are gone already)
        for change in state.pending:
            mt.undo_handlers(kube)[change.kind](change)
        assert snapshot(store)["flux"] == before["flux"]
