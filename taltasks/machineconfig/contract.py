"""Version contracts: which shape of machine config a Talos version expects.

Talos generates configs "for" a version contract (``--talos-version``); a newer Talos keeps
accepting configs of an older contract, so a cluster keeps its original contract until the
operator moves it. Each behaviour below is switched on by a comparison with the contract,
as in talos-config-gen.md §2.4, so the generator reads like that table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import total_ordering

from taltasks.errors import InputError
from taltasks.model.versions import SUPPORTED_CONTRACTS, Version


@total_ordering
@dataclass(frozen=True)
class VersionContract:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str | Version, *, where: str | None = None) -> VersionContract:
        """``v1.12.3``, ``1.12`` or a :class:`Version` → contract 1.12 (supported ones only)."""
        try:
            version = text if isinstance(text, Version) else Version.parse(str(text))
        except ValueError as exc:
            raise InputError(str(exc), where=where) from None
        contract = cls(version.major, version.minor)
        if contract.key not in SUPPORTED_CONTRACTS:
            known = ", ".join(f"{a}.{b}" for a, b in SUPPORTED_CONTRACTS)
            raise InputError(
                f"Talos {version} is not a version contract taltasks generates (supported: {known})",
                where=where,
                hint="pin talosVersion to a 1.11, 1.12 or 1.13 release",
            )
        return contract

    @property
    def key(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, VersionContract):
            return NotImplemented
        return self.key < other.key

    def after(self, major: int, minor: int) -> bool:
        """True when this contract is *greater than* ``major.minor`` (Talos's ``Greater``)."""
        return self.key > (major, minor)

    # ---- behaviours (names follow what they switch) -------------------------------------

    @property
    def stable_hostname_feature(self) -> bool:
        return self.after(1, 1) and not self.after(1, 11)

    @property
    def legacy_rbac_and_keyusage(self) -> bool:
        """``features.rbac`` and ``apidCheckExtKeyUsage`` are written only up to 1.11."""
        return not self.after(1, 11)

    @property
    def disable_pod_security_policy(self) -> bool:
        return not self.after(1, 11)

    @property
    def endpoint_in_apiserver_sans(self) -> bool:
        return not self.after(1, 11)

    @property
    def multi_document(self) -> bool:
        """HostnameConfig / registry documents and ``grubUseUKICmdline`` (from 1.12)."""
        return self.after(1, 11)

    @property
    def machine_network_section(self) -> bool:
        """``machine.network: {}`` is emitted up to 1.12."""
        return not self.after(1, 12)

    @property
    def rsa_service_account(self) -> bool:
        return self.after(1, 6)

    @property
    def secretbox(self) -> bool:
        return self.after(1, 2)
