"""talosconfig reading, writing and merging."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from taltasks.errors import InputError
from taltasks.machineconfig import pki
from taltasks.talos.config import Context, Endpoint, TalosConfig


def _context(name="demo", endpoints=("127.0.10.11",)) -> Context:
    ca = pki.create_ca(organization="talos")
    cli = pki.issue(ca, usage="client", organizations=["os:admin"])
    return Context(
        name=name, endpoints=list(endpoints), nodes=["127.0.10.11"], ca=ca.crt, crt=cli.crt, key=cli.key
    )


def test_round_trip_keeps_talos_key_label_and_mode_0600(tmp_path):
    cfg = TalosConfig(contexts={"demo": _context()}, current="demo")
    path = cfg.save(tmp_path / "talosconfig")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = TalosConfig.load(path)
    ctx = loaded.context()
    assert ctx.endpoints == ["127.0.10.11"]
    assert ctx.key.startswith(b"-----BEGIN ED25519 PRIVATE KEY-----")
    assert pki.key_algorithm(pki.load_private_key(ctx.key)) == "ed25519"


def test_talosconfig_env_var_is_the_default_location(tmp_path, monkeypatch):
    TalosConfig(contexts={"demo": _context()}, current="demo").save(tmp_path / "tc")
    monkeypatch.setenv("TALOSCONFIG", str(tmp_path / "tc"))
    assert TalosConfig.load().current == "demo"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("context: [unclosed\n", "not valid YAML"),
        ("- a list\n", "must be a mapping"),
        ("context: x\ncontexts:\n  x:\n    ca: '%%%not-base64'\n", "not valid base64"),
    ],
)
def test_corrupt_talosconfig_names_the_file(tmp_path, text, needle):
    path = tmp_path / "talosconfig"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        TalosConfig.load(path)
    assert needle in info.value.message
    assert str(path) in str(info.value)


def test_missing_talosconfig_and_unknown_context(tmp_path):
    with pytest.raises(InputError, match="talosconfig not found"):
        TalosConfig.load(tmp_path / "nope")
    cfg = TalosConfig(contexts={"demo": _context()}, current="demo", path=tmp_path / "tc")
    with pytest.raises(InputError, match=r"context 'other' is not defined \(known contexts: demo\)"):
        cfg.context("other")


def test_merge_renames_conflicting_context():
    base = TalosConfig(contexts={"demo": _context()}, current="demo")
    other = TalosConfig(contexts={"demo": _context(endpoints=["127.0.20.11"])}, current="demo")
    added = base.merge(other)
    assert added == ["demo-1"]
    assert base.current == "demo-1"
    assert base.contexts["demo-1"].endpoints == ["127.0.20.11"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.2", ("127.0.0.2", 50000)),
        ("127.0.0.2:50001", ("127.0.0.2", 50001)),
        ("https://127.0.0.2", ("127.0.0.2", 443)),
        ("[::1]:50000", ("::1", 50000)),
    ],
)
def test_endpoint_parsing(text, expected):
    ep = Endpoint.parse(text)
    assert (ep.host, ep.port) == expected


def test_yaml_holds_base64_of_pem():
    ctx = _context()
    doc = TalosConfig(contexts={"demo": ctx}, current="demo").to_yaml()
    assert base64.b64encode(ctx.ca).decode() in doc
