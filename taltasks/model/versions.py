"""Talos and Kubernetes version arithmetic: parsing, the support matrix, version contracts.

A Talos version decides three things: which *version contract* the generator follows
(1.8 … 1.14 — the shape of the documents), which Kubernetes minors the node can run
(talos-config-gen.md §7), and which versions an in-place upgrade may start from. All
live here as data so that the model can reject an impossible pin before anything is
generated, and the plan can show the path minor by minor (:func:`upgrade_path`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


@total_ordering
@dataclass(frozen=True)
class Version:
    """A ``vMAJOR.MINOR[.PATCH][-PRE]`` version; ``str()`` gives the ``v``-prefixed form."""

    major: int
    minor: int
    patch: int = 0
    pre: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _SEMVER.match(str(text).strip())
        if not m:
            raise ValueError(f"{text!r} is not a version like v1.11.5")
        return cls(int(m[1]), int(m[2]), int(m[3] or 0), m[4] or "")

    @property
    def minor_key(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def bare(self) -> str:
        """Without the ``v``: ``1.34.3`` (what image tags of Kubernetes components follow)."""
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.pre}" if self.pre else "")

    def __str__(self) -> str:
        return "v" + self.bare

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        mine = (self.major, self.minor, self.patch)
        theirs = (other.major, other.minor, other.patch)
        if mine != theirs:
            return mine < theirs
        # a pre-release sorts before the release it leads to; its dot-separated parts
        # compare numerically when numeric (beta.2 < beta.10), as semver says
        if bool(self.pre) != bool(other.pre):
            return bool(self.pre)
        return _pre_key(self.pre) < _pre_key(other.pre)


def _pre_key(pre: str) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))


def compare(a: str, b: str) -> int | None:
    """-1, 0 or 1 comparing two version strings; None when either does not parse."""
    try:
        va, vb = Version.parse(a), Version.parse(b)
    except ValueError:
        return None
    return (va > vb) - (va < vb)


# Talos minor → (oldest, newest) supported Kubernetes minor (docs support matrix, §7; for
# 1.8 and 1.14 upstream's compatibility package talos18/talos114, which enforces it).
KUBERNETES_SUPPORT: dict[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]] = {
    (1, 8): ((1, 26), (1, 31)),
    (1, 9): ((1, 27), (1, 32)),
    (1, 10): ((1, 28), (1, 33)),
    (1, 11): ((1, 29), (1, 34)),
    (1, 12): ((1, 30), (1, 35)),
    (1, 13): ((1, 31), (1, 36)),
    (1, 14): ((1, 32), (1, 37)),
}

# Kubernetes version `talosctl gen config` uses when none is given (per contract; the
# minor of upstream's DefaultKubernetesVersion at that Talos minor).
DEFAULT_KUBERNETES: dict[tuple[int, int], str] = {
    (1, 8): "1.31.0",
    (1, 9): "1.32.0",
    (1, 10): "1.33.0",
    (1, 11): "1.34.0",
    (1, 12): "1.35.0",
    (1, 13): "1.36.0",
    (1, 14): "1.37.0",
}

# The contracts this generator implements (machineconfig/contract.py says what each one
# switches). Older contracts are not produced by taltasks.
SUPPORTED_CONTRACTS: tuple[tuple[int, int], ...] = (
    (1, 8),
    (1, 9),
    (1, 10),
    (1, 11),
    (1, 12),
    (1, 13),
    (1, 14),
)
LATEST_CONTRACT = SUPPORTED_CONTRACTS[-1]

# Upstream's compatibility/talosXY MinimumHostUpgradeVersion: the oldest Talos the installer
# of minor XY accepts for an in-place upgrade (it refuses older hosts outright).
MINIMUM_HOST_UPGRADE: dict[tuple[int, int], tuple[int, int, int]] = {
    (1, 8): (1, 5, 0),
    (1, 9): (1, 8, 0),
    (1, 10): (1, 8, 0),
    (1, 11): (1, 9, 0),
    (1, 12): (1, 10, 0),
    (1, 13): (1, 11, 0),
    (1, 14): (1, 12, 0),
}

# The newest patch release of each minor that taltasks knows of: the stepping stones of a
# multi-minor upgrade path (upstream: "the latest patch of every intermediate minor").
# 1.8-1.13 from the tags of siderolabs/talos (1.8 and 1.9 are end of life, so final);
# 1.14.7 was released 2026-11-24. Renovate keeps talenv.yaml current; refresh this table
# with a release of taltasks.
LATEST_PATCH: dict[tuple[int, int], str] = {
    (1, 8): "v1.8.4",
    (1, 9): "v1.9.6",
    (1, 10): "v1.10.9",
    (1, 11): "v1.11.6",
    (1, 12): "v1.12.11",
    (1, 13): "v1.13.9",
    (1, 14): "v1.14.7",
}


def supported_contracts_text(last: str = ", ") -> str:
    """``1.8, 1.9, …, 1.14`` (``last`` joins the final two: ``" or "`` for hints)."""
    names = [f"{a}.{b}" for a, b in SUPPORTED_CONTRACTS]
    return ", ".join(names[:-1]) + last + names[-1] if len(names) > 1 else names[0]


def kubernetes_supported(talos: Version, kubernetes: Version) -> bool:
    span = KUBERNETES_SUPPORT.get(talos.minor_key)
    if span is None:
        return False
    low, high = span
    return low <= kubernetes.minor_key <= high


def support_range(talos: Version) -> str:
    span = KUBERNETES_SUPPORT.get(talos.minor_key)
    if span is None:
        return "unknown"
    (a, b), (c, d) = span
    return f"{a}.{b}–{c}.{d}"


def kubernetes_path_refusal(current: Version, target: Version) -> str | None:
    """Why ``current → target`` is not a Kubernetes upgrade Talos performs in one go, or
    None. ``talosctl upgrade-k8s`` moves within a minor or to the next one only (§7): a
    jump over a minor, a change of major and a downgrade are refused."""
    if target == current:
        return None
    if target < current:
        return f"{target} is older than the running {current}: Kubernetes cannot be downgraded this way"
    if target.major != current.major:
        return f"{current} → {target} changes the major version, which no upgrade path covers"
    skipped = target.minor - current.minor - 1
    if skipped > 0:
        nxt = f"v{current.major}.{current.minor + 1}"
        return (
            f"{current} → {target} skips {skipped} minor version{'s' if skipped > 1 else ''}: "
            f"Kubernetes upgrades one minor at a time (go to the latest {nxt}.x first)"
        )
    return None


# ---- Talos upgrade paths -------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One in-place upgrade of a multi-minor path: the version to install and why it is there."""

    version: Version
    reason: str

    @property
    def contract(self) -> str:
        """The version contract configs for this step are generated for (``1.11``)."""
        return f"{self.version.major}.{self.version.minor}"

    def row(self) -> dict[str, str]:
        return {
            "version": str(self.version),
            "contract": self.contract,
            "kubernetes": support_range(self.version),
            "reason": self.reason,
        }


def minimum_host(target: Version) -> Version | None:
    """The oldest Talos the installer of ``target``'s minor upgrades in place, if known."""
    found = MINIMUM_HOST_UPGRADE.get(target.minor_key)
    return Version(*found) if found else None


def talos_jump_refusal(running: Version, target: Version) -> str | None:
    """Why ``running → target`` should not be one in-place upgrade, or None.

    Talos's installer refuses hosts older than the target minor's MinimumHostUpgradeVersion,
    and upstream tests upgrades only between adjacent minors: a jump over a minor (even one
    the installer would accept) is refused here, and :func:`upgrade_path` gives the steps."""
    if target.major != running.major or target.minor - running.minor <= 1:
        return None
    skipped = [f"{running.major}.{m}" for m in range(running.minor + 1, target.minor)]
    why = (
        f"{running} → {target} skips Talos {', '.join(skipped)}: upgrades are tested only "
        "between adjacent minors"
    )
    floor = minimum_host(target)
    if floor is not None and running < floor:
        why += f", and the {target.major}.{target.minor} installer refuses hosts older than {floor}"
    return why


def upgrade_path(running: Version, target: Version) -> list[Hop]:
    """The in-place upgrades from ``running`` to ``target``, minor by minor.

    Adjacent minors or a patch bump: one hop. Across minors, upstream's recommended path:
    the latest patch of the running minor, then the latest patch of every minor in between,
    then ``target``; every hop starts from a version its installer accepts (its minor's
    MinimumHostUpgradeVersion). A downgrade or a change of major is one hop (refused
    elsewhere); an unknown intermediate minor is named as ``vX.Y.0`` with a reason."""
    if target <= running or target.major != running.major or target.minor - running.minor <= 1:
        return [] if target == running else [Hop(target, "desired version")]
    hops: list[Hop] = []
    current = LATEST_PATCH.get(running.minor_key)
    if current is not None and Version.parse(current) > running:
        hops.append(
            Hop(
                Version.parse(current),
                f"latest {running.major}.{running.minor} patch first: the tested starting point "
                f"for {running.major}.{running.minor + 1}",
            )
        )
    for minor in range(running.minor + 1, target.minor):
        key = (running.major, minor)
        known = LATEST_PATCH.get(key)
        version = Version.parse(known) if known else Version(running.major, minor, 0)
        floor = minimum_host(version)
        reason = f"latest {running.major}.{minor} patch: upgrades are tested between adjacent minors"
        if not known:
            reason = f"a {running.major}.{minor} release (taltasks does not know its latest patch)"
        if floor is not None:
            reason += f"; its installer accepts hosts from {floor}"
        hops.append(Hop(version, reason))
    floor = minimum_host(target)
    last = "desired version" + (f"; its installer accepts hosts from {floor}" if floor else "")
    hops.append(Hop(target, last))
    return hops


def describe_path(running: Version, hops: list[Hop]) -> str:
    """``v1.10.3 → v1.10.9 → v1.11.6 → … → v1.14.7``."""
    return " → ".join([str(running), *(str(h.version) for h in hops)])
