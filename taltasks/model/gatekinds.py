"""The kinds of health gate a policy may name, and the settings each accepts — as data.

The policy validator checks entries against this table (unknown kind or setting → error
with a "did you mean"); :mod:`taltasks.gates` implements one observer per kind, and a
test keeps the two in step. Keeping the table here, beside the policy, lets the model
validate a repository without importing the gate machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Ceph health-check codes that no allowlist may tolerate (health-gates.md §0): each means
# IO is blocked, data is damaged or recovery cannot finish. ``FULL`` matches every code
# ending in FULL (OSD_FULL, OSD_NEARFULL, OSD_BACKFILLFULL, POOL_FULL, PG_*_FULL…);
# ``error`` is the key Rook writes when it cannot even run ``ceph status``.
CEPH_FORBIDDEN: frozenset[str] = frozenset(
    {"PG_AVAILABILITY", "PG_DAMAGED", "OBJECT_UNFOUND", "OSD_DOWN", "MON_DOWN", "error"}
)
CEPH_FORBIDDEN_SUFFIX = "FULL"
# Codes that do not heal by waiting: a gate seeing them stops the run at once.
CEPH_ABORT_DEFAULT: tuple[str, ...] = ("PG_DAMAGED", "OBJECT_UNFOUND", "OSD_SCRUB_ERRORS")


def ceph_code_forbidden(code: str) -> bool:
    return code in CEPH_FORBIDDEN or code.endswith(CEPH_FORBIDDEN_SUFFIX)


@dataclass(frozen=True)
class Param:
    """One setting of a gate entry. ``type`` is one of: bool, int, str, duration, codes
    (list of strings), selector (a Kubernetes labelSelector), choice, expr (CEL)."""

    name: str
    type: str
    default: Any = None
    choices: tuple[str, ...] = ()
    required: bool = False
    help: str = ""


@dataclass(frozen=True)
class GateKind:
    name: str
    summary: str
    params: tuple[Param, ...] = ()
    # "stability": the policy's stability window applies unless the entry sets ``window``;
    # "none": a point-in-time fact (Talos and etcd report no history), window 0 by default.
    window: str = "stability"
    by_name: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {p.name: p for p in self.params})


# Settings every entry accepts, whatever its kind.
COMMON_PARAMS: tuple[Param, ...] = (
    Param("gate", "str", required=True, help="the gate kind"),
    Param("id", "str", help="name shown in output and the journal (default: derived from the kind)"),
    Param("timeout", "duration", help="deadline for this gate (default: timeouts.gate)"),
    Param("window", "duration", help="how long every condition must hold (default: stability.window)"),
    Param("description", "str", help="free text shown while waiting"),
)

_SCOPE = Param("scope", "choice", choices=("node", "all"), help="the node being upgraded, or every node")
_SELECTOR_PARAMS = (
    Param("namespace", "str", help="only objects in this namespace (default: all namespaces)"),
    Param("name", "str", help="exactly this object; it must exist"),
    Param("labelSelector", "selector", help="only objects matching this Kubernetes label selector"),
)

KINDS: dict[str, GateKind] = {
    k.name: k
    for k in (
        GateKind(
            "talos-node",
            "Talos machine stage running and ready; after an upgrade also the expected version and a new boot id",
            (_SCOPE,),
            window="none",
        ),
        GateKind(
            "etcd",
            "every etcd member healthy, member count equal to the control planes, identical member lists, no learners",
            (),
            window="none",
        ),
        GateKind(
            "kube-node",
            "Kubernetes Nodes registered, Ready and schedulable (Ready held since its lastTransitionTime)",
            (
                Param("scope", "choice", default="all", choices=("node", "all")),
                Param("schedulable", "bool", default=True, help="also require not cordoned"),
            ),
        ),
        GateKind(
            "ceph",
            "CephCluster HEALTH_OK or only allowed warnings, fresh status, phase not Failure, Rook PDBs idle",
            (
                Param("namespace", "str"),
                Param("name", "str"),
                Param("allow", "codes", default=(), help="health-check codes tolerated besides HEALTH_OK"),
                Param("abortOn", "codes", default=CEPH_ABORT_DEFAULT, help="codes that stop the run at once"),
                Param(
                    "tolerateBaseline",
                    "bool",
                    default=False,
                    help="also tolerate codes present before the run",
                ),
                Param("pdbState", "choice", default="auto", choices=("auto", "on", "off")),
                Param(
                    "staleAfter",
                    "duration",
                    help="status older than this fails closed (default 3× Rook's interval)",
                ),
                Param(
                    "freshSamples",
                    "int",
                    help="distinct lastChecked values required (default stability.freshSamples)",
                ),
                Param("required", "bool", default=False, help="fail when no CephCluster exists"),
            ),
        ),
        GateKind(
            "cnpg",
            "CloudNativePG Clusters healthy, all instances ready, primary settled, Ready held, at most N failovers",
            (
                *_SELECTOR_PARAMS,
                Param(
                    "maxTimelineBumps",
                    "int",
                    default=1,
                    help="failovers tolerated per node (timelineID bumps)",
                ),
                Param(
                    "placement",
                    "bool",
                    default=True,
                    help="before a drain: at most one instance per cluster on the node",
                ),
                Param("required", "bool", default=False, help="fail when no Cluster exists"),
            ),
        ),
        GateKind(
            "expression",
            "a CEL expression over any resource, in tuppr's healthChecks shape",
            (
                Param("apiVersion", "str", required=True),
                Param("kind", "str", required=True),
                *_SELECTOR_PARAMS,
                Param("expr", "expr", required=True, help="CEL; variables: object, status"),
            ),
            window="none",
        ),
    )
}

# tuppr's HealthCheckSpec fields: a ``healthChecks`` entry may hold exactly these
# (plus ``window``, a taltasks extension tuppr would reject in its CRD).
TUPPR_FIELDS: tuple[str, ...] = (
    "apiVersion",
    "kind",
    "name",
    "namespace",
    "labelSelector",
    "expr",
    "timeout",
    "description",
)
