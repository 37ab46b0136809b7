"""Splicing a change into YAML text: only the changed entry's lines move."""

from __future__ import annotations

import pytest
import yaml

from taltasks.yamlsplice import DELETE, CannotSplice, Style, detect_style, set_key, splice

TEXT = """\
# comment at the top
a: 1   # trailing comment
b:
  list:
  - x
  - y
  note: |
    two
    lines
  after: z
c: {flow: true}
"""


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("a",), 2, TEXT.replace("a: 1   # trailing comment", "a: 2")),
        (("b", "list"), ["q"], TEXT.replace("  - x\n  - y\n", "  - q\n")),
        (("b", "note"), "one", TEXT.replace("  note: |\n    two\n    lines\n", "  note: one\n")),
        (("b", "list"), DELETE, TEXT.replace("  list:\n  - x\n  - y\n", "")),
        (("b", "new"), {"k": [1]}, TEXT.replace("  after: z\n", "  after: z\n  new:\n    k:\n    - 1\n")),
        (("d",), "e", TEXT + "d: e\n"),
    ],
)
def test_only_the_changed_entry_moves(path, value, expected):
    assert set_key(TEXT, path, value) == expected


def test_style_follows_the_file():
    talosctl = "contexts:\n    a:\n        endpoints:\n            - 192.0.2.1\n"
    assert detect_style(talosctl) == Style(step=4, dash=4)
    assert detect_style(TEXT) == Style(step=2, dash=0)
    out = set_key(talosctl, ("contexts", "a", "nodes"), ["192.0.2.2"])
    assert out == talosctl + "        nodes:\n            - 192.0.2.2\n"


def test_flow_style_and_wrong_results_are_refused():
    with pytest.raises(CannotSplice):
        set_key(TEXT, ("c", "flow"), False)
    with pytest.raises(CannotSplice, match="expected data"):
        splice(TEXT, [(("a",), 2)], expected={"a": 3})
    good = splice(TEXT, [(("a",), 2)], expected={**yaml.safe_load(TEXT), "a": 2})
    assert good.startswith("# comment at the top\na: 2\n")
