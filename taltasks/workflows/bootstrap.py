"""Bring up a new cluster from machines in maintenance mode — in stages that each know
whether they are already done, so an interrupted bootstrap just runs again.

    configs     apply each node's generated config (nodes still in maintenance mode only)
    etcd        bootstrap etcd on the first control plane, exactly once
    kubeconfig  fetch the admin kubeconfig into the repository (or merge it into $KUBECONFIG)
    api         wait for the Kubernetes API and a Node for every machine
    cni         install Cilium from the repository's own HelmRelease (talos.install-cni)
    secrets     namespaces and the SOPS age secret Flux decrypts with
    flux        (optional) the repository's Flux bootstrap manifests

"Done" is decided by looking at the cluster, never by trusting a local file alone: a node
that answers with our talosconfig is configured; etcd with members is bootstrapped (and a
``Bootstrap`` that answers AlreadyExists counts as done); the kubeconfig is there and works.
Every stage reports through events and is written to the journal (``.taltasks/``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taltasks.errors import InputError, OperationFailed, TaltasksError
from taltasks.events import NULL, Emitter
from taltasks.talos.client import TalosClient
from taltasks.talos.config import Context, TalosConfig
from taltasks.talos.results import TalosCallError

STAGES = ("configs", "etcd", "kubeconfig", "api", "cni", "secrets", "flux")
SOPS_SECRET = ("flux-system", "sops-age")


@dataclass
class BootstrapOptions:
    root: Path
    talosconfig: Path | None = None
    kubeconfig_out: Path | None = None  # default: <root>/kubeconfig
    merge_kubeconfig: bool = False  # merge into $KUBECONFIG / ~/.kube/config instead
    flux: bool = False
    until: str | None = None  # stop after this stage
    timeout: float = 600.0  # per waiting stage
    poll: float = 0.25
    namespaces: tuple[str, ...] = ("flux-system",)


@dataclass
class BootstrapRun:
    options: BootstrapOptions
    emitter: Emitter = NULL
    cluster: Any = None
    talos: TalosClient | None = None
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    _kube: Any = None

    # ---- shared plumbing ------------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self.options.root

    def kubeconfig_path(self) -> Path:
        if self.options.merge_kubeconfig:
            from taltasks.talos.kubeconfig import default_path

            return default_path()
        return self.options.kubeconfig_out or self.root / "kubeconfig"

    def kube(self):
        if self._kube is None:
            from taltasks.kube.client import connect

            self._kube = connect(self.kubeconfig_path())
        return self._kube

    def wait(self, what: str, probe: Callable[[], Any], *, node: str | None = None) -> Any:
        """Poll ``probe`` until the stage timeout (see :func:`~taltasks.workflows.polling.poll_until`)."""
        from taltasks.workflows.polling import poll_until

        return poll_until(
            probe,
            what=what,
            timeout=self.options.timeout,
            poll=self.options.poll,
            emitter=self.emitter,
            node=node,
        )

    def close(self) -> None:
        if self.talos is not None:
            self.talos.close()
        if self._kube is not None:
            self._kube.close()


# ---- stages ---------------------------------------------------------------------------------


def _node_configs(run: BootstrapRun) -> dict[str, bytes]:
    """The generated config of each node, as ``invoke configure`` wrote it."""
    from taltasks.workflows.configure import OUTPUT_DIR, output_name

    out = {}
    missing = []
    for node in run.cluster.nodes:
        path = run.root / OUTPUT_DIR / output_name(run.cluster, node)
        if not path.exists():
            missing.append(str(path.relative_to(run.root)))
            continue
        out[node.hostname] = path.read_bytes()
    if missing:
        raise InputError(
            f"generated configs are missing: {', '.join(missing)}", hint="run `invoke configure` first"
        )
    return out


def stage_configs(run: BootstrapRun) -> str | None:
    from taltasks.talos.discovery import answering, maintenance_stage

    nodes = run.cluster.nodes
    answered = answering(run.talos, [n.ip for n in nodes])
    if all(answered.values()):
        return "every node answers with the cluster's talosconfig"
    configs = _node_configs(run)
    for node in nodes:
        if answered[node.ip]:
            run.emitter.emit("node.skipped", "already configured", node=node.hostname)
            continue
        stage = run.wait(
            f"{node.hostname} ({node.ip}) to answer in maintenance mode",
            lambda n=node: maintenance_stage(n.ip),
            node=node.hostname,
        )
        if stage != "maintenance":
            # installing or rebooting after an earlier run's apply: just wait for it below
            run.emitter.emit(
                "info", f"node is {stage}; waiting for it to come up configured", node=node.hostname
            )
            continue
        with (
            run.emitter.step(
                "apply",
                f"applying its config ({len(configs[node.hostname])} bytes) in maintenance mode",
                node=node.hostname,
            ),
            TalosClient.from_context(Context("maintenance", endpoints=[node.ip]), insecure=True) as m,
        ):
            m.apply_configuration(configs[node.hostname], mode="auto")[0].unwrap("ApplyConfiguration")
    for node in nodes:
        run.wait(
            f"{node.hostname} to boot configured",
            lambda n=node: answering(run.talos, [n.ip])[n.ip],
            node=node.hostname,
        )
    return None


def _etcd_members(run: BootstrapRun) -> list[str]:
    assert run.talos is not None
    for cp in run.cluster.control_planes:
        [res] = run.talos.etcd_members([cp.ip])
        if res.ok and res.value:
            return sorted(m.hostname for m in res.value)
    return []


def stage_etcd(run: BootstrapRun) -> str | None:
    assert run.talos is not None
    members = _etcd_members(run)
    if members:
        return f"etcd is bootstrapped ({len(members)} members: {', '.join(members)})"
    first = run.cluster.control_planes[0]
    with run.emitter.step("bootstrap", "bootstrapping etcd", node=first.hostname):
        outcome = bootstrap_etcd(
            run.talos,
            first.ip,
            timeout=run.options.timeout,
            poll=max(run.options.poll, 0.5),
            emitter=run.emitter,
            node=first.hostname,
        )
        if outcome == "already":
            run.emitter.emit("info", "etcd was already bootstrapped (AlreadyExists)", node=first.hostname)
    want = sorted(n.hostname for n in run.cluster.control_planes)
    run.wait(f"every control plane to join etcd ({', '.join(want)})", lambda: _etcd_members(run) == want)
    return None


# Talos refuses Bootstrap with FailedPrecondition while its runtime is still coming up
# (machined's Bootstrap handler, v1.8 … v1.14): CRI not up / a reboot pending → "bootstrap
# is not available yet"; the clock not synchronised within 5 s → "time is not in sync yet".
# Both pass by themselves. Other FailedPreconditions (before 1.13, "bootstrap can only be
# performed on a control plane node") and InvalidArgument / Unimplemented do not.
TRANSIENT_REFUSALS = ("bootstrap is not available yet", "time is not in sync yet")
# a node still restarting apid, or not reachable yet: nothing was done, try again
TRANSIENT_CODES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED")
ATTEMPT_TIMEOUT = 15.0  # Talos itself waits up to 5 s for time sync before refusing


def bootstrap_etcd(
    talos: TalosClient,
    ip: str,
    *,
    timeout: float,
    poll: float = 0.5,
    emitter: Emitter = NULL,
    node: str | None = None,
) -> str:
    """Bootstrap etcd on ``ip``, retrying Talos's transient refusals until ``timeout``.

    Returns ``"done"``, or ``"already"`` when Talos answers AlreadyExists (etcd has data:
    an earlier attempt, or someone else, got there first — a retried Bootstrap is safe for
    that reason). A refusal waiting cannot fix stops at once; running out of time names
    the last refusal."""
    from taltasks.errors import ConnectionFailed
    from taltasks.workflows.polling import GiveUp, NotYet, poll_until

    who = node or ip
    seen: list[str] = []

    def attempt() -> str:
        try:
            talos.bootstrap(node=ip, timeout=ATTEMPT_TIMEOUT)
            return "done"
        except TalosCallError as exc:
            if exc.code == "ALREADY_EXISTS":
                return "already"
            text = exc.error.message
            transient = exc.code in TRANSIENT_CODES or (
                exc.code == "FAILED_PRECONDITION" and any(t in text for t in TRANSIENT_REFUSALS)
            )
            if not transient:
                raise GiveUp(
                    OperationFailed(
                        f"Talos refused to bootstrap etcd: {text} ({exc.code})",
                        where=who,
                        hint=_refusal_hint(exc.code, text),
                    )
                ) from None
            if exc.code == "FAILED_PRECONDITION":
                refusal = f"Bootstrap refused: {text} ({exc.code})"
            else:  # no answer from machined: keep naming its last refusal, if any
                refusal = seen[-1] if seen else f"Bootstrap got no answer: {text} ({exc.code})"
        except ConnectionFailed as exc:
            refusal = seen[-1] if seen else f"not reachable: {exc.message}"
        if not seen or seen[-1] != refusal:
            emitter.emit("info", f"{refusal}; retrying", node=who)
            seen.append(refusal)
        raise NotYet(refusal)

    return poll_until(
        attempt,
        what="Talos to accept the etcd bootstrap",
        timeout=timeout,
        poll=poll,
        emitter=emitter,
        node=who,
        hint="the node's runtime did not come up: check `invoke talos.services` and its time sync "
        "(`invoke talos.get timestatus`), then run the bootstrap again",
    )


def _refusal_hint(code: str, text: str) -> str:
    if "control plane" in text:
        return "bootstrap the first control-plane node, not a worker"
    if code == "INVALID_ARGUMENT":
        return "the node's config has no etcd section (cluster.etcd): regenerate it with `invoke configure`"
    if code == "PERMISSION_DENIED":
        return "Bootstrap needs a talosconfig with the os:admin role"
    return "see the node's logs (`invoke talos.logs machined`)"


def _kubeconfig_works(run: BootstrapRun) -> bool:
    path = run.kubeconfig_path()
    if not path.exists():
        return False
    import yaml

    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return False
    servers = [c.get("cluster", {}).get("server") for c in doc.get("clusters") or []]
    return run.cluster.endpoint in servers


def stage_kubeconfig(run: BootstrapRun) -> str | None:
    assert run.talos is not None
    if _kubeconfig_works(run):
        return f"{run.kubeconfig_path()} already holds this cluster's kubeconfig"
    from taltasks.talos.kubeconfig import merge_into, write_new

    first = run.cluster.control_planes[0]
    with run.emitter.step(
        "kubeconfig", f"fetching the admin kubeconfig into {run.kubeconfig_path()}", node=first.hostname
    ):
        text = run.talos.kubeconfig(node=first.ip)
        if run.options.merge_kubeconfig:
            merge_into(text)
        else:
            write_new(text, run.kubeconfig_path(), force=True)
    return None


def stage_api(run: BootstrapRun) -> str | None:
    names = {n.hostname for n in run.cluster.nodes}

    def registered() -> bool:
        from taltasks.kube.nodes import list_nodes

        return names <= {n.name for n in list_nodes(run.kube())}

    try:
        if registered():
            return f"the API answers and all {len(names)} machines have a Node"
    except TaltasksError:
        pass  # not up yet: wait for it below
    run.wait(f"the Kubernetes API and a Node for each of {len(names)} machines", registered)
    return None


def stage_cni(run: BootstrapRun) -> str | None:
    """Preview with a server-side dry run first: when every object is already there as
    rendered, only (read-only) wait for the rollout an earlier run may have left unfinished."""
    from taltasks.kube.rollout import ROLLOUT_KINDS, wait_for_nodes_ready, wait_for_rollout
    from taltasks.workflows.cni import install_cni

    kube = run.kube()
    preview = install_cni(kube, run.root, emitter=NULL, timeout=run.options.timeout, dry_run=True)
    if preview.changed:
        install_cni(kube, run.root, emitter=run.emitter, timeout=run.options.timeout)
        return None
    for a in preview.applied:
        if a.kind in ROLLOUT_KINDS:
            wait_for_rollout(
                kube, a.kind, a.name, a.namespace, timeout=run.options.timeout, emitter=run.emitter
            )
    wait_for_nodes_ready(kube, timeout=run.options.timeout, emitter=run.emitter)
    return f"{preview.release} is installed as rendered ({len(preview.applied)} objects unchanged) and rolled out"


def _age_key(run: BootstrapRun) -> bytes:
    from taltasks.secrets import age

    return age.key_for_flux(run.root)


def _namespaces(run: BootstrapRun) -> list[str]:
    """flux-system plus one namespace per folder of kubernetes/apps/ (the anchors' layout:
    apps are grouped by the namespace they live in)."""
    apps = run.root / "kubernetes" / "apps"
    found = sorted(p.name for p in apps.iterdir() if p.is_dir()) if apps.is_dir() else []
    return list(dict.fromkeys([*run.options.namespaces, *found]))


def stage_secrets(run: BootstrapRun) -> str | None:
    from taltasks.kube.client import KubeApiError

    kube = run.kube()
    key = _age_key(run)
    want = hashlib.sha256(key).hexdigest()
    ns, name = SOPS_SECRET
    wanted_ns = _namespaces(run)
    existing_ns = {
        item["metadata"]["name"] for item in kube.call("list namespaces", kube.core.list_namespace)["items"]
    }
    secret = None
    if ns in existing_ns:
        try:
            secret = kube.call(f"read secret {ns}/{name}", kube.core.read_namespaced_secret, name, ns)
        except KubeApiError as exc:
            if exc.status != 404:
                raise
    if (
        all(n in existing_ns for n in wanted_ns)
        and secret is not None
        and (secret.get("metadata", {}).get("annotations") or {}).get("taltasks.dev/sha256") == want
    ):
        return f"namespaces exist and secret {ns}/{name} holds the current age key"
    import base64

    for n in wanted_ns:
        if n not in existing_ns:
            with run.emitter.step("namespace", f"creating namespace {n}"):
                kube.call(
                    f"create namespace {n}",
                    kube.core.create_namespace,
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}},
                )
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "annotations": {"taltasks.dev/sha256": want}},
        "type": "Opaque",
        "data": {"age.agekey": base64.b64encode(key).decode()},
    }
    with run.emitter.step("secret", f"storing the SOPS age key as secret {ns}/{name}"):
        if secret is None:
            kube.call(f"create secret {ns}/{name}", kube.core.create_namespaced_secret, ns, body)
        else:
            body["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
            kube.call(f"replace secret {ns}/{name}", kube.core.replace_namespaced_secret, name, ns, body)
    return None


def stage_flux(run: BootstrapRun) -> str | None:
    if not run.options.flux:
        return "not asked for (--flux)"
    import yaml

    from taltasks.kube.apply import server_side_apply

    folder = run.root / "kubernetes" / "flux"
    if not folder.is_dir():
        raise InputError(
            "no Flux bootstrap manifests",
            where="kubernetes/flux",
            hint="put the flux-system manifests there, or run without --flux",
        )
    objects = [d for f in sorted(folder.rglob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    preview = server_side_apply(run.kube(), objects, default_namespace="flux-system", dry_run=True)
    if all(a.outcome == "unchanged" for a in preview):
        return f"the {len(preview)} Flux bootstrap objects are applied and unchanged"
    with run.emitter.step("flux", f"applying {len(objects)} Flux bootstrap objects from kubernetes/flux/"):
        server_side_apply(run.kube(), objects, default_namespace="flux-system")
    return None


RUNNERS: dict[str, Callable[[BootstrapRun], str | None]] = {
    "configs": stage_configs,
    "etcd": stage_etcd,
    "kubeconfig": stage_kubeconfig,
    "api": stage_api,
    "cni": stage_cni,
    "secrets": stage_secrets,
    "flux": stage_flux,
}


def bootstrap(options: BootstrapOptions, emitter: Emitter = NULL) -> BootstrapRun:
    """Run every stage in order (up to ``options.until``), skipping those already done."""
    from taltasks.model import load_cluster
    from taltasks.repo import talosconfig_path
    from taltasks.workflows.journal import Journal

    if options.until is not None and options.until not in STAGES:
        raise InputError(f"unknown stage {options.until!r}", hint=f"stages: {', '.join(STAGES)}")
    if options.until is None or STAGES.index(options.until) >= STAGES.index("cni"):
        from taltasks.workflows.cni import find_helm

        find_helm()  # the cni stage renders Cilium with helm: say it is missing before stage one
    run = BootstrapRun(options, emitter)
    run.cluster = load_cluster(options.root)
    if not run.cluster.control_planes:
        raise InputError("the cluster has no control plane", where="talos/talconfig.yaml")
    tc_path = talosconfig_path(options.root, options.talosconfig)
    cfg = TalosConfig.load(tc_path)
    from taltasks.talos import roles

    roles.require_context(cfg.context(), roles.ADMIN_ONLY, "bootstrapping a cluster")
    run.talos = TalosClient.from_context(cfg.context())
    emitter.emit(
        "plan",
        f"bootstrap {run.cluster.name}: {len(run.cluster.control_planes)} control planes, {len(run.cluster.workers)} workers",
        stages=list(STAGES),
    )
    # the journal finishes itself: completed, failed, or interrupted (Ctrl-C)
    with Journal.open(options.root, "bootstrap", meta={"cluster": run.cluster.name}) as journal:
        try:
            for stage in STAGES:
                journal.step(None, stage, "started")
                emitter.emit("step.started", f"stage {stage}", step=stage)
                try:
                    already = RUNNERS[stage](run)
                except BaseException as exc:
                    journal.step(None, stage, "failed", error=str(exc))
                    raise
                if already:
                    run.skipped.append(stage)
                    journal.step(None, stage, "skipped", reason=already)
                    emitter.emit("node.skipped", f"stage {stage}: {already}", step=stage)
                else:
                    run.done.append(stage)
                    journal.step(None, stage, "done")
                    emitter.emit("step.done", f"stage {stage}", step=stage)
                if stage == options.until:
                    journal.note(f"stopped after stage {stage} as asked")
                    emitter.emit("summary", f"stopped after stage {stage} as asked; run again to continue")
                    return run
            emitter.emit(
                "summary", f"cluster {run.cluster.name} is bootstrapped", done=run.done, skipped=run.skipped
            )
        finally:
            run.close()
    return run
