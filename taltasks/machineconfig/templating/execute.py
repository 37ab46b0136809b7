"""Executing a parsed template with Go's semantics (printing, truth, fields, variables)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from taltasks.machineconfig.templating.gostruct import GoStruct, NilPointer
from taltasks.machineconfig.templating.parse import (
    Action,
    Branch,
    Command,
    Field,
    Identifier,
    Literal,
    Loop,
    Pipeline,
    TemplateError,
    Text,
    Variable,
)
from taltasks.model.suggest import did_you_mean


class NoValue:
    """What Go prints as ``<no value>``: a missing key of an untyped map."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = NoValue()


class FuncError(Exception):
    """Raised by a template function; becomes a :class:`TemplateError` at the call's line."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def go_print(value: Any) -> str:
    """``fmt.Sprint`` of a value, the way ``{{ … }}`` prints it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    if isinstance(value, NilPointer):
        return "<nil>"
    if isinstance(value, NoValue):
        return "<no value>"
    if isinstance(value, float):
        return repr(value).removesuffix(".0")
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(value[k])}" for k in sorted(value, key=str)) + "]"
    if isinstance(value, GoStruct):
        inner = " ".join(go_print(value.get(go)[1]) for go in value.field_names())
        return ("&" if value.pointer else "") + "{" + inner + "}"
    return str(value)


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings/collections are false; structs true."""
    if isinstance(value, GoStruct):
        return True
    if isinstance(value, NilPointer | NoValue) or value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


class Executor:
    def __init__(
        self,
        where: str,
        line_offset: int,
        functions: Mapping[str, Callable[..., Any]],
    ) -> None:
        self.where = where
        self.offset = line_offset
        self.functions = functions
        self.out: list[str] = []

    def error(self, line: int, message: str, hint: str | None = None) -> TemplateError:
        return TemplateError(f"template: {message}", where=f"{self.where}:{line + self.offset}", hint=hint)

    def run(self, nodes: list[Any], data: Any) -> str:
        self.vars: list[tuple[str, Any]] = [("$", data)]
        self.walk(nodes, data)
        return "".join(self.out)

    # ---- statements ---------------------------------------------------------------------------

    def walk(self, nodes: list[Any], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipeline(node.pipe, dot)
                if not node.pipe.decl:
                    self.out.append(go_print(value))
            elif isinstance(node, Branch):
                self.branch(node, dot)
            elif isinstance(node, Loop):
                raise _Break() if node.kind == "break" else _Continue()

    def scoped(self, nodes: list[Any], dot: Any) -> None:
        mark = len(self.vars)
        try:
            self.walk(nodes, dot)
        finally:
            del self.vars[mark:]

    def branch(self, node: Branch, dot: Any) -> None:
        if node.kind == "range":
            self.range(node, dot)
            return
        mark = len(self.vars)
        value = self.pipeline(node.pipe, dot)
        try:
            if truth(value):
                self.walk(node.body, value if node.kind == "with" else dot)
            elif node.otherwise is not None:
                del self.vars[mark:]
                self.walk(node.otherwise, dot)
        finally:
            del self.vars[mark:]

    def range(self, node: Branch, dot: Any) -> None:
        decl = node.pipe.decl
        pipe = Pipeline(node.pipe.commands, node.pipe.line, [], False, node.pipe.source)
        value = self.pipeline(pipe, dot)
        if isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value, key=str)]
        elif isinstance(value, list | tuple):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        elif value is None or isinstance(value, NilPointer | NoValue):
            items = []
        else:
            raise self.error(node.line, f"range can't iterate over {go_print(value)}")
        if not items:
            if node.otherwise is not None:
                self.scoped(node.otherwise, dot)
            return
        for key, item in items:
            mark = len(self.vars)
            if len(decl) == 1:
                self.vars.append((decl[0], item))
            elif len(decl) == 2:
                self.vars.append((decl[0], key))
                self.vars.append((decl[1], item))
            try:
                self.walk(node.body, item)
            except _Break:
                break
            except _Continue:
                continue
            finally:
                del self.vars[mark:]

    # ---- expressions --------------------------------------------------------------------------

    def pipeline(self, pipe: Pipeline, dot: Any) -> Any:
        value: Any = _NOTHING
        for command in pipe.commands:
            value = self.command(command, dot, value)
        if pipe.decl:
            name = pipe.decl[-1]
            if pipe.assign:
                for i in range(len(self.vars) - 1, -1, -1):
                    if self.vars[i][0] == name:
                        self.vars[i] = (name, value)
                        break
                else:
                    raise self.error(pipe.line, f"undefined variable: {name}")
            else:
                self.vars.append((name, value))
        return value

    def command(self, command: Command, dot: Any, piped: Any) -> Any:
        first = command.args[0]
        if isinstance(first, Identifier):
            args = [self.operand(a, dot) for a in command.args[1:]]
            if piped is not _NOTHING:
                args.append(piped)
            return self.call(first, args, command.args[1:], dot)
        if len(command.args) > 1 or piped is not _NOTHING:
            what = self.describe(first)
            raise self.error(
                command.line,
                f"can't give argument to non-function {what}",
                hint="only functions take arguments; methods of Talos's Go types are not available",
            )
        return self.operand(first, dot)

    def call(self, ident: Identifier, args: list[Any], raw: list[Any], dot: Any) -> Any:
        fn = self.functions[ident.name]
        try:
            return fn(*args)
        except FuncError as exc:
            raise self.error(ident.line, f"error calling {ident.name}: {exc}") from None
        except TypeError as exc:
            raise self.error(ident.line, f"wrong number of args for {ident.name}: {exc}") from None

    def operand(self, node: Any, dot: Any) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Variable):
            return self.variable(node)
        if isinstance(node, Field):
            if node.receiver is None:
                base = dot
            elif isinstance(node.receiver, Variable):
                base = self.variable(node.receiver)
            else:
                base = self.pipeline(node.receiver, dot)
            return self.fields(base, node)
        if isinstance(node, Pipeline):
            return self.pipeline(node, dot)
        if isinstance(node, Identifier):
            return self.call(node, [], [], dot)
        raise self.error(getattr(node, "line", 1), f"unexpected {node!r}")

    def variable(self, node: Variable) -> Any:
        for name, value in reversed(self.vars):
            if name == node.name:
                return value
        raise self.error(node.line, f'undefined variable "{node.name}"')

    def fields(self, value: Any, node: Field) -> Any:
        for i, name in enumerate(node.names):
            value = self.field(value, name, node, i)
        return value

    def field(self, value: Any, name: str, node: Field, index: int) -> Any:
        path = "." + ".".join(node.names[: index + 1])
        if isinstance(value, GoStruct):
            found, result = value.get(name)
            if not found:
                raise self.error(
                    node.line,
                    f"can't evaluate field {name} in type {value.go_type} (at <{path}>)",
                    hint=f"fields are the Go names of Talos's types{did_you_mean(name, value.field_names())}"
                    f" — {value.type_name} has {', '.join(value.field_names()[:8])}…",
                )
            return result
        if isinstance(value, NilPointer):
            raise self.error(
                node.line,
                f"nil pointer evaluating *v1alpha1.{value.type_name}.{name} (at <{path}>)",
                hint="that section is not in the config at this point; guard it with {{ with … }}",
            )
        if isinstance(value, dict):
            return value.get(name, NO_VALUE)
        if isinstance(value, NoValue) or value is None:
            raise self.error(node.line, f"nil pointer evaluating interface {{}}.{name} (at <{path}>)")
        raise self.error(
            node.line, f"can't evaluate field {name} in type {type(value).__name__} (at <{path}>)"
        )

    def describe(self, node: Any) -> str:
        if isinstance(node, Field):
            return "." + ".".join(node.names)
        if isinstance(node, Variable):
            return node.name
        if isinstance(node, Literal):
            return go_print(node.value)
        return "value"


_NOTHING = object()
