"""The secrets bundle: every key and token a cluster's machine configs share.

Generated natively with Talos's algorithms (talos-config-gen.md §1): an Ed25519 OS CA,
ECDSA P-256 etcd, Kubernetes and aggregator CAs (the aggregator CA with an empty subject),
an RSA-4096 service-account key, kubeadm-style tokens, a secretbox key and the cluster
id/secret. The YAML form is the ``talosctl gen secrets`` / talhelper ``talsecret`` format:
lower-cased keys, ``crt``/``key`` as base64 of the whole PEM. Reading is strict (unknown
keys are errors, like talhelper's decoder) and every problem names the file and field.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from typing import Any

from taltasks.errors import InputError
from taltasks.machineconfig import pki
from taltasks.machineconfig.contract import VersionContract

TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

_SHAPE: dict[str, Any] = {
    "cluster": {"id": str, "secret": str},
    "secrets": {"bootstraptoken": str, "secretboxencryptionsecret": str, "aescbcencryptionsecret": str},
    "trustdinfo": {"token": str},
    "certs": {
        "etcd": {"crt": str, "key": str},
        "k8s": {"crt": str, "key": str},
        "k8saggregator": {"crt": str, "key": str},
        "k8sserviceaccount": {"key": str},
        "os": {"crt": str, "key": str},
    },
}
_CAS = ("etcd", "k8s", "k8saggregator", "os")


def _token_part(length: int) -> str:
    """Characters of [0-9a-z] by rejection sampling: bytes >= 252 are dropped so every
    character is equally likely (252 = 7 * 36)."""
    out: list[str] = []
    while len(out) < length:
        for b in os.urandom(length * 2):
            if b < 252 and len(out) < length:
                out.append(_ALPHABET[b % 36])
    return "".join(out)


def generate_token() -> str:
    """A kubeadm bootstrap-token shaped value: ``abcdef.0123456789abcdef``."""
    return f"{_token_part(6)}.{_token_part(16)}"


@dataclass(frozen=True)
class SecretsBundle:
    """All cluster secrets. PEM values are bytes; tokens and keys are strings.

    Only the cluster id shows in ``repr``: plans and results that hold a bundle end up in
    assertion messages and debug logs, where secret values must never appear."""

    cluster_id: str
    cluster_secret: str = field(repr=False)
    bootstrap_token: str = field(repr=False)
    trustd_token: str = field(repr=False)
    os: pki.KeyPair = field(repr=False)
    etcd: pki.KeyPair = field(repr=False)
    k8s: pki.KeyPair = field(repr=False)
    k8s_aggregator: pki.KeyPair = field(repr=False)
    service_account_key: bytes = field(repr=False)
    secretbox_secret: str | None = field(default=None, repr=False)
    aescbc_secret: str | None = field(default=None, repr=False)

    # ---- creating ---------------------------------------------------------------------

    @classmethod
    def generate(cls, version_contract: VersionContract | str = "1.13") -> SecretsBundle:
        """A fresh bundle. All CAs share one NotBefore; this takes about a second because
        of the RSA-4096 service-account key."""
        contract = (
            version_contract
            if isinstance(version_contract, VersionContract)
            else VersionContract.parse(version_contract)
        )
        start = pki.now()
        sa_key = pki.generate_key("rsa-4096" if contract.rsa_service_account else "ecdsa-p256")
        encryption = base64.b64encode(os.urandom(32)).decode()
        return cls(
            cluster_id=base64.urlsafe_b64encode(os.urandom(32)).decode(),
            cluster_secret=base64.b64encode(os.urandom(32)).decode(),
            bootstrap_token=generate_token(),
            trustd_token=generate_token(),
            os=pki.create_ca(organization="talos", algorithm="ed25519", not_before=start),
            etcd=pki.create_ca(organization="etcd", algorithm="ecdsa-p256", not_before=start),
            k8s=pki.create_ca(organization="kubernetes", algorithm="ecdsa-p256", not_before=start),
            k8s_aggregator=pki.create_ca(organization=None, algorithm="ecdsa-p256", not_before=start),
            service_account_key=pki.private_key_pem(sa_key),
            secretbox_secret=encryption if contract.secretbox else None,
            aescbc_secret=None if contract.secretbox else encryption,
        )

    # ---- the talsecret format -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        def b64(pem: bytes) -> str:
            return base64.b64encode(pem).decode()

        secrets: dict[str, str] = {"bootstraptoken": self.bootstrap_token}
        if self.aescbc_secret:
            secrets["aescbcencryptionsecret"] = self.aescbc_secret
        if self.secretbox_secret:
            secrets["secretboxencryptionsecret"] = self.secretbox_secret
        return {
            "cluster": {"id": self.cluster_id, "secret": self.cluster_secret},
            "secrets": secrets,
            "trustdinfo": {"token": self.trustd_token},
            "certs": {
                "etcd": {"crt": b64(self.etcd.crt), "key": b64(self.etcd.key)},
                "k8s": {"crt": b64(self.k8s.crt), "key": b64(self.k8s.key)},
                "k8saggregator": {"crt": b64(self.k8s_aggregator.crt), "key": b64(self.k8s_aggregator.key)},
                "k8sserviceaccount": {"key": b64(self.service_account_key)},
                "os": {"crt": b64(self.os.crt), "key": b64(self.os.key)},
            },
        }

    def to_yaml(self, indent: int = 2) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, indent=indent, width=1 << 16)

    @classmethod
    def from_yaml(cls, text: str, *, where: str = "talsecret") -> SecretsBundle:
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f"{where}:{mark.line + 1}" if mark else where
            raise InputError(
                f"secrets file is not valid YAML ({getattr(exc, 'problem', exc)})", where=at
            ) from None
        return cls.from_dict(raw, where=where)

    @classmethod
    def from_dict(cls, raw: Any, *, where: str = "talsecret") -> SecretsBundle:
        problems: list[str] = []
        _check_shape(raw, _SHAPE, (), problems)
        if problems:
            raise InputError(
                "secrets bundle is malformed: " + "; ".join(problems),
                where=where,
                hint="the file must be in `talosctl gen secrets` / talhelper talsecret format",
            )

        def get(*path: str) -> str:
            node: Any = raw
            for p in path:
                node = (node or {}).get(p)
            return str(node) if node not in (None, "") else ""

        def pem(*path: str) -> bytes:
            value = get(*path)
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise InputError(f"{'.'.join(path)} is not valid base64", where=where) from None

        missing = [
            ".".join(p)
            for p in (
                ("cluster", "id"),
                ("cluster", "secret"),
                ("secrets", "bootstraptoken"),
                ("trustdinfo", "token"),
                *(("certs", ca, "crt") for ca in _CAS),
                *(("certs", ca, "key") for ca in _CAS),
                ("certs", "k8sserviceaccount", "key"),
            )
            if not get(*p)
        ]
        if missing:
            raise InputError(f"secrets bundle lacks {', '.join(missing)}", where=where)
        box, aes = get("secrets", "secretboxencryptionsecret"), get("secrets", "aescbcencryptionsecret")
        if bool(box) == bool(aes):
            raise InputError(
                "secrets bundle needs exactly one of secretboxencryptionsecret / aescbcencryptionsecret",
                where=where,
            )
        if not TOKEN.match(get("secrets", "bootstraptoken")):
            raise InputError(
                "secrets.bootstraptoken is not a token like abcdef.0123456789abcdef", where=where
            )
        if not TOKEN.match(get("trustdinfo", "token")):
            raise InputError("trustdinfo.token is not a token like abcdef.0123456789abcdef", where=where)
        pairs = {ca: pki.KeyPair(pem("certs", ca, "crt"), pem("certs", ca, "key")) for ca in _CAS}
        bundle = cls(
            cluster_id=get("cluster", "id"),
            cluster_secret=get("cluster", "secret"),
            bootstrap_token=get("secrets", "bootstraptoken"),
            trustd_token=get("trustdinfo", "token"),
            os=pairs["os"],
            etcd=pairs["etcd"],
            k8s=pairs["k8s"],
            k8s_aggregator=pairs["k8saggregator"],
            service_account_key=pem("certs", "k8sserviceaccount", "key"),
            secretbox_secret=box or None,
            aescbc_secret=aes or None,
        )
        bundle.check_keys(where=where)
        return bundle

    def check_keys(self, *, where: str = "talsecret") -> None:
        """Every CA certificate and key parses (Talos's ``Bundle.Validate``)."""
        try:
            for name, pair in (
                ("os", self.os),
                ("etcd", self.etcd),
                ("k8s", self.k8s),
                ("k8saggregator", self.k8s_aggregator),
            ):
                pki.load_certificate(pair.crt, what=f"certs.{name}.crt")
                pki.load_private_key(pair.key, what=f"certs.{name}.key")
            _check_service_account_key(self.service_account_key)
        except pki.PKIError as exc:
            raise InputError(str(exc), where=where) from None


def _check_service_account_key(pem: bytes) -> None:
    """Parse the service-account key without RSA's consistency proof: a parse is what Talos
    checks, and the proof costs ~250 ms for a 4096-bit key on every configure run."""
    from cryptography.hazmat.primitives import serialization

    try:
        serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError) as exc:
        raise pki.PKIError(f"certs.k8sserviceaccount.key cannot be parsed: {exc}") from None


def _check_shape(value: Any, shape: Any, path: tuple[str, ...], problems: list[str]) -> None:
    if isinstance(shape, dict):
        if value is None:
            return
        if not isinstance(value, dict):
            problems.append(f"{'.'.join(path) or 'the document'} must be a mapping")
            return
        for key, sub in value.items():
            if key not in shape:
                from taltasks.model.suggest import did_you_mean

                problems.append(f"unknown key {'.'.join((*path, str(key)))}{did_you_mean(str(key), shape)}")
            else:
                _check_shape(sub, shape[key], (*path, key), problems)
    elif value is not None and not isinstance(value, str | int):
        problems.append(f"{'.'.join(path)} must be a string")
