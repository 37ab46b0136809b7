"""A simulated Rook-Ceph: CephCluster status and Rook's managed disruption budgets.

What it creates (in ``ceph.namespace``): the CephCluster, one pinned Deployment per mon
(``rook-ceph-mon-a``…, ``app=rook-ceph-mon``) and per OSD (``rook-ceph-osd-<id>``,
``app=rook-ceph-osd``, ``topology-location-host=<node>``), mgr Deployments, the static mon
and mgr PDBs, the ``rook-ceph-osd`` PDB and the ``rook-ceph-pdbstatemap`` ConfigMap.

How it behaves (health-gates.md §1):

* Status is written on Rook's polling loop only: every ``checkIntervalSeconds``
  ``status.ceph.lastChecked`` moves and ``health``/``details`` are recomputed, so a gate
  sees a returning node's OSDs late, exactly as with Rook's 60 s interval.
* An OSD whose pod is not Ready gives ``OSD_DOWN`` (and ``OSD_HOST_DOWN`` when all OSDs of a
  host are down) plus ``PG_DEGRADED``; ``PG_DEGRADED`` stays ``recoverySeconds`` after the
  last OSD is back (recovery). A mon down gives ``MON_DOWN``; losing mon quorum gives
  ``HEALTH_ERR`` with the synthetic ``error`` key Rook writes when ``ceph status`` fails.
  ``lastChanged``/``previousHealth`` are set when health changes.
* Managed PDBs: idle = ``rook-ceph-osd`` (maxUnavailable 1). When an OSD goes down its host
  becomes the draining failure domain: the default PDB is deleted, ``rook-ceph-osd-host-<fd>``
  PDBs with maxUnavailable 0 protect every other host, ``noout`` is set on the draining host
  (``OSD_FLAGS``) and the state ConfigMap says which domain drains. Once every OSD is up and
  PGs are clean again the default PDB comes back and the rest is cleared.
* Pools: one CephBlockPool per configured pool (``spec.replicated.size``,
  ``spec.failureDomain``, ``spec.parameters.min_size``). Each OSD sits in a CRUSH bucket per
  failure-domain type — its host, and its Node's ``topology.kubernetes.io/zone`` (Rook's
  mapping) — and carries Rook's ``topology-location-<type>`` labels. A placement group keeps
  one replica per domain, so with ``d`` domains holding a down OSD the worst PG has
  ``size - min(size, d)`` replicas up; below ``min_size`` its I/O stops: ``PG_AVAILABILITY``
  (data unavailable). Each pool's worst case is recorded as ``ceph.pool`` when it changes.
* Rook's OSD budgets follow the *lowest* failure domain of all pools (Rook's rule): with
  every pool on ``zone``, a draining OSD opens its whole zone (``rook-ceph-osd-zone-<z>``
  blocking PDBs for the other zones), with any pool on ``host`` only its host.
* Faults: ``ceph-stuck`` pins health and details from its trigger on; ``pg-availability``
  adds ``PG_AVAILABILITY`` (a WARN that means IO is blocked) from its trigger on.

Every health change is recorded as a ``ceph.health`` entry.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from taltasks.sim.kube.objects import rfc3339
from taltasks.sim.kube.runtime import Controller, Reactor
from taltasks.sim.operators.common import ensure_namespace, pdb, pinned_deployment, pod_up, sync_pdbs
from taltasks.sim.operators.scenario import CephConfig, FaultConfig, PoolConfig

CEPH_VERSION = "19.2.3"
MON_IDS = "abcdefghijklmnopqrstuvwxyz"
OWNED = ("app.kubernetes.io/managed-by", "rook-ceph-operator")
PGS = 129
# CRUSH bucket types from the lowest to the highest, as Rook orders them
CRUSH_LEVELS = ("host", "chassis", "rack", "row", "pdu", "pod", "room", "datacenter", "zone", "region")
ZONE_LABEL = "topology.kubernetes.io/zone"


def precise_now() -> str:
    """RFC 3339 with milliseconds. Rook writes whole seconds; the simulator polls many times
    a second, and whole seconds would hide all polls but one per second from a gate that
    counts fresh ``lastChecked`` samples."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


class CephOperator(Controller):
    watches = ("pods", "nodes")

    def __init__(
        self,
        reactor: Reactor,
        config: CephConfig,
        faults: list[FaultConfig] | None = None,
        *,
        zones: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reactor)
        self.config = config
        self.zones = dict(zones or {})  # host → zone, as the Nodes are labelled
        self._pool_up: dict[str, int] = {}
        self.faults = list(faults or [])
        self.established = False  # every daemon has run once: the cluster exists
        self.disrupted = False  # has any daemon gone down since (fault trigger)
        self.degraded_until = 0.0  # PGs are not clean before this monotonic time
        self.draining_domain = ""
        self._last_health: str | None = None
        self._fsid = str(hashlib.sha256(f"{config.namespace}/{config.name}".encode()).hexdigest()[:32])
        self._fsid = "-".join(
            (self._fsid[:8], self._fsid[8:12], self._fsid[12:16], self._fsid[16:20], self._fsid[20:32])
        )

    # ---- set-up ---------------------------------------------------------------------------

    def start(self) -> None:
        self._install()
        super().start()
        self.reactor.every(self.config.check_interval_seconds, self.check_health, first=0.0)

    def _install(self) -> None:
        c, store = self.config, self.store
        ensure_namespace(store, c.namespace)
        cluster = store.try_get("cephclusters.ceph.rook.io", c.name, c.namespace) or store.create(
            {
                "apiVersion": "ceph.rook.io/v1",
                "kind": "CephCluster",
                "metadata": {"name": c.name, "namespace": c.namespace},
                "spec": {
                    "cephVersion": {"image": c.image},
                    "dataDirHostPath": "/var/lib/rook",
                    "mon": {"count": len(c.mons), "allowMultiplePerNode": False},
                    "mgr": {"count": c.mgrs},
                    "storage": {
                        "useAllNodes": False,
                        "useAllDevices": False,
                        "nodes": [
                            {"name": host, "devices": [{"name": f"/dev/disk/by-id/osd-{i}"} for i in ids]}
                            for host, ids in sorted(c.osds.items())
                        ],
                    },
                    "disruptionManagement": {
                        "managePodBudgets": c.manage_pod_budgets,
                        "osdMaintenanceTimeout": 30,
                    },
                    "healthCheck": {
                        "daemonHealth": {"status": {"interval": f"{c.check_interval_seconds:g}s"}}
                    },
                },
            }
        )
        for i, node in enumerate(c.mons):
            self._daemon(cluster, "mon", MON_IDS[i], node, {"mon": MON_IDS[i]})
        for osd, host in sorted(c.osd_hosts().items()):
            extra = {"ceph-osd-id": str(osd), "osd": str(osd), "failure-domain": host}
            extra |= {f"topology-location-{t}": v for t, v in self.location(host).items()}
            extra["topology-location-root"] = "default"
            self._daemon(cluster, "osd", str(osd), host, extra)
        for pool in c.pools:
            self._pool(pool)
        for i in range(c.mgrs):
            self._daemon(cluster, "mgr", MON_IDS[i], None, {"mgr": MON_IDS[i]})
        if store.try_get("configmaps", "rook-ceph-pdbstatemap", c.namespace) is None:
            store.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "rook-ceph-pdbstatemap", "namespace": c.namespace},
                    "data": {"draining-failure-domain": "", "set-no-out": ""},
                }
            )

    def location(self, host: str) -> dict[str, str]:
        """The OSD host's CRUSH location by bucket type (Rook reads it from the Node's
        labels: ``topology.kubernetes.io/zone`` → ``zone``)."""
        out = {"host": host}
        if host in self.zones:
            out["zone"] = self.zones[host]
        return out

    def pdb_domain_type(self) -> str:
        """Rook's OSD budgets use the lowest failure domain any pool enforces."""
        return min((p.failure_domain for p in self.config.pools), key=CRUSH_LEVELS.index)

    def _pool(self, pool: PoolConfig) -> None:
        c = self.config
        if self.store.try_get("cephblockpools.ceph.rook.io", pool.name, c.namespace) is not None:
            return
        spec: dict[str, Any] = {"failureDomain": pool.failure_domain, "replicated": {"size": pool.size}}
        if pool.pool_name:
            spec["name"] = pool.pool_name
        if pool.min_size is not None:
            spec["parameters"] = {"min_size": str(pool.min_size)}
        self.store.create(
            {
                "apiVersion": "ceph.rook.io/v1",
                "kind": "CephBlockPool",
                "metadata": {"name": pool.name, "namespace": c.namespace},
                "spec": spec,
            }
        )
        self.store.update_status(
            "cephblockpools.ceph.rook.io", pool.name, {"phase": "Ready"}, namespace=c.namespace
        )

    def pools_up(self, osd_up: dict[int, bool]) -> dict[str, int]:
        """Per pool, the replicas up in its worst placement group: one replica per failure
        domain, and every domain holding a down OSD may hold one of the PG's replicas."""
        hosts = self.config.osd_hosts()
        out = {}
        for pool in self.config.pools:
            down = {
                self.location(hosts[osd]).get(pool.failure_domain, f"(host {hosts[osd]})")
                for osd, up in osd_up.items()
                if not up
            }
            out[pool.name] = pool.size - min(pool.size, len(down))
        return out

    def _daemon(
        self, cluster: dict[str, Any], kind: str, daemon_id: str, node: str | None, extra: dict[str, str]
    ) -> None:
        """One Ceph daemon as Rook runs it: a Deployment ``rook-ceph-<kind>-<id>`` (pinned to
        ``node`` when given) with Rook's labels."""
        c = self.config
        labels = {"rook_cluster": c.namespace, OWNED[0]: OWNED[1], "app": f"rook-ceph-{kind}"}
        labels |= {"ceph_daemon_type": kind, "ceph_daemon_id": daemon_id, **extra}
        deployment = pinned_deployment(
            c.namespace,
            f"rook-ceph-{kind}-{daemon_id}",
            labels,
            node=node,
            image=c.image,
            tolerate_control_plane=True,
            owner=cluster,
            container=kind,
        )
        self.store.upsert(deployment)

    # ---- observing ------------------------------------------------------------------------

    def _daemons(self) -> tuple[dict[int, bool], dict[str, bool]]:
        c = self.config
        pods = self.store.list("pods", c.namespace, label_selector=f"rook_cluster={c.namespace}")
        osd_up = {osd: False for osd in c.osd_hosts()}
        mon_up = {MON_IDS[i]: False for i in range(len(c.mons))}
        for p in pods:
            labels = p["metadata"].get("labels") or {}
            if labels.get("app") == "rook-ceph-osd" and pod_up(p):
                osd_up[int(labels["ceph-osd-id"])] = True
            elif labels.get("app") == "rook-ceph-mon" and pod_up(p):
                mon_up[labels["mon"]] = True
        return osd_up, mon_up

    def reconcile(self) -> None:
        osd_up, mon_up = self._daemons()
        now = time.monotonic()
        if not self.established:
            # Rook is still creating the cluster: nothing is degraded yet, nothing drains
            self.established = all(osd_up.values()) and all(mon_up.values())
            if self.config.manage_pod_budgets:
                self._manage_budgets(osd_up if self.established else dict.fromkeys(osd_up, True), clean=True)
            if self.established:
                self._record_pools(osd_up)
            return
        self._record_pools(osd_up)
        if not all(osd_up.values()):
            self.degraded_until = float("inf")
            self.disrupted = True
        elif self.degraded_until == float("inf"):
            self.degraded_until = now + self.config.recovery_seconds
            self.reactor.post(self.trigger, self.config.recovery_seconds + 0.001)
        if not all(mon_up.values()):
            self.disrupted = True
        if self.config.manage_pod_budgets:
            self._manage_budgets(osd_up, clean=now >= self.degraded_until)

    def _manage_budgets(self, osd_up: dict[int, bool], *, clean: bool) -> None:
        c = self.config
        hosts = c.osd_hosts()
        kind = self.pdb_domain_type()
        domain_of = {osd: self.location(host).get(kind, host) for osd, host in hosts.items()}
        down_domains = sorted({domain_of[osd] for osd, up in osd_up.items() if not up})
        if down_domains:
            self.draining_domain = (
                self.draining_domain if self.draining_domain in down_domains else down_domains[0]
            )
        elif clean:
            self.draining_domain = ""
        fd = self.draining_domain
        base_labels = {"rook_cluster": c.namespace}
        wanted = [
            pdb(
                c.namespace,
                "rook-ceph-mon-pdb",
                {"app": "rook-ceph-mon"},
                max_unavailable=1,
                labels=base_labels,
            ),
            pdb(
                c.namespace,
                "rook-ceph-mgr-pdb",
                {"app": "rook-ceph-mgr"},
                max_unavailable=1,
                labels=base_labels,
            ),
        ]
        if fd:
            for other in sorted(set(domain_of.values()) - {fd}):
                wanted.append(
                    pdb(
                        c.namespace,
                        f"rook-ceph-osd-{kind}-{other}",
                        {f"topology-location-{kind}": other},
                        max_unavailable=0,
                        labels=base_labels,
                    )
                )
        else:
            wanted.append(
                pdb(
                    c.namespace,
                    "rook-ceph-osd",
                    {"app": "rook-ceph-osd"},
                    max_unavailable=1,
                    labels=base_labels,
                )
            )
        sync_pdbs(self.store, c.namespace, wanted, OWNED)
        data = {"draining-failure-domain": fd, "set-no-out": fd}
        current = self.store.try_get("configmaps", "rook-ceph-pdbstatemap", c.namespace)
        if current is not None and {k: (current.get("data") or {}).get(k, "") for k in data} != data:
            stamp = {f"{fd}-noout-last-set-at": rfc3339()} if fd else {}

            def put(cm: dict[str, Any]) -> None:
                kept = {
                    k: v for k, v in (cm.get("data") or {}).items() if not k.endswith("-noout-last-set-at")
                }
                cm["data"] = {**kept, **data, **stamp}

            self.store.mutate("configmaps", "rook-ceph-pdbstatemap", put, namespace=c.namespace)

    def _record_pools(self, osd_up: dict[int, bool]) -> None:
        """``ceph.pool`` entries: each pool's worst-case replicas up, when it changes (the
        record the verdict reads for "no pool below its min_size")."""
        recorder = self.store.recorder
        for pool in self.config.pools:
            up = self.pools_up(osd_up)[pool.name]
            if self._pool_up.get(pool.name) != up:
                self._pool_up[pool.name] = up
                if recorder is not None:
                    recorder.record(
                        "ceph.pool",
                        pool=pool.name,
                        size=pool.size,
                        min_size=pool.effective_min_size,
                        up=up,
                        failure_domain=pool.failure_domain,
                    )

    # ---- the status poll --------------------------------------------------------------------

    def _fault_active(self, kind: str) -> FaultConfig | None:
        for f in self.faults:
            if f.kind == kind and (f.trigger == "start" or self.disrupted):
                return f
        return None

    def health_now(self) -> tuple[str, dict[str, dict[str, str]]]:
        """What ``ceph status`` would say right now."""
        c = self.config
        osd_up, mon_up = self._daemons()
        hosts = c.osd_hosts()
        details: dict[str, dict[str, str]] = {}
        quorum = [m for m, up in sorted(mon_up.items()) if up]
        if mon_up and len(quorum) < len(mon_up) // 2 + 1:
            return "HEALTH_ERR", {
                "error": {"severity": "Urgent", "message": "failed to get status. . timed out: exit status 1"}
            }
        down = sorted(osd for osd, up in osd_up.items() if not up)
        if down:
            details["OSD_DOWN"] = {"severity": "HEALTH_WARN", "message": f"{len(down)} osds down"}
            by_host: dict[str, list[int]] = {}
            for osd, host in hosts.items():
                by_host.setdefault(host, []).append(osd)
            dead = [h for h, ids in by_host.items() if all(not osd_up[i] for i in ids)]
            if dead:
                n = sum(len(by_host[h]) for h in dead)
                details["OSD_HOST_DOWN"] = {
                    "severity": "HEALTH_WARN",
                    "message": f"{len(dead)} host ({n} osds) down",
                }
        if time.monotonic() < self.degraded_until:
            total = max(1, len(hosts))
            share = max(1, len(down)) / total
            objects = 3000
            details["PG_DEGRADED"] = {
                "severity": "HEALTH_WARN",
                "message": f"Degraded data redundancy: {int(objects * share)}/{objects * 3} objects degraded ({100 * share / 3:.3f}%), {int(PGS * share)} pgs degraded, {int(PGS * share)} pgs undersized",
            }
        if self.draining_domain:
            details["OSD_FLAGS"] = {
                "severity": "HEALTH_WARN",
                "message": "1 OSDs or CRUSH {nodes, device-classes} have {NOOUT} flags set",
            }
        missing = [m for m, up in sorted(mon_up.items()) if not up]
        if missing:
            details["MON_DOWN"] = {
                "severity": "HEALTH_WARN",
                "message": f"{len(missing)}/{len(mon_up)} mons down, quorum {','.join(quorum)}",
            }
        if self.established:
            # the status may be published before the next reconcile: the record must never
            # lag what the cluster shows (the verdict and the tests read both)
            self._record_pools(osd_up)
        short = [p for p in c.pools if self.pools_up(osd_up)[p.name] < p.effective_min_size]
        if short:
            inactive = sum(int(PGS * 0.4) for _ in short)
            details["PG_AVAILABILITY"] = {
                "severity": "HEALTH_WARN",
                "message": f"Reduced data availability: {inactive} pgs inactive "
                f"(pools below min_size: {', '.join(p.name for p in short)})",
            }
        if self._fault_active("pg-availability"):
            details["PG_AVAILABILITY"] = {
                "severity": "HEALTH_WARN",
                "message": "Reduced data availability: 12 pgs inactive, 12 pgs peering",
            }
        stuck = self._fault_active("ceph-stuck")
        if stuck is not None:
            details = {
                code: details.get(
                    code,
                    {
                        "severity": stuck.health,
                        "message": f"{code} (simulated fault: stays until the scenario changes)",
                    },
                )
                for code in stuck.details
            }
            return stuck.health, details
        if any(d["severity"] == "HEALTH_ERR" for d in details.values()):
            return "HEALTH_ERR", details
        return ("HEALTH_WARN" if details else "HEALTH_OK"), details

    def _progressing(self, cluster: dict[str, Any]) -> None:
        status = {
            "phase": "Progressing",
            "state": "Creating",
            "message": "Configuring Ceph OSDs",
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "ClusterProgressing",
                    "message": "Configuring Ceph OSDs",
                }
            ],
        }
        if cluster.get("status") != status:
            self.store.update_status(
                "cephclusters.ceph.rook.io", self.config.name, status, namespace=self.config.namespace
            )

    def check_health(self) -> None:
        c = self.config
        self.reconcile()
        cluster = self.store.try_get("cephclusters.ceph.rook.io", c.name, c.namespace)
        if cluster is None:
            return
        if not self.established:
            self._progressing(cluster)
            return
        health, details = self.health_now()
        now = precise_now()
        old = (cluster.get("status") or {}).get("ceph") or {}
        ceph: dict[str, Any] = {
            "health": health,
            "details": details,
            "lastChecked": now,
            "fsid": self._fsid,
            "capacity": {
                "bytesTotal": 3 * 2**40,
                "bytesUsed": 2**38,
                "bytesAvailable": 3 * 2**40 - 2**38,
                "lastUpdated": now,
            },
            "versions": {
                "mon": {f"ceph version {CEPH_VERSION} squid (stable)": len(c.mons)},
                "mgr": {f"ceph version {CEPH_VERSION} squid (stable)": c.mgrs},
                "osd": {f"ceph version {CEPH_VERSION} squid (stable)": len(c.osd_hosts())},
                "overall": {
                    f"ceph version {CEPH_VERSION} squid (stable)": len(c.mons) + c.mgrs + len(c.osd_hosts())
                },
            },
        }
        if old.get("health") and old.get("health") != health:
            ceph["previousHealth"] = old["health"]
            ceph["lastChanged"] = now
        else:
            for key in ("previousHealth", "lastChanged"):
                if key in old:
                    ceph[key] = old[key]
        previous = {x.get("type"): x for x in (cluster.get("status") or {}).get("conditions") or []}
        ready = previous.get("Ready") or {"lastTransitionTime": now}
        status = {
            "phase": "Ready",
            "state": "Created",
            "message": "Cluster created successfully",
            "observedGeneration": cluster["metadata"].get("generation", 1),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "ClusterCreated",
                    "message": "Cluster created successfully",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": ready.get("lastTransitionTime", now),
                }
            ],
            "ceph": ceph,
            "version": {"image": c.image, "version": f"{CEPH_VERSION}-0"},
            "storage": {
                "osd": {"storeType": {"bluestore": len(c.osd_hosts())}},
                "deviceClasses": [{"name": "ssd"}],
            },
        }
        if health != self._last_health or sorted(details) != sorted(old.get("details") or {}):
            recorder = self.store.recorder
            if recorder is not None:
                recorder.record(
                    "ceph.health",
                    cluster=f"{c.namespace}/{c.name}",
                    health=health,
                    details=sorted(details),
                    previous=self._last_health,
                )
        self._last_health = health
        # written after the record: whoever sees the new status can already find its record
        self.store.update_status("cephclusters.ceph.rook.io", c.name, status, namespace=c.namespace)
