"""talhelper-compatible ${VAR} substitution and talenv.yaml parsing."""

from __future__ import annotations

import pytest

from taltasks.errors import InputError
from taltasks.model.envsubst import (
    Environment,
    Unset,
    parse_env_file,
    strip_comments,
    substitute,
    substitute_file,
)

ENV = {"A": "alpha", "EMPTY": "", "V": "v1.11.5"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x: ${A}", "x: alpha"),
        ("x: $A", "x: alpha"),
        ("x: $A-b", "x: alpha-b"),
        ("$$patch: delete", "$patch: delete"),
        ("a$$b", "a$b"),
        ("price: 5$", "price: 5$"),
        ("x: $ y", "x: $ y"),
        ("x: ${MISSING:-dflt}", "x: dflt"),
        ("x: ${EMPTY:-dflt}", "x: dflt"),
        ("x: ${EMPTY-dflt}", "x: "),
        ("x: ${MISSING-dflt}", "x: dflt"),
        ("x: ${A:+set}", "x: set"),
        ("x: ${MISSING:+set}", "x: "),
        ("x: ${MISSING:=d}", "x: d"),
        ("image: installer:${V}", "image: installer:v1.11.5"),
    ],
)
def test_substitution_table(text, expected):
    assert substitute(text, ENV) == expected


@pytest.mark.parametrize(
    ("text", "name", "line", "empty"),
    [("a: 1\nb: ${NOPE}\n", "NOPE", 2, False), ("\n\n$EMPTY", "EMPTY", 3, True)],
)
def test_unset_or_empty_is_an_error_with_its_line(text, name, line, empty):
    with pytest.raises(Unset) as info:
        substitute(text, ENV)
    assert (info.value.name, info.value.line, info.value.empty) == (name, line, empty)


def test_comments_are_stripped_before_substitution_and_lines_are_kept():
    text = "# uses ${UNDEFINED}\na: 1 # and ${ALSO_UNDEFINED}\nurl: 'x#y'\nb: ${A}\n"
    stripped = strip_comments(text)
    assert stripped.count("\n") == text.count("\n")
    assert substitute(stripped, ENV).splitlines() == ["", "a: 1", "url: 'x#y'", "b: alpha"]


def test_substitute_file_error_names_file_line_and_fix():
    with pytest.raises(InputError) as info:
        substitute_file("a: 1\n\nb: ${TALOS_VERSION}\n", {}, "talos/talconfig.yaml")
    assert info.value.where == "talos/talconfig.yaml:3"
    assert "${TALOS_VERSION} not set" in info.value.message
    assert "$$" in info.value.hint


def test_env_file_parsing():
    text = (
        "# renovate: datasource=docker depName=ghcr.io/siderolabs/installer\n"
        "talosVersion: v1.11.5\n---\nexport K8S=v1.34.3\nQUOTED: \"a b\" # comment\nSINGLE: 'x#y'\nBARE: z # trailing\n"
    )
    assert parse_env_file(text, "talenv.yaml") == {
        "talosVersion": "v1.11.5",
        "K8S": "v1.34.3",
        "QUOTED": "a b",
        "SINGLE": "x#y",
        "BARE": "z",
    }


def test_env_file_bad_line_is_located():
    with pytest.raises(InputError) as info:
        parse_env_file("A: 1\nnested:\n  - no\n", "talos/talenv.yaml")
    assert info.value.where == "talos/talenv.yaml:3"
    assert "'- no'" in info.value.message  # a plain file's line is quoted (an encrypted one's is not)


def test_talenv_wins_over_process_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("talosVersion", "v9.9.9")
    monkeypatch.setenv("ONLY_ENV", "from-env")
    (tmp_path / "talenv.yaml").write_text("talosVersion: v1.11.5\n")
    env = Environment.load(tmp_path)
    assert env.values["talosVersion"] == "v1.11.5"
    assert env.values["ONLY_ENV"] == "from-env"
    assert env.sources["talosVersion"] == "talos/talenv.yaml"


def test_encrypted_talenv_is_decrypted_with_sops(tmp_path, monkeypatch):
    from configure_support import copy_demo
    from taltasks.model import load_cluster
    from taltasks.secrets import age, sops

    demo = copy_demo(tmp_path / "repo")
    plain = (demo / "talos" / "talenv.yaml").read_text()
    (demo / "talos" / "talenv.yaml").unlink()
    encrypted = sops.encrypt(
        plain.encode(), "talos/talenv.sops.yaml", root=demo, env=age.sops_environment(demo)
    )
    (demo / "talos" / "talenv.sops.yaml").write_bytes(encrypted)
    assert b"v1.11.5" not in encrypted
    assert load_cluster(demo).talos_version == "v1.11.5"
