"""Spelling help for unknown keys: "did you mean ...?"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest candidate, or ``""`` when none is close."""
    options = list(candidates)
    lowered = {c.lower(): c for c in options}
    if str(word).lower() in lowered:
        return f" (did you mean {lowered[str(word).lower()]!r}?)"
    close = difflib.get_close_matches(str(word), options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
