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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from invoke import Exit, Task, task

from taltasks.errors import InputError, TaltasksError

if TYPE_CHECKING:
    from taltasks.events import Emitter

F = TypeVar("F", bound=Callable[..., Any])


class _ShownAsInt(type):
    """invoke's ``--help`` names a value only for options whose kind *equals* ``str`` or
    ``int`` (a dict lookup); the checking kinds below compare equal to ``int`` so an option
    still reads ``--workers=INT``. invoke's own tests of a kind are by identity (``is bool``,
    ``is list``), which this does not touch."""

    def __eq__(cls, other: object) -> bool:
        return other is int or type.__eq__(cls, other)

    def __hash__(cls) -> int:
        return hash(int)


@dataclass(frozen=True)
class Whole:
    """A whole-number option, checked while the command line is parsed: a value that is
    not a number, or outside ``minimum``..``maximum``, stops the command with a message
    naming the option (invoke's own ``int`` kind would end in a traceback)."""

    minimum: int | None = None
    maximum: int | None = None

    def describe(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"a whole number from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"a whole number ≥ {self.minimum}"
        if self.maximum is not None:
            return f"a whole number ≤ {self.maximum}"
        return "a whole number"

    def kind(self, flag: str) -> type:
        spec = self

        def new(cls: type, value: Any = 0) -> int:
            from invoke import ParseError

            try:
                number = int(str(value).strip(), 10) if not isinstance(value, int) else value
            except ValueError:
                raise ParseError(f"{flag} {value!r}: expected {spec.describe()}") from None
            if (spec.minimum is not None and number < spec.minimum) or (
                spec.maximum is not None and number > spec.maximum
            ):
                raise ParseError(f"{flag} {number}: expected {spec.describe()}")
            return int(number)

        return _ShownAsInt("WholeNumber", (), {"__new__": new, "__doc__": spec.describe()})


TIMEOUT = Whole(minimum=1)  # seconds a wait may take: 0 would give up before starting


class TypedTask(Task):
    """An invoke task whose number options are checked as they are parsed: those declared
    in ``numbers`` (``{"workers": Whole(minimum=0)}``, also when their default is None) and
    every option whose default is an int (any whole number)."""

    def __init__(self, *args: Any, numbers: dict[str, Whole] | None = None, **kwargs: Any) -> None:
        self.numbers = dict(numbers or {})
        super().__init__(*args, **kwargs)

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        if opts.get("kind") is list:
            # invoke's --help names a value only for str and int, so a list option reads as
            # a bare flag: its help says that it takes values and in which forms
            flag = "--" + name.replace("_", "-")
            usage = f"[value: a,b or {flag} a {flag} b]"
            opts["help"] = f"{opts['help']} {usage}" if opts.get("help") else usage
        spec = self.numbers.get(name)
        if spec is None and opts.get("kind") is int:
            spec = Whole()
        if spec is not None:
            opts["kind"] = spec.kind("--" + name.replace("_", "-"))
        return opts


def command(*args: Any, **kwargs: Any) -> Callable[[F], Any]:
    """``@command(help={...}, numbers={...})`` — an invoke task whose expected errors exit
    cleanly and whose number options are checked (:class:`TypedTask`)."""

    def decorate(func: F) -> Any:
        @functools.wraps(func)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return func(*a, **kw)
            except TaltasksError as exc:
                raise Exit(f"error: {exc.render()}", code=exc.exit_code) from None
            except KeyboardInterrupt:
                raise Exit("interrupted", code=130) from None

        return task(*args, klass=TypedTask, **kwargs)(wrapper)

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
