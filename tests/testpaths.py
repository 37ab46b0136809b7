"""Paths the tests share (a plain module: `conftest` names are not unique across folders)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
UPSTREAM = SHARED / "reference" / "upstream"
