"""The etcd cluster that simulated control planes share.

Membership follows Talos: ``Bootstrap`` on one control plane creates the cluster with that
member; other configured control planes join as they boot; ``EtcdRemoveMemberByID`` and
``EtcdLeaveCluster`` remove a member. A member is healthy while its node is up and no
fault says otherwise; leadership moves off a member that goes down. The "database" is a
deterministic byte string of a configurable size, so a snapshot can be checked byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
from dataclasses import dataclass, field


class JoinConflict(Exception):
    """A different machine already holds this member's name and peer URL."""


@dataclass
class Member:
    id: int
    hostname: str
    ip: str
    machine: str = ""  # which physical machine joined as this member
    is_learner: bool = False
    up: bool = True
    fault_unhealthy: bool = False

    @property
    def healthy(self) -> bool:
        return self.up and not self.fault_unhealthy

    @property
    def peer_url(self) -> str:
        return f"https://{self.ip}:2380"

    @property
    def client_url(self) -> str:
        return f"https://{self.ip}:2379"


@dataclass
class EtcdCluster:
    db_size: int = 4 * 1024 * 1024
    version: str = "3.6.5"
    members: dict[int, Member] = field(default_factory=dict)
    leader: int | None = None
    raft_term: int = 1
    raft_index: int = 1
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _db: bytes | None = field(default=None, repr=False)

    @property
    def bootstrapped(self) -> bool:
        return bool(self.members)

    def _new_id(self) -> int:
        while True:
            mid = int.from_bytes(os.urandom(8), "big") or 1
            if mid not in self.members:
                return mid

    def bootstrap(self, hostname: str, ip: str, machine: str = "") -> Member:
        with self._lock:
            member = Member(self._new_id(), hostname, ip, machine)
            self.members = {member.id: member}
            self.leader = member.id
            self.raft_term += 1
            return member

    def join(self, hostname: str, ip: str, machine: str = "") -> Member:
        """Add (or return the existing) member for a booting control plane. A *different*
        machine cannot take over an existing member: etcd refuses a second member with the
        same peer URL, so a replaced node's old member must be removed first."""
        with self._lock:
            existing = self.by_hostname(hostname)
            if existing is not None:
                if machine and existing.machine and existing.machine != machine:
                    raise JoinConflict(
                        f"etcd member {existing.id:016x} ({hostname}, {existing.peer_url}) belongs to another machine; remove it first"
                    )
                existing.ip, existing.up = ip, True
                return existing
            member = Member(self._new_id(), hostname, ip, machine)
            self.members[member.id] = member
            self.raft_index += 1
            if self.leader is None:
                self.leader = member.id
            return member

    def remove(self, member_id: int) -> Member | None:
        with self._lock:
            member = self.members.pop(member_id, None)
            if member is not None and self.leader == member_id:
                self._elect()
            self.raft_index += 1
            return member

    def by_hostname(self, hostname: str) -> Member | None:
        with self._lock:
            return next((m for m in self.members.values() if m.hostname == hostname), None)

    def set_up(self, hostname: str, up: bool) -> None:
        with self._lock:
            member = self.by_hostname(hostname)
            if member is None:
                return
            member.up = up
            if (not up and self.leader == member.id) or (up and self.leader is None):
                self._elect()

    def _elect(self) -> None:
        candidates = sorted(m.id for m in self.members.values() if m.healthy and not m.is_learner)
        if self.quorum_ok() and candidates:
            self.leader = random.choice(candidates)
            self.raft_term += 1
        else:
            self.leader = None

    def forfeit(self, hostname: str) -> str | None:
        """Move leadership away from ``hostname`` if it leads; the new leader's hostname."""
        with self._lock:
            member = self.by_hostname(hostname)
            if member is None or self.leader != member.id:
                return None
            others = sorted(m.id for m in self.members.values() if m.healthy and m.id != member.id)
            if not others:
                return None
            self.leader = others[0]
            self.raft_term += 1
            return self.members[self.leader].hostname

    def quorum_ok(self, without: str | None = None) -> bool:
        """Would a majority of voting members be healthy (optionally with ``without`` down)?"""
        with self._lock:
            voters = [m for m in self.members.values() if not m.is_learner]
            healthy = [m for m in voters if m.healthy and m.hostname != without]
            return len(healthy) > len(voters) // 2

    def all_healthy(self) -> bool:
        with self._lock:
            return bool(self.members) and all(m.healthy for m in self.members.values())

    def snapshot(self) -> bytes:
        """The database as a snapshot returns it: deterministic for a given size."""
        with self._lock:
            if self._db is None or len(self._db) != self.db_size:
                rng = random.Random(self.db_size)
                piece = 1 << 20  # randbytes(n) draws 8n bits at once: keep n small
                self._db = b"".join(
                    rng.randbytes(min(piece, self.db_size - i)) for i in range(0, self.db_size, piece)
                )
            return self._db

    def snapshot_sha256(self) -> str:
        return hashlib.sha256(self.snapshot()).hexdigest()
