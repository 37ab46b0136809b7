"""X.509 building blocks shared by the secrets bundle, talosconfig and the simulator.

Talos's own PKI has a few habits that matter on the wire, and they live here once:

* the OS CA (and so every apid certificate and admin client certificate) is Ed25519; etcd,
  Kubernetes and aggregator CAs are ECDSA P-256; leaf keys follow the CA's algorithm;
* Ed25519 keys are written as PKCS#8 under the non-standard PEM label
  ``ED25519 PRIVATE KEY``, which OpenSSL and ``cryptography`` refuse until relabelled;
* CAs carry 20 random bytes as SubjectKeyIdentifier, a random 128-bit serial, KeyUsage
  CertSign|DigitalSignature and EKU serverAuth+clientAuth;
* client certificates carry one Organization value per role and EKU exactly clientAuth.

``cryptography`` is imported inside the functions so that importing this module is free.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import (
        CertificateIssuerPrivateKeyTypes,
        PrivateKeyTypes,
    )

KeyAlgorithm = Literal["ed25519", "ecdsa-p256", "rsa-4096"]
Usage = Literal["server", "client", "server+client"]

TEN_YEARS = dt.timedelta(hours=87600)
ONE_YEAR = dt.timedelta(hours=8760)
ONE_DAY = dt.timedelta(hours=24)

# Talos writes Ed25519 keys with this label; the DER inside is ordinary PKCS#8.
TALOS_ED25519_KEY_LABEL = "ED25519 PRIVATE KEY"
_PEM_KEY_LABEL = re.compile(rb"-----(BEGIN|END) ([A-Z0-9 ]*?)PRIVATE KEY-----")


class PKIError(ValueError):
    """A certificate or key that cannot be used, with a message that says which and why."""


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def generate_key(algorithm: KeyAlgorithm) -> PrivateKeyTypes:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "rsa-4096":
        return rsa.generate_private_key(public_exponent=65537, key_size=4096)
    raise PKIError(f"unknown key algorithm {algorithm!r}")


def key_algorithm(key: PrivateKeyTypes) -> KeyAlgorithm:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ecdsa-p256"
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa-4096"
    raise PKIError(f"unsupported key type {type(key).__name__}")


def _signature_hash(key: PrivateKeyTypes):
    from cryptography.hazmat.primitives import hashes

    # Ed25519 signs the message itself: cryptography wants no hash for it.
    return None if key_algorithm(key) == "ed25519" else hashes.SHA256()


# ---- PEM encoding -------------------------------------------------------------------------


def private_key_pem(key: PrivateKeyTypes, *, talos_labels: bool = True) -> bytes:
    """PEM of a private key. With ``talos_labels`` the labels are the ones Talos writes:
    ``ED25519 PRIVATE KEY`` (PKCS#8 body), ``EC PRIVATE KEY`` (SEC1), ``RSA PRIVATE KEY`` (PKCS#1)."""
    from cryptography.hazmat.primitives import serialization as s

    alg = key_algorithm(key)
    if not talos_labels or alg == "ed25519":
        pem = key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption())
        if talos_labels:
            pem = pem.replace(b"PRIVATE KEY-----", f"{TALOS_ED25519_KEY_LABEL}-----".encode())
        return pem
    return key.private_bytes(s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption())


def openssl_key_pem(pem: bytes) -> bytes:
    """Relabel a Talos ``ED25519 PRIVATE KEY`` block to ``PRIVATE KEY`` so OpenSSL (Python's
    ``ssl``), ``cryptography`` and grpcio accept it. Other labels pass through untouched."""
    return pem.replace(
        f"-----BEGIN {TALOS_ED25519_KEY_LABEL}-----".encode(), b"-----BEGIN PRIVATE KEY-----"
    ).replace(f"-----END {TALOS_ED25519_KEY_LABEL}-----".encode(), b"-----END PRIVATE KEY-----")


def load_private_key(pem: bytes, *, what: str = "private key") -> PrivateKeyTypes:
    from cryptography.hazmat.primitives import serialization

    if not _PEM_KEY_LABEL.search(pem):
        raise PKIError(f"{what} is not a PEM private key (no BEGIN ... PRIVATE KEY line)")
    try:
        return serialization.load_pem_private_key(openssl_key_pem(pem), password=None)
    except (ValueError, TypeError) as exc:
        raise PKIError(f"{what} cannot be parsed: {exc}") from None


def certificate_pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def load_certificate(pem: bytes, *, what: str = "certificate") -> x509.Certificate:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise PKIError(f"{what} cannot be parsed: {exc}") from None


def load_certificates(pem: bytes, *, what: str = "certificate bundle") -> list[x509.Certificate]:
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise PKIError(f"{what} cannot be parsed: {exc}") from None
    return certs


def organizations(cert: x509.Certificate) -> list[str]:
    """Every Organization value of the subject: Talos encodes one role per value."""
    from cryptography.x509.oid import NameOID

    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


# ---- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    """A certificate with its private key, both as PEM (Talos labels on the key)."""

    crt: bytes
    key: bytes = field(repr=False)  # a failing assertion or a log line must not print a private key

    @property
    def certificate(self) -> x509.Certificate:
        return load_certificate(self.crt)

    @property
    def private_key(self) -> PrivateKeyTypes:
        return load_private_key(self.key)

    @property
    def openssl_key(self) -> bytes:
        return openssl_key_pem(self.key)


def _name(common_name: str | None, orgs: Sequence[str]):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    if common_name:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _serial() -> int:
    return int.from_bytes(os.urandom(16), "big")


def create_ca(
    *,
    organization: str | None,
    algorithm: KeyAlgorithm = "ed25519",
    validity: dt.timedelta = TEN_YEARS,
    not_before: dt.datetime | None = None,
    common_name: str | None = None,
) -> KeyPair:
    """A self-signed CA shaped like the ones Talos generates (see module docstring)."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = generate_key(algorithm)
    start = not_before or now()
    subject = _name(common_name, [organization] if organization else [])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier(os.urandom(20)), critical=False)
        .sign(key, _signature_hash(key))
    )
    return KeyPair(certificate_pem(cert), private_key_pem(key))


def issue(
    ca: KeyPair,
    *,
    usage: Usage,
    organizations: Sequence[str] = (),
    common_name: str | None = None,
    ip_sans: Iterable[str] = (),
    dns_sans: Iterable[str] = (),
    validity: dt.timedelta = ONE_YEAR,
    not_before: dt.datetime | None = None,
    key: PrivateKeyTypes | None = None,
) -> KeyPair:
    """A leaf certificate signed by ``ca``. The leaf key algorithm follows the CA's, as
    Talos's ``NewKeyPair`` does, unless a key is given."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_key: CertificateIssuerPrivateKeyTypes = ca.private_key  # type: ignore[assignment]
    ca_cert = ca.certificate
    leaf_key = key or generate_key(key_algorithm(ca_key))
    start = not_before or now()
    ekus = {
        "server": [ExtendedKeyUsageOID.SERVER_AUTH],
        "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
        "server+client": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    }[usage]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(leaf_key.public_key())
        .serial_number(_serial())
        .not_valid_before(start)
        .not_valid_after(start + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=key_algorithm(leaf_key) == "rsa-4096",
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    )
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_sans]
    sans += [x509.DNSName(name) for name in dns_sans]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, _signature_hash(ca_key))
    return KeyPair(certificate_pem(cert), private_key_pem(leaf_key))


def verify_signed_by(cert_pem: bytes, ca_pem: bytes) -> bool:
    """True when ``cert_pem`` carries a valid signature of (one of) the CA(s) in ``ca_pem``."""
    from cryptography.exceptions import InvalidSignature

    cert = load_certificate(cert_pem)
    for ca in load_certificates(ca_pem):
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False
