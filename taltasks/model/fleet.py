"""A fleet file: several clusters, each its own checkout, planned and upgraded in one go.

::

    # fleet.yaml — the clusters, in the order talos.upgrade-all --fleet takes them
    clusters:
      - name: lab                      # shown in tables, JSON and messages
        repo: ../lab-ops               # a checkout with talos/ (relative to this file)
      - name: home
        repo: ../home-ops
        talosconfig: ~/.talos/home     # optional: default <repo>/talos/clusterconfig/talosconfig
        context: admin@home            # optional talosconfig context
        kubeconfig: ~/.kube/home       # optional: default <repo>/kubeconfig

Each cluster keeps everything of its own: definition, upgrade policy, journal
(``<repo>/.taltasks/``), gates. ``$TALOSCONFIG`` and ``$KUBECONFIG`` are ignored for a
fleet (they name one cluster): the file says which configs go with which cluster.

Every cluster's definition and policy is validated before anything connects, so a typo in
the third cluster's policy stops the fleet before the first cluster is touched. Errors name
``file:line``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from taltasks.errors import InputError
from taltasks.yamlpos import YamlDoc

if TYPE_CHECKING:
    from taltasks.model.cluster import Cluster
    from taltasks.model.policy import UpgradePolicy

KEYS = ("name", "repo", "talosconfig", "context", "kubeconfig")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")


@dataclass(frozen=True)
class FleetMember:
    """One cluster of a fleet, with its checkout's definition and policy loaded."""

    name: str
    repo: Path
    cluster: Cluster
    policy: UpgradePolicy
    talosconfig: Path | None = None
    context: str | None = None
    kubeconfig: Path | None = None
    where: str = ""  # file:line of its entry

    def talosconfig_path(self) -> Path | None:
        """The file's choice, else the checkout's own talosconfig (never ``$TALOSCONFIG``)."""
        if self.talosconfig is not None:
            return self.talosconfig
        from taltasks.repo import TALOSCONFIG

        candidate = self.repo / TALOSCONFIG
        return candidate if candidate.exists() else None

    def kubeconfig_path(self) -> Path | None:
        """The file's choice, else the checkout's own kubeconfig (never ``$KUBECONFIG``)."""
        if self.kubeconfig is not None:
            return self.kubeconfig
        from taltasks.repo import KUBECONFIG

        candidate = self.repo / KUBECONFIG
        return candidate if candidate.exists() else None


@dataclass(frozen=True)
class Fleet:
    path: Path
    members: tuple[FleetMember, ...]

    def names(self) -> list[str]:
        return [m.name for m in self.members]


def load_fleet(path: Path | str) -> Fleet:
    """Read and validate a fleet file and every cluster it names."""
    from taltasks.model import load_cluster
    from taltasks.model.policy import load_policy

    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"fleet file {path} does not exist", hint="see docs/scaling.md for its shape")
    doc = YamlDoc.load(path, display=str(path))
    if not isinstance(doc.data, dict) or set(doc.data) != {"clusters"}:
        unknown = sorted(set(doc.data or {}) - {"clusters"}) if isinstance(doc.data, dict) else []
        keys = (unknown[0],) if unknown else ()
        raise doc.error(
            keys,
            f"unknown key {unknown[0]!r} in the fleet file"
            if unknown
            else "a fleet file is a mapping with 'clusters'",
            hint="clusters: [{name: lab, repo: ../lab-ops}, …]",
        )
    entries = doc.get(("clusters",))
    if not isinstance(entries, list) or not entries:
        raise doc.error(("clusters",), "clusters must be a non-empty list of {name, repo}")
    base = path.parent
    members: list[FleetMember] = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(entries):
        keys = ("clusters", i)
        if not isinstance(entry, dict):
            raise doc.error(keys, "each cluster is a mapping with 'name' and 'repo'")
        for key in entry:
            if key not in KEYS:
                raise doc.error(
                    (*keys, key), f"unknown key {key!r} for a cluster", hint="keys: " + ", ".join(KEYS)
                )
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise doc.error(
                (*keys, "name"), f"cluster name {name!r} must be lower-case letters, digits, '-', '_' or '.'"
            )
        if name in seen:
            raise doc.error((*keys, "name"), f"cluster {name!r} is listed twice (first at {seen[name]})")
        seen[name] = doc.where(keys)
        repo = _path(doc, (*keys, "repo"), entry.get("repo"), base, required=True)
        assert repo is not None
        if not (repo / "talos" / "talconfig.yaml").exists():
            raise doc.error(
                (*keys, "repo"),
                f"{repo} has no talos/talconfig.yaml",
                hint="repo is the cluster's checkout (the directory holding talos/)",
            )
        context = entry.get("context")
        if context is not None and (not isinstance(context, str) or not context):
            raise doc.error((*keys, "context"), "context must be the name of a talosconfig context")
        try:
            cluster, policy = load_cluster(repo), load_policy(repo)
        except InputError as exc:
            where = exc.where or ""
            if where and not Path(where.split(":")[0]).is_absolute():
                where = str(repo / where)
            raise InputError(
                f"cluster {name}: {exc.message}", where=where or str(repo), hint=exc.hint
            ) from None
        members.append(
            FleetMember(
                name=name,
                repo=repo,
                cluster=cluster,
                policy=policy,
                talosconfig=_path(doc, (*keys, "talosconfig"), entry.get("talosconfig"), base),
                context=context,
                kubeconfig=_path(doc, (*keys, "kubeconfig"), entry.get("kubeconfig"), base),
                where=doc.where(keys),
            )
        )
    return Fleet(path, tuple(members))


def _path(doc: YamlDoc, keys: tuple, value: object, base: Path, *, required: bool = False) -> Path | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise doc.error(keys, f"{keys[-1]} must be a path")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else (base / path)
    if not path.exists():
        raise doc.error(keys, f"{keys[-1]}: {path} does not exist")
    return path.resolve()
