"""The PKI primitives produce what Talos produces and what OpenSSL accepts."""

from __future__ import annotations

import ssl
import subprocess

import pytest

from taltasks.machineconfig import pki


def test_talos_os_ca_is_ed25519_with_talos_key_label():
    ca = pki.create_ca(organization="talos")
    assert ca.key.startswith(b"-----BEGIN ED25519 PRIVATE KEY-----")
    cert = ca.certificate
    assert pki.key_algorithm(ca.private_key) == "ed25519"
    assert pki.organizations(cert) == ["talos"]
    assert cert.extensions.get_extension_for_class(__import__("cryptography").x509.BasicConstraints).value.ca


def test_leaf_follows_ca_algorithm_and_roles_are_organizations():
    ca = pki.create_ca(organization="kubernetes", algorithm="ecdsa-p256")
    leaf = pki.issue(ca, usage="client", organizations=["os:admin", "os:reader"])
    assert pki.key_algorithm(leaf.private_key) == "ecdsa-p256"
    assert pki.organizations(leaf.certificate) == ["os:admin", "os:reader"]
    assert pki.verify_signed_by(leaf.crt, ca.crt)
    other = pki.create_ca(organization="talos")
    assert not pki.verify_signed_by(leaf.crt, other.crt)


def test_talos_labelled_key_loads_only_after_relabel(tmp_path):
    ca = pki.create_ca(organization="talos")
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(ca.key)
    crt_file = tmp_path / "c.pem"
    crt_file.write_bytes(ca.crt)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with pytest.raises(ssl.SSLError):
        ctx.load_cert_chain(crt_file, key_file)
    key_file.write_bytes(pki.openssl_key_pem(ca.key))
    ctx.load_cert_chain(crt_file, key_file)  # accepted once relabelled


def test_openssl_cli_verifies_issued_chain(tmp_path):
    openssl = subprocess.run(["which", "openssl"], capture_output=True, text=True).stdout.strip()
    if not openssl:
        pytest.skip("openssl CLI not installed")
    ca = pki.create_ca(organization="talos")
    srv = pki.issue(ca, usage="server", common_name="cp1", ip_sans=["127.0.0.2"], dns_sans=["cp1"])
    (tmp_path / "ca.pem").write_bytes(ca.crt)
    (tmp_path / "srv.pem").write_bytes(srv.crt)
    out = subprocess.run(
        [openssl, "verify", "-CAfile", tmp_path / "ca.pem", tmp_path / "srv.pem"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


def test_garbage_key_is_a_clear_error():
    with pytest.raises(pki.PKIError, match="not a PEM private key"):
        pki.load_private_key(b"hello", what="talosconfig key")
