"""Which roles may call which method (Talos v1.12 RBAC, talos-api.md §9.3).

Methods without an entry require ``os:admin``; COSI reads of sensitive resource types
require ``os:admin`` as well (checked by the COSI handlers). What later minors add (1.13:
LifecycleService, ImageService, ApplyConfiguration for maintenance-mode readers) sits in
their rows of :mod:`.versions`, which is where a node asks (``Minor.allowed``).
"""

from __future__ import annotations

ADMIN = "os:admin"
OPERATOR = "os:operator"
READER = "os:reader"
ETCD_BACKUP = "os:etcd:backup"
IMPERSONATOR = "os:impersonator"

_M = "/machine.MachineService/"
_COSI = "/cosi.resource.State/"

_READ = frozenset({ADMIN, OPERATOR, READER})
_READ_ETCD = frozenset({ADMIN, OPERATOR, READER, ETCD_BACKUP})
_SNAPSHOT = frozenset({ADMIN, OPERATOR, ETCD_BACKUP})
_OPERATE = frozenset({ADMIN, OPERATOR})

ALLOWED: dict[str, frozenset[str]] = {
    **{
        _M + m: _READ
        for m in (
            "CPUInfo",
            "CPUFreqStats",
            "Containers",
            "DiskStats",
            "DiskUsage",
            "Dmesg",
            "Events",
            "Hostname",
            "ImageList",
            "List",
            "LoadAvg",
            "Logs",
            "LogsContainers",
            "Memory",
            "Mounts",
            "NetworkDeviceStats",
            "Netstat",
            "Processes",
            "ServiceList",
            "Stats",
            "SystemStat",
            "Version",
        )
    },
    **{_COSI + m: _READ for m in ("Get", "List", "Watch")},
    **{_M + m: _READ_ETCD for m in ("EtcdAlarmList", "EtcdMemberList", "EtcdStatus")},
    _M + "EtcdSnapshot": _SNAPSHOT,
    **{
        _M + m: _OPERATE
        for m in (
            "EtcdAlarmDisarm",
            "EtcdDefragment",
            "ImagePull",
            "PacketCapture",
            "Reboot",
            "Restart",
            "ServiceRestart",
            "ServiceStart",
            "ServiceStop",
            "Shutdown",
        )
    },
}
