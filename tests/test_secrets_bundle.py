"""The secrets bundle: Talos's algorithms, subjects and validities; the talsecret format."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from taltasks.errors import InputError
from taltasks.machineconfig import pki
from taltasks.machineconfig.secrets import TOKEN, SecretsBundle, generate_token


@pytest.fixture(scope="module")
def bundle() -> SecretsBundle:
    return SecretsBundle.generate("1.11")


def test_generated_bundle_matches_talos(bundle):
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    os_ca = bundle.os.certificate
    assert isinstance(bundle.os.private_key, ed25519.Ed25519PrivateKey)
    assert b"ED25519 PRIVATE KEY" in bundle.os.key
    assert pki.organizations(os_ca) == ["talos"]
    for pair, org in ((bundle.etcd, ["etcd"]), (bundle.k8s, ["kubernetes"]), (bundle.k8s_aggregator, [])):
        assert isinstance(pair.private_key, ec.EllipticCurvePrivateKey)
        assert b"EC PRIVATE KEY" in pair.key
        assert pki.organizations(pair.certificate) == org
    assert bundle.k8s_aggregator.certificate.subject.rfc4514_string() == ""  # empty subject
    sa = pki.load_private_key(bundle.service_account_key)
    assert isinstance(sa, rsa.RSAPrivateKey) and sa.key_size == 4096
    assert b"RSA PRIVATE KEY" in bundle.service_account_key
    starts = {
        p.certificate.not_valid_before_utc
        for p in (bundle.os, bundle.etcd, bundle.k8s, bundle.k8s_aggregator)
    }
    assert len(starts) == 1  # one clock for the whole bundle
    assert os_ca.not_valid_after_utc - os_ca.not_valid_before_utc == dt.timedelta(hours=87600)
    assert TOKEN.match(bundle.bootstrap_token) and TOKEN.match(bundle.trustd_token)
    assert len(base64.b64decode(bundle.secretbox_secret)) == 32 and bundle.aescbc_secret is None
    assert len(base64.urlsafe_b64decode(bundle.cluster_id)) == 32
    assert len(base64.b64decode(bundle.cluster_secret)) == 32


def test_tokens_use_the_kubeadm_alphabet():
    tokens = {generate_token() for _ in range(200)}
    assert len(tokens) == 200 and all(TOKEN.match(t) for t in tokens)


def test_talsecret_round_trip(bundle):
    text = bundle.to_yaml()
    assert text.splitlines()[0] == "cluster:"
    assert [ln for ln in text.splitlines() if not ln.startswith(" ")] == [
        "cluster:",
        "secrets:",
        "trustdinfo:",
        "certs:",
    ]
    again = SecretsBundle.from_yaml(text, where="talsecret.yaml")
    assert again == bundle


def test_reads_the_upstream_stability_secrets(upstream_data):
    bundle = SecretsBundle.from_yaml((upstream_data / "talos-stability" / "secrets.yaml").read_text())
    assert bundle.bootstrap_token == "inn7ol.u4ehnti8qyls9ymo"
    assert bundle.k8s_aggregator.certificate.subject.rfc4514_string() == ""


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["cluster"].update(extra="x"), "unknown key cluster.extra"),
        (lambda d: d["secrets"].pop("bootstraptoken"), "lacks secrets.bootstraptoken"),
        (lambda d: d["secrets"].update(aescbcencryptionsecret="x"), "exactly one of"),
        (lambda d: d["trustdinfo"].update(token="not-a-token"), "trustdinfo.token"),
        (lambda d: d["certs"]["os"].update(crt="!!!"), "certs.os.crt is not valid base64"),
        (lambda d: d["certs"]["etcd"].update(key=base64.b64encode(b"garbage").decode()), "certs.etcd.key"),
    ],
)
def test_malformed_bundles_are_refused_with_the_field(bundle, mutate, fragment):
    data = bundle.to_dict()
    mutate(data)
    with pytest.raises(InputError) as info:
        SecretsBundle.from_dict(data, where="talos/talsecret.sops.yaml")
    assert fragment in info.value.message
    assert info.value.where == "talos/talsecret.sops.yaml"


def test_repr_shows_no_secret_value(bundle):
    """Plans holding a bundle end up in assertion messages and logs: no key, token or secret."""
    from taltasks.workflows.configure import FileChange

    shown = repr(bundle) + repr(bundle.os) + repr(FileChange("c.yaml", bundle.os.key, None))
    secrets = [bundle.cluster_secret, bundle.bootstrap_token, bundle.trustd_token, bundle.secretbox_secret]
    secrets += [bundle.os.key, bundle.etcd.key, bundle.service_account_key]
    for value in filter(None, secrets):
        text = value.decode() if isinstance(value, bytes) else value
        assert text not in shown and repr(value) not in shown
    assert bundle.cluster_id in shown
