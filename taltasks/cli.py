"""The ``taltasks`` command: the library's task collections as a stand-alone program.

``invoke`` needs a ``tasks.py`` (the checkout's); ``taltasks`` carries the same tasks itself,
so it works from any directory. ``--root DIR`` names the checkout the tasks act on, which
outside that checkout takes the place of what direnv's ``.envrc`` does inside it.

Start-up stays cheap: only invoke and the light task modules load before a task runs
(``tests/test_cli.py`` checks ``taltasks --list`` the way ``test_startup`` checks invoke).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

from invoke import Argument, Exit, Program

from taltasks import __version__
from taltasks.errors import InputError, TaltasksError

NAME = "taltasks"


def use_root(value: str, environ: MutableMapping[str, str] = os.environ) -> Path:
    """Point the tasks at the checkout ``value``: ``TALTASKS_ROOT`` for the tasks, and — as
    the checkout's ``.envrc`` would — ``TALOSCONFIG``/``KUBECONFIG`` at its generated files
    when they exist. An explicit ``--root`` means *that* cluster, so it overrides whatever
    the shell inherited (a task's own ``--talosconfig`` still wins over both). The working
    directory is left alone, so relative paths given to tasks mean what the user typed."""
    root = Path(value).expanduser().resolve()
    if not root.is_dir():
        raise InputError(
            f"--root {value}: no such directory",
            hint="pass the checkout that holds talos/talconfig.yaml",
        )
    environ["TALTASKS_ROOT"] = str(root)
    for var, path in (
        ("TALOSCONFIG", root / "talos" / "clusterconfig" / "talosconfig"),
        ("KUBECONFIG", root / "kubeconfig"),
    ):
        if path.is_file():
            environ[var] = str(path)
    return root


class TaltasksProgram(Program):
    """invoke's Program with the bundled task namespace and a ``--root`` core flag."""

    def core_args(self) -> list[Argument]:
        return [
            *super().core_args(),
            Argument(
                names=("root", "r"),
                help="The checkout to act on (holds talos/); default: found from the current directory.",
            ),
        ]

    def parse_core(self, argv: list[str] | None) -> None:
        super().parse_core(argv)
        root = self.args.root.value
        if root:
            try:
                use_root(root)
            except TaltasksError as exc:
                raise Exit(f"error: {exc.render()}", code=exc.exit_code) from None


def program() -> TaltasksProgram:
    from taltasks.tasks import namespace

    return TaltasksProgram(
        name=NAME, binary=NAME, binary_names=[NAME], namespace=namespace(), version=__version__
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``taltasks`` console script (and ``python -m taltasks``)."""
    try:
        program().run(argv)
    except BrokenPipeError:
        # `taltasks --list | head`: the reader left; exit as a killed-by-SIGPIPE program would,
        # without a traceback (and without Python complaining again when stdout is flushed)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(128 + 13)
