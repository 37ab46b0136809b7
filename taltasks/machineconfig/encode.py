"""Writing machine configs as YAML text, deterministically.

Output is what Talos accepts and what diffs well: block style, keys in the order the
generator built them, lists indented under their key, multi-line strings as literal blocks,
documents joined with ``---`` and no leading separator (talos-config-gen.md §2.5). The same
data always gives the same bytes — the idempotence of ``invoke configure`` rests on it.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _dumper(indent: int):
    """A pure-Python SafeDumper (the C one cannot indent lists under their key)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            return super().increase_indent(flow, False)

    def str_presenter(dumper, data: str):
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, str_presenter)
    return Dumper


def dump_document(doc: Any, *, indent: int = 2) -> str:
    import yaml

    return yaml.dump(
        doc,
        Dumper=_dumper(indent),
        sort_keys=False,
        indent=indent,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 16,
    )


def dump_documents(docs: list[Any], *, indent: int = 2) -> bytes:
    """Documents joined by ``---``; the v1alpha1 document first, as Talos writes it."""
    return "---\n".join(dump_document(d, indent=indent) for d in docs).encode()


def load_documents(data: bytes | str) -> list[Any]:
    """Parse a multi-document config back (tests, diffs); empty documents are dropped."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for d in yaml.load_all(data, Loader=loader) if d is not None]
