"""Which API path a Talos version calls for: one row per minor, consulted by the client
and the workflows instead of version comparisons scattered through them.

Facts from siderolabs/talos (v1.8 … v1.13.9, v1.14.0-rc.1):

* **Upgrade.** From 1.13 a node has ``ImageService`` and ``LifecycleService``: talosctl
  (``talosUpgradeAPIVersionRange`` ``>1.13.0-alpha.2``) pulls the installer with
  ``ImageService.Pull``, runs it with ``LifecycleService.Upgrade`` and reboots with
  ``MachineService.Reboot``. Older nodes only have ``MachineService.Upgrade`` (deprecated
  from 1.13). Its ``preserve`` flag preserves nothing any more (the installer refuses to
  wipe on upgrade since 1.8) but, from 1.12.9 / 1.13.4 / 1.14, switches off Talos's own etcd
  health check and upgrade mutex — so taltasks never sends it.
* **Apply.** 1.14 refuses ``REBOOT`` on a configured node and resolves ``AUTO`` to
  ``NO_REBOOT`` always: a change that needs a reboot is taken and waits for the next boot,
  without saying so. Up to 1.13 ``AUTO`` reboots when it must.
* **Fan-out.** One-to-many ``nodes`` proxying is for ``MachineService`` & co. only from 1.13
  (never for LifecycleService / ImageService) and deprecated in 1.14; talosctl 1.14 fans out
  itself, one call per node with ``node``.
* **Maintenance mode.** Up to 1.12 a separate maintenance service takes apply modes auto,
  reboot and try; from 1.13 apid serves it read-only and takes every mode (REBOOT as
  NO_REBOOT, STAGED kept for the next boot).
* **Boot id.** 1.14 publishes ``BootIDs.runtime.talos.dev`` (readable by os:reader); before,
  only the admin-only ``Read`` of ``/proc/sys/kernel/random/boot_id`` has it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Generation:
    minor: tuple[int, int]
    lifecycle_upgrade: bool  # ImageService.Pull + LifecycleService.Upgrade + Reboot
    apply_reboot_mode: bool  # ApplyConfiguration mode REBOOT exists on a configured node
    apply_auto_may_reboot: bool  # AUTO reboots by itself when the change needs it
    nodes_proxying: bool  # `nodes` one-to-many may be used for this node (before 1.13)
    boot_id_resource: bool
    maintenance_apply_modes: frozenset[str]  # apply modes a node in maintenance mode takes

    @property
    def upgrade_path(self) -> str:
        return "lifecycle" if self.lifecycle_upgrade else "legacy"


_ALL_MODES = frozenset({"auto", "reboot", "no-reboot", "staged", "try"})
# each minor as what it changed from the one before; 1.8 – 1.12 are alike
_1_12 = Generation(
    (1, 12),
    lifecycle_upgrade=False,
    apply_reboot_mode=True,
    apply_auto_may_reboot=True,
    nodes_proxying=True,
    boot_id_resource=False,
    maintenance_apply_modes=frozenset({"auto", "reboot", "try"}),  # the maintenance service
)
_1_13 = replace(
    _1_12,
    minor=(1, 13),
    lifecycle_upgrade=True,
    nodes_proxying=False,
    maintenance_apply_modes=_ALL_MODES,  # apid read-only: REBOOT taken as NO_REBOOT
)
_1_14 = replace(
    _1_13, minor=(1, 14), apply_reboot_mode=False, apply_auto_may_reboot=False, boot_id_resource=True
)
GENERATIONS: dict[tuple[int, int], Generation] = {
    **{(1, m): replace(_1_12, minor=(1, m)) for m in range(8, 13)},
    (1, 13): _1_13,
    (1, 14): _1_14,
}

# pre-releases of 1.13 before its new services existed (talosctl's range starts after these)
_PRE_LIFECYCLE = frozenset({"alpha.0", "alpha.1", "alpha.2"})


def generation(version: str) -> Generation:
    """The row for a node that reports ``version`` (``v1.13.4``); versions outside the
    table take the nearest row. An unparsable version is treated as the oldest."""
    from taltasks.model.versions import Version

    try:
        v = Version.parse(version)
    except ValueError:
        return GENERATIONS[min(GENERATIONS)]
    key = max(min(v.minor_key, max(GENERATIONS)), min(GENERATIONS))
    row = GENERATIONS[key]
    if key == (1, 13) and v.patch == 0 and v.pre in _PRE_LIFECYCLE:
        return GENERATIONS[(1, 12)]
    return row
