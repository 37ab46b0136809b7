"""What every task shares: error mapping, common options, output choice.

Tasks are thin: parse arguments, build objects, call one library function, map errors to
exit codes. :func:`command` wraps ``invoke.task`` so a :class:`~taltasks.errors.TaltasksError`
becomes a one-line message (plus hint) and its exit code — never a traceback — and Ctrl-C
exits with 130 after the library's own ``finally`` blocks have run.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from invoke import Exit, task

from taltasks.errors import InputError, TaltasksError

if TYPE_CHECKING:
    from taltasks.events import Emitter

F = TypeVar("F", bound=Callable[..., Any])


def command(*args: Any, **kwargs: Any) -> Callable[[F], Any]:
    """``@command(help={...})`` — an invoke task whose expected errors exit cleanly."""

    def decorate(func: F) -> Any:
        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return func(*a, **kw)
            except TaltasksError as exc:
                raise Exit(f"error: {exc.render()}", code=exc.exit_code) from None
            except KeyboardInterrupt:
                raise Exit("interrupted", code=130) from None

        return task(*args, **kwargs)(wrapper)

    return decorate


def split_list(values: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Accept ``--nodes a,b``, ``--nodes a --nodes b`` (iterable options) or nothing."""
    if not values:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [v.strip() for item in items for v in item.split(",") if v.strip()]


def repo_root(explicit: str | None = None) -> Path:
    """The checkout the tasks act on: ``--root``, ``$TALTASKS_ROOT``, or the nearest
    directory upwards holding ``talos/talconfig.yaml`` (falling back to the cwd)."""
    if explicit:
        return Path(explicit).resolve()
    env = os.environ.get("TALTASKS_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "talos" / "talconfig.yaml").exists():
            return candidate
    return here


def require(condition: bool, message: str, *, hint: str | None = None) -> None:
    if not condition:
        raise InputError(message, hint=hint)


def confirm(question: str, *, yes: bool) -> None:
    """Ask before a destructive step. ``--yes`` answers for scripts; without a terminal and
    without ``--yes`` we refuse rather than guess."""
    import sys

    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(
            f"{question} — refusing without confirmation", hint="run it in a terminal or pass --yes"
        )
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise InputError("aborted: nothing was changed")


@contextmanager
def reporting(json: bool = False) -> Iterator[Emitter]:
    """The run's event emitter with this terminal's reporter (live view, plain lines, or
    JSON lines with ``--json``), closed — and the live view torn down — when the task ends."""
    from taltasks.events import Emitter
    from taltasks.ui.reporters import make_reporter

    with make_reporter(json_lines=json) as reporter:
        yield Emitter(reporter)
