"""How each Talos minor behaves on the API, as data the simulated apid and machined consult.

One row per minor (1.11 … 1.14; older minors behave as 1.11, newer ones as 1.14). A node
looks its row up from the version it runs, so a mixed-version cluster is nothing more than
nodes with different versions. Sources: siderolabs/talos at v1.11.5, v1.12.11, v1.13.9 and
v1.14.0-rc.1 (``internal/app/apid/pkg/director``, ``internal/app/apid/service.go``,
``internal/app/machined/internal/server/v1alpha1``, ``internal/app/maintenance`` up to 1.12,
``internal/app/machined/pkg/system/services/machined.go`` for the roles).

What does *not* differ between these minors is not here: Talos's own cordon of a Node
whose machine is upgrading / shutting down / resetting (and the uncordon at boot), the
LOCKED sequence event for a busy node, EtcdForfeitLeadership naming the new leader, and
apid's rule that a client certificate's extended key usage is exactly clientAuth.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from taltasks.sim.talos import rbac

MACHINE = "machine.MachineService"
COSI = "cosi.resource.State"
LIFECYCLE = "machine.LifecycleService"
IMAGES = "machine.ImageService"

APPLY_MODES = frozenset({"REBOOT", "AUTO", "NO_REBOOT", "STAGED", "TRY"})


@dataclass(frozen=True)
class Maintenance:
    """What a node without a config serves.

    ``service`` up to 1.12: a separate maintenance server with its own short list of
    MachineService methods (``methods``; ``admin_only`` of them answer Unimplemented to
    anyone but a SideroLink admin). From 1.13 apid itself serves maintenance mode with every
    peer an ``os:reader`` (``readonly``): the normal roles decide, so reads work and an
    Upgrade is ``not authorized``; ApplyConfiguration is allowed to readers there.
    """

    kind: str  # "service" | "readonly"
    apply_modes: frozenset[str]
    reboot_becomes_no_reboot: bool = False  # 1.13+: REBOOT is taken as NO_REBOOT
    methods: frozenset[str] = frozenset()  # "service" only
    admin_only: frozenset[str] = frozenset()  # "service" only


@dataclass(frozen=True)
class Minor:
    minor: tuple[int, int]
    services: frozenset[str]
    # services a `nodes` (one-to-many) call may address; None = everything but COSI
    one_to_many: frozenset[str] | None
    nodes_deprecated: bool  # apid logs every `nodes` call as deprecated (1.14)
    apply_modes: frozenset[str]  # modes a configured node accepts (others: Unimplemented)
    auto_may_reboot: bool  # AUTO resolves to REBOOT when the change needs one; else NO_REBOOT
    live_apply_checked: bool  # NO_REBOOT / TRY refuse a change that needs a reboot
    maintenance: Maintenance
    boot_id_resource: bool  # BootIDs.runtime.talos.dev (readable by os:reader)
    extra_args: str  # "map" (map<string,string>, ≤1.12) or "values" (map<string, ArgValues>)
    # from this patch of the minor on, the legacy Upgrade skips the etcd health check and
    # upgrade mutex when `preserve` is set (upstream 89e307e); None: preserve never does
    preserve_skips_etcd_check_from: int | None
    roles: dict[str, frozenset[str]] = field(default_factory=dict)  # added to rbac.ALLOWED

    def serves(self, path: str) -> bool:
        return path[1:].split("/", 1)[0] in self.services

    def one_to_many_refusal(self, path: str) -> str | None:
        """apid's InvalidArgument text for a `nodes` call to ``path``, or None if allowed."""
        service = path[1:].split("/", 1)[0]
        if self.one_to_many is None:
            return "one-2-many proxying is not supported for COSI methods" if service == COSI else None
        if service in self.one_to_many:
            return None
        return f"one-2-many proxying is not supported for method {path}"

    def allowed(self, path: str, roles: frozenset[str]) -> bool:
        if rbac.ADMIN in roles:
            return True
        allowed = self.roles.get(path, rbac.ALLOWED.get(path, frozenset()))
        return bool(roles & allowed)

    def preserve_skips_etcd_check(self, patch: int) -> bool:
        start = self.preserve_skips_etcd_check_from
        return start is not None and patch >= start


_MAINTENANCE_SERVICE = Maintenance(
    "service",
    apply_modes=frozenset({"TRY", "REBOOT", "AUTO"}),
    methods=frozenset({"ApplyConfiguration", "Version", "Upgrade", "Reset"}),
    admin_only=frozenset({"Version", "Upgrade", "Reset"}),
)
_MAINTENANCE_READONLY = Maintenance("readonly", apply_modes=APPLY_MODES, reboot_becomes_no_reboot=True)

_ONE_TO_MANY_1_13 = frozenset(
    {
        MACHINE,
        "cluster.ClusterService",
        "inspect.InspectService",
        "storage.StorageService",
        "time.TimeService",
    }
)

_ROLES_1_13 = {
    f"/{LIFECYCLE}/Install": frozenset({rbac.ADMIN}),
    f"/{LIFECYCLE}/Upgrade": frozenset({rbac.ADMIN}),
    f"/{IMAGES}/Pull": frozenset({rbac.ADMIN, rbac.OPERATOR}),
    f"/{IMAGES}/List": frozenset({rbac.ADMIN, rbac.OPERATOR, rbac.READER}),
    # allowed to readers for maintenance mode only; machined checks admin on a configured node
    f"/{MACHINE}/ApplyConfiguration": frozenset({rbac.ADMIN, rbac.READER}),
}

# each minor as what it changed from the one before
_1_11 = Minor(
    (1, 11),
    services=frozenset({MACHINE, COSI}),
    one_to_many=None,
    nodes_deprecated=False,
    apply_modes=APPLY_MODES,
    auto_may_reboot=True,
    live_apply_checked=True,
    maintenance=_MAINTENANCE_SERVICE,
    boot_id_resource=False,
    extra_args="map",
    preserve_skips_etcd_check_from=None,
)
_1_12 = replace(_1_11, minor=(1, 12), preserve_skips_etcd_check_from=9)
_1_13 = replace(
    _1_12,
    minor=(1, 13),
    services=frozenset({MACHINE, COSI, LIFECYCLE, IMAGES}),
    one_to_many=_ONE_TO_MANY_1_13,
    maintenance=_MAINTENANCE_READONLY,
    extra_args="values",
    preserve_skips_etcd_check_from=4,
    roles=_ROLES_1_13,
)
_1_14 = replace(
    _1_13,
    minor=(1, 14),
    nodes_deprecated=True,
    apply_modes=APPLY_MODES - {"REBOOT"},
    auto_may_reboot=False,
    live_apply_checked=False,
    boot_id_resource=True,
    preserve_skips_etcd_check_from=0,
)
MINORS: dict[tuple[int, int], Minor] = {m.minor: m for m in (_1_11, _1_12, _1_13, _1_14)}


def parse(version: str) -> tuple[tuple[int, int], int]:
    """``v1.13.4`` → ((1, 13), 4); an unparsable version counts as the oldest row."""
    from taltasks.model.versions import Version

    try:
        v = Version.parse(version)
    except ValueError:
        return min(MINORS), 0
    return v.minor_key, v.patch


def minor(version: str) -> Minor:
    """The row for a node running ``version`` (clamped to the rows there are)."""
    key, _ = parse(version)
    key = max(min(key, max(MINORS)), min(MINORS))
    return MINORS[key]
