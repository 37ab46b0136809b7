"""CEL expressions of tuppr-style health checks: compiled once, evaluated per object.

The policy validator compiles every ``expr`` up front so a typo is an error at
``file:line`` before anything runs; the expression gate evaluates the cached program
against each Kubernetes object with tuppr's two variables, ``object`` (the whole object)
and ``status`` (its ``status``). Evaluation is fail-closed like tuppr's: a missing field,
a type error or a non-boolean result is "not passed", never an exception.

cel-python loads lark and builds its grammar (~0.2 s), so it is imported on first use.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


class CelSyntaxError(ValueError):
    """``expr`` does not parse; ``line``/``column`` are 1-based within the expression."""

    def __init__(self, expr: str, line: int, column: int) -> None:
        self.expr = expr
        self.line = line
        self.column = column
        text = expr.splitlines()[line - 1] if expr.splitlines() else expr
        caret = " " * max(column - 1, 0) + "^"
        super().__init__(
            f"invalid CEL at line {line}, column {column} of the expression:\n    {text}\n    {caret}"
        )


@lru_cache(maxsize=1)
def _environment() -> Any:
    import celpy

    return celpy.Environment()


@lru_cache(maxsize=512)
def compile_expr(expr: str) -> Any:
    """A runnable program for ``expr``; :class:`CelSyntaxError` when it does not parse."""
    import celpy

    env = _environment()
    try:
        ast = env.compile(expr)
    except celpy.CELParseError as exc:
        raise CelSyntaxError(expr, exc.line or 1, exc.column or 1) from None
    return env.program(ast)


def evaluate(expr: str, obj: dict[str, Any]) -> tuple[bool, str]:
    """``(passed, what was seen)`` for ``expr`` over ``obj``: only a boolean ``true`` passes."""
    import celpy
    from celpy.celtypes import BoolType

    program = compile_expr(expr)
    activation = {"object": celpy.json_to_cel(obj), "status": celpy.json_to_cel(obj.get("status") or {})}
    try:
        result = program.evaluate(activation)
    except celpy.CELEvalError as exc:
        return False, f"evaluation error: {_eval_message(exc)}"
    except Exception as exc:  # cel-python raises plain TypeErrors for some bad operand types
        return False, f"evaluation error: {exc}"
    if isinstance(result, celpy.CELEvalError):
        return False, f"evaluation error: {_eval_message(result)}"
    if isinstance(result, BoolType | bool):
        return bool(result), "true" if result else "false"
    shown = repr(str(result)) if isinstance(result, str) else str(result)
    return False, f"returned {type(result).__name__.removesuffix('Type').lower()} {shown}, not a boolean"


def _eval_message(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    return str(args[0]) if args else str(exc)
