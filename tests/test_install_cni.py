"""talos.install-cni (issue 6, point 2): Cilium from the repo's own Flux HelmRelease,
rendered by the real helm binary, server-side applied to the emulator, rolled out.

Nothing here downloads a chart: the demo HelmRelease points at the stand-in chart kept
in kubernetes/charts/cilium; HelmRepository/OCIRepository sources are only resolved.
"""

from __future__ import annotations

import base64
import json
import shutil
import textwrap

import pytest
from kubesim import cluster_nodes, kube_ca  # noqa: F401 - fixture

from configure_support import edit, line_of, run_invoke
from taltasks.errors import InputError
from taltasks.events import Collector, Emitter
from taltasks.workflows import cni
from testpaths import REPO_ROOT

APP = "kubernetes/apps/kube-system/cilium/app"


def helm_or_skip() -> str:
    try:
        return cni.find_helm()
    except InputError as exc:
        pytest.skip(f"{exc.message}: {exc.hint}")


@pytest.fixture
def repo(tmp_path):
    """A throw-away copy of the shipped Flux tree (and the sops setup next to it)."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "kubernetes", root / "kubernetes")
    shutil.copy2(REPO_ROOT / ".sops.yaml", root / ".sops.yaml")
    (root / "talos").mkdir()
    shutil.copy2(REPO_ROOT / "talos" / "demo.agekey", root / "talos" / "demo.agekey")
    return root


@pytest.fixture
def world(loopback_subnet, kube_ca):  # noqa: F811
    from taltasks.sim.addresses import api_address
    from taltasks.sim.kubeworld import KubeWorld
    from taltasks.sim.record import Recorder

    w = KubeWorld.from_scenario(
        None,
        host=api_address(loopback_subnet),
        ca=kube_ca,
        recorder=Recorder(),
        nodes=cluster_nodes(loopback_subnet),
    )
    yield w
    assert w.errors == [], w.errors
    w.stop()


@pytest.fixture
def kube(world):
    from taltasks.kube.client import connect_text

    with connect_text(world.kubeconfig("demo"), source="emulator") as client:
        yield client


def test_install_rolls_out_cilium_with_the_releases_values_and_is_idempotent(repo, world, kube):
    helm_or_skip()
    store = world.store
    collected = Collector()
    first = cni.install_cni(kube, repo, emitter=Emitter(collected), timeout=20)
    assert first.counts() == {"created": 5}
    assert first.rolled_out == ["DaemonSet kube-system/cilium", "Deployment kube-system/cilium-operator"]
    assert first.nodes_ready == 6
    ds = store.get("daemonsets.apps", "cilium", "kube-system")
    assert ds["status"]["numberReady"] == ds["status"]["desiredNumberScheduled"] == 6
    pods = store.list("pods", namespace="kube-system", label_selector="k8s-app=cilium")
    assert sorted(p["spec"]["nodeName"] for p in pods) == [
        n for n, _, _ in sorted(cluster_nodes("127.0.0.0/24"))
    ]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"quay.io/cilium/cilium:v1.18.4"}
    # values.yaml (through the generated ConfigMap) under the inline values
    config = store.get("configmaps", "cilium-config", "kube-system")["data"]
    assert config["cluster-name"] == "demo" and config["routing-mode"] == "native"
    assert store.get("deployments.apps", "cilium-operator", "kube-system")["spec"]["replicas"] == 1
    # what lets Flux's helm-controller adopt the objects later
    meta = ds["metadata"]
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert meta["annotations"]["meta.helm.sh/release-name"] == "cilium"
    assert meta["annotations"]["meta.helm.sh/release-namespace"] == "kube-system"
    assert {m["manager"] for m in meta["managedFields"] if m["operation"] == "Apply"} == {"taltasks"}

    versions = {
        (r, o["metadata"]["name"]): o["metadata"]["resourceVersion"]
        for r in ("daemonsets.apps", "deployments.apps", "configmaps", "serviceaccounts")
        for o in store.list(r, namespace="kube-system")
    }
    second = cni.install_cni(kube, repo, timeout=20)
    assert second.counts() == {"unchanged": 5} and second.changed == []
    assert versions == {
        (r, o["metadata"]["name"]): o["metadata"]["resourceVersion"]
        for r in ("daemonsets.apps", "deployments.apps", "configmaps", "serviceaccounts")
        for o in store.list(r, namespace="kube-system")
    }
    assert collected.of("summary")[0].data["changed"] == 5


def test_dry_run_reports_and_changes_nothing(repo, world, kube):
    helm_or_skip()
    result = cni.install_cni(kube, repo, timeout=20, dry_run=True)
    assert result.counts() == {"created": 5} and result.rolled_out == []
    assert world.store.try_get("daemonsets.apps", "cilium", "kube-system") is None
    assert world.store.try_get("configmaps", "cilium-config", "kube-system") is None


def test_task_installs_then_finds_nothing_to_do(repo, world, tmp_path):
    helm_or_skip()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(world.kubeconfig("demo"))
    args = (
        "talos.install-cni",
        "--root",
        str(repo),
        "--kubeconfig",
        str(kubeconfig),
        "--json",
        "--timeout",
        "20",
    )
    first = run_invoke(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    events = [json.loads(line) for line in first.stdout.splitlines()]
    assert events[-1]["kind"] == "summary" and "5 created" in events[-1]["message"]
    again = run_invoke(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "5 unchanged" in json.loads(again.stdout.splitlines()[-1])["message"]


def test_valuesfrom_secret_target_path_and_optional_sources(repo):
    """Flux's order: valuesFrom in turn (targetPath sets one value), inline values last."""
    (repo / APP / "secret.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: v1
            kind: Secret
            metadata:
              name: cilium-cluster
            data:
              name: {base64.b64encode(b"from-secret").decode()}
            """
        )
    )
    edit(
        repo / APP / "kustomization.yaml",
        "  - ./helmrelease.yaml\n",
        "  - ./helmrelease.yaml\n  - ./secret.yaml\n",
    )
    edit(
        repo / APP / "helmrelease.yaml",
        "      name: cilium-values\n",
        "      name: cilium-values\n"
        "    - kind: Secret\n      name: cilium-cluster\n      valuesKey: name\n      targetPath: cluster.name\n"
        "    - kind: ConfigMap\n      name: not-there\n      optional: true\n",
    )
    spec = cni.load_release(repo)
    assert spec.namespace == "kube-system" and spec.release_name == "cilium"
    assert spec.values["cluster"] == {"id": 1, "name": "from-secret"}
    assert spec.values["operator"] == {"replicas": 1, "rollOutPods": True}  # inline replicas win
    assert [s.split(" (")[0] for s in spec.value_sources] == [
        "ConfigMap cilium-values/values.yaml",
        "Secret cilium-cluster/name",
        "inline values",
    ]


def test_sops_encrypted_secret_values_are_decrypted(repo):
    from taltasks.secrets import age, sops

    plain = textwrap.dedent(
        """\
        apiVersion: v1
        kind: Secret
        metadata:
          name: cilium-secret-values
        stringData:
          values.yaml: |
            cluster:
              name: sealed
        """
    ).encode()
    rel = f"{APP}/values.sops.yaml"
    encrypted = sops.encrypt(plain, rel, root=repo, env=age.sops_environment(repo))
    assert b"sealed" not in encrypted
    (repo / rel).write_bytes(encrypted)
    edit(
        repo / APP / "helmrelease.yaml",
        "      name: cilium-values\n",
        "      name: cilium-values\n    - kind: Secret\n      name: cilium-secret-values\n",
    )
    assert cni.load_release(repo).values["cluster"]["name"] == "sealed"


def test_helm_and_oci_repository_sources_resolve_without_downloading(repo):
    edit(
        repo / APP / "helmrelease.yaml",
        "      chart: ./kubernetes/charts/cilium\n      sourceRef:\n        kind: GitRepository\n        name: flux-system\n        namespace: flux-system\n",
        "      chart: cilium\n      version: 1.18.4\n      sourceRef:\n        kind: HelmRepository\n        name: cilium\n",
    )
    (repo / APP / "repo.yaml").write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: cilium\n"
        "  namespace: kube-system\nspec:\n  url: https://helm.cilium.io/\n"
    )
    chart = cni.load_release(repo).chart
    assert (chart.chart, chart.version, chart.repo) == ("cilium", "1.18.4", "https://helm.cilium.io")
    (repo / APP / "repo.yaml").write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: cilium\n"
        "  namespace: kube-system\nspec:\n  type: oci\n  url: oci://ghcr.io/home-operations/charts-mirror\n"
    )
    chart = cni.load_release(repo).chart
    assert chart.chart == "oci://ghcr.io/home-operations/charts-mirror/cilium" and chart.repo is None


@pytest.mark.parametrize(
    ("change", "message", "line_of_needle"),
    [
        (
            ("      name: cilium-values\n", "      name: cilium-valuez\n"),
            "ConfigMap kube-system/cilium-valuez is not defined",
            "- kind: ConfigMap",
        ),
        (
            ("chart: ./kubernetes/charts/cilium", "chart: ./kubernetes/charts/nope"),
            "is not a chart directory",
            "chart: ./kubernetes/charts/nope",
        ),
        (
            (
                "name: flux-system\n        namespace: flux-system",
                "name: elsewhere\n        namespace: flux-system",
            ),
            None,
            None,
        ),
    ],
)
def test_bad_references_name_the_file_and_line(repo, change, message, line_of_needle):
    hr = repo / APP / "helmrelease.yaml"
    edit(hr, *change)
    if message is None:  # a GitRepository is taken to be this checkout, whatever its name
        assert cni.load_release(repo).chart.local
        return
    with pytest.raises(InputError) as info:
        cni.load_release(repo)
    assert message in info.value.message
    assert info.value.where == f"{APP}/helmrelease.yaml:{line_of(hr, line_of_needle)}"


def test_no_release_lists_what_exists(repo):
    with pytest.raises(InputError) as info:
        cni.load_release(repo, "calico")
    assert "no HelmRelease for calico" in info.value.message
    assert "rook-ceph-cluster (kubernetes/apps/rook-ceph/rook-ceph/app/helmrelease.yaml:" in info.value.hint
