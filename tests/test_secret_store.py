"""Secrets encrypted with the real sops binary and real age keys (pyrage)."""

from __future__ import annotations

import pytest

from configure_support import snapshot
from taltasks.errors import InputError
from taltasks.machineconfig.contract import VersionContract
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.secrets import age
from taltasks.secrets.store import SECRET_FILE, SecretStore


@pytest.fixture(scope="module")
def bundle() -> SecretsBundle:
    return SecretsBundle.generate("1.12")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    key_text, public = age.generate()
    key = tmp_path / "keys" / "age.key"
    key.parent.mkdir()
    key.write_text(key_text)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(key))
    root = tmp_path / "repo"
    (root / "talos").mkdir(parents=True)
    (root / ".sops.yaml").write_text(
        f"stores:\n  yaml:\n    indent: 2\ncreation_rules:\n  - path_regex: talos/.+\\.sops\\.ya?ml$\n    age: {public}\n"
    )
    return root


def secret_values(bundle: SecretsBundle) -> list[str]:
    d = bundle.to_dict()
    return [
        d["cluster"]["id"],
        d["cluster"]["secret"],
        d["secrets"]["bootstraptoken"],
        d["secrets"]["secretboxencryptionsecret"],
        d["trustdinfo"]["token"],
        *(d["certs"][ca]["key"] for ca in ("os", "etcd", "k8s", "k8saggregator", "k8sserviceaccount")),
    ]


def test_round_trip_with_sops_and_no_plaintext_on_disk(repo, bundle):
    store = SecretStore(repo)
    store.create(VersionContract(1, 12), bundle=bundle)
    on_disk = (repo / SECRET_FILE).read_text()
    assert "sops:" in on_disk and "age1" in on_disk
    for value in secret_values(bundle):
        assert value not in on_disk
        assert value[:24] not in on_disk
    assert sorted(p.name for p in (repo / "talos").iterdir()) == [
        "talsecret.sops.yaml"
    ]  # no temp/plain file left
    assert store.load() == bundle


def test_existing_file_is_never_overwritten(repo, bundle):
    store = SecretStore(repo)
    store.create(VersionContract(1, 12), bundle=bundle)
    before = snapshot(repo)
    with pytest.raises(InputError, match="refusing to overwrite"):
        store.create(VersionContract(1, 12))
    assert snapshot(repo) == before


def test_missing_file_is_an_error_not_a_new_bundle(repo):
    with pytest.raises(InputError) as info:
        SecretStore(repo).load()
    assert info.value.where == SECRET_FILE
    assert "lock you out" in info.value.hint
    assert not (repo / SECRET_FILE).exists()


def test_wrong_key_cannot_decrypt_and_the_error_names_the_file(repo, bundle, tmp_path, monkeypatch):
    SecretStore(repo).create(VersionContract(1, 12), bundle=bundle)
    other, _ = age.generate()
    (tmp_path / "other.key").write_text(other)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "other.key"))
    with pytest.raises(InputError) as info:
        SecretStore(repo).load()
    assert info.value.where == SECRET_FILE
    assert "cannot decrypt" in info.value.message
    assert "SOPS_AGE_KEY_FILE" in info.value.hint


def test_tampered_file_is_an_error(repo, bundle):
    SecretStore(repo).create(VersionContract(1, 12), bundle=bundle)
    path = repo / SECRET_FILE
    text = path.read_text()
    start = text.index("data:") + 5
    path.write_text(text[:start] + ("A" if text[start] != "A" else "B") + text[start + 1 :])
    with pytest.raises(InputError) as info:
        SecretStore(repo).load()
    assert info.value.where == SECRET_FILE


def test_unencrypted_talsecret_is_pointed_out(repo, bundle):
    (repo / "talos" / "talsecret.yaml").write_text(bundle.to_yaml())
    with pytest.raises(InputError) as info:
        SecretStore(repo).load()
    assert info.value.where == "talos/talsecret.yaml"
    assert "sops encrypt" in info.value.hint


def test_no_matching_creation_rule_writes_nothing(repo, bundle):
    (repo / ".sops.yaml").write_text("creation_rules:\n  - path_regex: elsewhere/.*\n    age: age1qqqq\n")
    before = snapshot(repo)
    with pytest.raises(InputError) as info:
        SecretStore(repo).create(VersionContract(1, 12), bundle=bundle)
    assert info.value.where == ".sops.yaml"
    assert snapshot(repo) == before


def test_demo_key_warning_only_for_real_addresses(tmp_path):
    key_text, public = age.generate()
    (tmp_path / "talos").mkdir()
    (tmp_path / "talos" / "demo.agekey").write_text(key_text)
    (tmp_path / ".sops.yaml").write_text(f"creation_rules:\n  - age: {public}\n")
    assert age.demo_key_warning(tmp_path, ["127.0.10.11", "127.0.10.21"]) is None
    warning = age.demo_key_warning(tmp_path, ["127.0.10.11", "203.0.113.20"])
    assert warning and "THROW-AWAY" in warning and "203.0.113.20" in warning
    (tmp_path / ".sops.yaml").write_text("creation_rules:\n  - age: age1" + "q" * 58 + "\n")
    assert age.demo_key_warning(tmp_path, ["203.0.113.20"]) is None  # the user replaced the recipient
    (tmp_path / "talos" / "talsecret.sops.yaml").write_text(f"sops:\n  age:\n    - recipient: {public}\n")
    # ...but the secrets file is still encrypted for the demo key
    assert age.demo_key_warning(tmp_path, ["203.0.113.20"], ["talos/talsecret.sops.yaml"])


def test_demo_key_is_an_extra_identity_next_to_the_users_key(tmp_path, monkeypatch):
    """The demo decrypts even when the user has a key of their own configured."""
    from taltasks.secrets import sops

    demo_text, demo_public = age.generate()
    own_text, _ = age.generate()
    (tmp_path / "own.key").write_text(own_text)
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(tmp_path / "own.key"))
    (tmp_path / "talos").mkdir()
    (tmp_path / "talos" / "demo.agekey").write_text(demo_text)
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - path_regex: talos/.+\\.sops\\.yaml$\n    age: {demo_public}\n"
    )
    encrypted = sops.encrypt(
        b"a: 1\n", "talos/x.sops.yaml", root=tmp_path, env=age.sops_environment(tmp_path)
    )
    (tmp_path / "talos" / "x.sops.yaml").write_bytes(encrypted)
    assert (
        sops.decrypt(tmp_path / "talos" / "x.sops.yaml", root=tmp_path, env=age.sops_environment(tmp_path))
        == b"a: 1\n"
    )
    with pytest.raises(InputError):
        sops.decrypt(tmp_path / "talos" / "x.sops.yaml", root=tmp_path)  # without the demo identity
