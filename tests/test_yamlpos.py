"""Locations in YAML errors point at the right line."""

from __future__ import annotations

import pytest

from taltasks.errors import InputError
from taltasks.yamlpos import YamlDoc

TEXT = """\
clusterName: demo
nodes:
  - hostname: cp-1
    ipAddress: 127.0.10.11
  - hostname: cp-2
    ipAddress: not-an-ip
"""


def test_where_points_at_nested_key(tmp_path):
    f = tmp_path / "talconfig.yaml"
    f.write_text(TEXT)
    doc = YamlDoc.load(f, display="talos/talconfig.yaml")
    assert doc.where(("nodes", 1, "ipAddress")) == "talos/talconfig.yaml:6"
    assert doc.where(("nodes", 0)) == "talos/talconfig.yaml:3"
    assert doc.where(("clusterName",)) == "talos/talconfig.yaml:1"
    # a key that does not exist falls back to its deepest existing parent
    assert doc.where(("nodes", 1, "missing")) == "talos/talconfig.yaml:5"
    assert doc.plain()["nodes"][1] == {"hostname": "cp-2", "ipAddress": "not-an-ip"}


def test_malformed_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(InputError) as info:
        YamlDoc.load(f, display="bad.yaml")
    assert info.value.where.startswith("bad.yaml:")
    assert "malformed YAML" in info.value.message


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        YamlDoc.load(tmp_path / "nope.yaml")


def test_a_duplicate_key_is_named_without_its_values():
    """The text may come from a SOPS-decrypted file: the key and line, never the values."""
    with pytest.raises(InputError) as info:
        YamlDoc.load("f.yaml", text="auth:\n  password: s3cr3t\n  password: other\n", display="f.yaml")
    assert info.value.where == "f.yaml:3"
    assert 'found duplicate key "password"' in info.value.message
    assert "s3cr3t" not in info.value.message and "other" not in info.value.message
