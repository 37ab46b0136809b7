"""Show a list of result rows as a table, aligned text, or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    as_json: bool = False,
    title: str | None = None,
    stream: IO[str] | None = None,
) -> None:
    """Print ``rows``: JSON (a list of objects) with ``as_json``, a rich table on a terminal,
    otherwise space-aligned columns with an upper-case header (like talosctl)."""
    out = stream or sys.stdout
    if as_json:
        print(json.dumps(list(rows), indent=2, default=str), file=out)
        return
    cols = list(columns or (rows[0].keys() if rows else []))
    if stream is None and out.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, header_style="bold")
        for c in cols:
            table.add_column(c.upper())
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in cols))
        Console().print(table)
        return
    grid = [[c.upper() for c in cols]] + [[_cell(row.get(c)) for c in cols] for row in rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(cols))]
    if title:
        print(title, file=out)
    for r in grid:
        print("   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip(), file=out)
