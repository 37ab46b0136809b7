"""Invoke entry point of this checkout: `invoke --list` shows every task.

The tasks live in the taltasks library; this file only exposes them. Run from anywhere in
the checkout, or use the `taltasks` command with `--root` outside one.
"""

from taltasks.tasks import namespace

ns = namespace()
