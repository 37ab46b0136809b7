"""Go ``text/template`` source → a small syntax tree (the subset talhelper users write).

Supported: text and ``{{ action }}`` with the ``{{-``/``-}}`` trim markers, comments
``{{/* … */}}``, pipelines (``a | b c``), field chains (``.A.B``, ``$x.A``, ``(pipe).A``),
variables (``$``, ``$x :=``, ``$x =``, ``$i, $v :=`` in ``range``), literals (strings
``"…"`` and `` `…` ``, characters, numbers, ``true``/``false``/``nil``), function calls, and
the control structures ``if``/``else if``/``else``, ``range`` (with ``else``, ``break``,
``continue``) and ``with`` (with ``else``). ``define``, ``template`` and ``block`` name
other templates, which talhelper never provides: they are refused where they are written.

Every node keeps the 1-based source line it starts on, so an error names ``file:line``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from taltasks.errors import InputError


class TemplateError(InputError):
    """A template that does not parse or does not execute, located at its ``file:line``."""


# ---- the tree ----------------------------------------------------------------------------------


@dataclass
class Text:
    text: str
    line: int


@dataclass
class Field:
    """``.A.B`` (receiver ``None`` = dot), ``$x.A`` (receiver a Variable) or ``(p).A``."""

    names: tuple[str, ...]
    line: int
    receiver: Any = None


@dataclass
class Variable:
    name: str  # "$" or "$x"
    line: int


@dataclass
class Literal:
    value: Any
    line: int


@dataclass
class Identifier:
    """A function name used as a value or called with arguments."""

    name: str
    line: int


@dataclass
class Command:
    args: list[Any]
    line: int


@dataclass
class Pipeline:
    commands: list[Command]
    line: int
    decl: list[str] = field(default_factory=list)  # variables declared (:=) or assigned (=)
    assign: bool = False
    source: str = ""  # the action's text, for messages


@dataclass
class Action:
    pipe: Pipeline
    line: int


@dataclass
class Branch:
    kind: str  # if | range | with
    pipe: Pipeline
    body: list[Any]
    otherwise: list[Any] | None
    line: int


@dataclass
class Loop:
    kind: str  # break | continue
    line: int


# ---- lexing -------------------------------------------------------------------------------------

_ACTION = re.compile(r"\{\{(-[ \t\r\n])?")
_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?))
  | (?P<declare>:=)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<variable>\$[A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[|(),=])
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
)


@dataclass
class _Tok:
    kind: str
    text: str
    line: int


def _unquote(kind: str, text: str) -> Any:
    if kind == "raw":
        return text[1:-1]
    body = text[1:-1]
    out = bytes(body, "utf-8").decode("unicode_escape") if "\\" in body else body
    if kind == "char":
        return ord(out)
    return out


def _number(text: str) -> int | float:
    t = text.replace("_", "")
    try:
        return int(t, 0)
    except ValueError:
        return float(t)


class _Lexer:
    """Splits the source into text pieces and tokenised actions, applying trim markers."""

    def __init__(self, source: str, where: str, line_offset: int) -> None:
        self.source = source
        self.where = where
        self.offset = line_offset

    def line_at(self, pos: int) -> int:
        return self.source.count("\n", 0, pos) + 1

    def error(self, line: int, message: str, hint: str | None = None) -> TemplateError:
        return TemplateError(f"template: {message}", where=f"{self.where}:{line + self.offset}", hint=hint)

    def items(self) -> list[tuple[str, Any, int]]:
        """[("text", str, line) | ("action", (tokens, source), line)]"""
        out: list[tuple[str, Any, int]] = []
        pos, n = 0, len(self.source)
        trim_next = False
        while pos <= n:
            m = _ACTION.search(self.source, pos)
            end_text = m.start() if m else n
            text = self.source[pos:end_text]
            if trim_next:
                text = text.lstrip(" \t\r\n")
            if m and m.group(1):
                text = text.rstrip(" \t\r\n")
            if text:
                out.append(("text", text, self.line_at(pos)))
            if not m:
                break
            start = m.end()
            line = self.line_at(m.start())
            if self.source.startswith("/*", start):
                close = self.source.find("*/", start + 2)
                if close < 0:
                    raise self.error(line, "unclosed comment")
                after = close + 2
                trim_next = self.source.startswith(" -}}", after)
                if trim_next:
                    after += 2
                if not self.source.startswith("}}", after):
                    raise self.error(line, "comment ends before closing delimiter")
                pos = after + 2
                continue
            tokens, pos, trim_next = self.action(start, line)
            out.append(("action", (tokens, self.source[m.start() : pos].strip()), line))
        return out

    def action(self, pos: int, line: int) -> tuple[list[_Tok], int, bool]:
        tokens: list[_Tok] = []
        n = len(self.source)
        while True:
            if pos >= n:
                raise self.error(line, "unclosed action", hint="every {{ needs a matching }}")
            if self.source.startswith("}}", pos):
                return tokens, pos + 2, False
            if self.source.startswith("-}}", pos) and pos > 0 and self.source[pos - 1] in " \t\r\n":
                return tokens, pos + 3, True
            m = _TOKEN.match(self.source, pos)
            if not m or m.end() == pos:
                bad = self.source[pos : pos + 10].split("\n")[0]
                raise self.error(self.line_at(pos), f"unexpected {bad!r} in action")
            kind = m.lastgroup or ""
            if kind != "ws":
                tokens.append(_Tok(kind, m[0], self.line_at(pos)))
            pos = m.end()


# ---- parsing ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, lexer: _Lexer, functions: frozenset[str]) -> None:
        self.lexer = lexer
        self.functions = functions

    def parse(self) -> list[Any]:
        items = self.lexer.items()
        self.items = items
        self.i = 0
        body, stop = self.block(top=True)
        if stop is not None:
            kind, _, line = stop
            raise self.lexer.error(line, f"unexpected {{{{{kind}}}}}")
        return body

    def block(
        self, top: bool = False, opener: tuple[str, int] | None = None
    ) -> tuple[list[Any], tuple[str, list[_Tok], int] | None]:
        """Parse until ``end``/``else`` (returned as the stop) or the end of input."""
        body: list[Any] = []
        while self.i < len(self.items):
            kind, value, line = self.items[self.i]
            self.i += 1
            if kind == "text":
                body.append(Text(value, line))
                continue
            tokens, source = value
            if not tokens:
                raise self.lexer.error(line, "missing value for command")
            head = tokens[0]
            word = head.text if head.kind == "ident" else ""
            if word in ("end", "else"):
                if top:
                    raise self.lexer.error(line, f"unexpected {{{{{word}}}}}")
                return body, (word, tokens, line)
            if word in ("if", "range", "with"):
                body.append(self.branch(word, tokens[1:], line, source))
            elif word in ("break", "continue"):
                if len(tokens) > 1:
                    raise self.lexer.error(line, f"unexpected {tokens[1].text!r} after {word}")
                body.append(Loop(word, line))
            elif word in ("define", "template", "block"):
                raise self.lexer.error(
                    line,
                    f"{{{{{word}}}}} is not supported: talhelper renders one template without named ones",
                    hint="write the text out instead of defining a sub-template",
                )
            else:
                body.append(Action(self.pipeline(tokens, line, source), line))
        if not top:
            kind, line = opener or ("block", 1)
            raise self.lexer.error(line, f"unexpected EOF: missing {{{{end}}}} for this {{{{{kind}}}}}")
        return body, None

    def branch(self, kind: str, tokens: list[_Tok], line: int, source: str) -> Branch:
        if not tokens:
            raise self.lexer.error(line, f"missing value for {kind}")
        pipe = self.pipeline(tokens, line, source, allow_two=kind == "range")
        body, stop = self.block(opener=(kind, line))
        otherwise: list[Any] | None = None
        assert stop is not None
        word, stop_tokens, stop_line = stop
        if word == "else":
            rest = stop_tokens[1:]
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with") and kind != "range":
                # {{else if …}} / {{else with …}}: a nested branch sharing our {{end}}
                nested = self.branch(rest[0].text, rest[1:], stop_line, source)
                otherwise = [nested]
            elif rest:
                raise self.lexer.error(stop_line, f"unexpected {rest[0].text!r} after else")
            else:
                otherwise, stop2 = self.block(opener=(kind, line))
                assert stop2 is not None
                if stop2[0] != "end":
                    raise self.lexer.error(stop2[2], "expected {{end}} after {{else}}")
        return Branch(kind, pipe, body, otherwise, line)

    # pipeline := [decl] command {"|" command}
    def pipeline(self, tokens: list[_Tok], line: int, source: str, allow_two: bool = False) -> Pipeline:
        decl: list[str] = []
        assign = False
        i = 0
        # $x := / $x = / $i, $v :=
        if tokens and tokens[0].kind == "variable":
            names = [tokens[0].text]
            j = 1
            if allow_two and len(tokens) > 2 and tokens[1].text == "," and tokens[2].kind == "variable":
                names.append(tokens[2].text)
                j = 3
            if j < len(tokens) and tokens[j].kind == "declare":
                decl, i = names, j + 1
            elif j < len(tokens) and tokens[j].text == "=" and len(names) == 1:
                decl, i, assign = names, j + 1, True
        commands: list[Command] = []
        current: list[Any] = []
        rest = tokens[i:]
        k = 0
        while k < len(rest):
            tok = rest[k]
            if tok.text == "|" and tok.kind == "punct":
                if not current:
                    raise self.lexer.error(tok.line, "missing command before |")
                commands.append(Command(current, current[0].line if hasattr(current[0], "line") else line))
                current = []
                k += 1
                continue
            operand, k = self.operand(rest, k)
            current.append(operand)
        if not current:
            raise self.lexer.error(line, "missing value for command")
        commands.append(Command(current, line))
        return Pipeline(commands, line, decl, assign, source)

    def operand(self, toks: list[_Tok], k: int) -> tuple[Any, int]:
        tok = toks[k]
        node: Any
        if tok.kind in ("string", "raw", "char"):
            node = Literal(_unquote(tok.kind, tok.text), tok.line)
        elif tok.kind == "number":
            node = Literal(_number(tok.text), tok.line)
        elif tok.kind == "field":
            node = Field(tuple(tok.text.split(".")[1:]), tok.line)
        elif tok.kind == "dot":
            node = Field((), tok.line)
        elif tok.kind == "variable":
            node = Variable(tok.text, tok.line)
        elif tok.kind == "ident":
            if tok.text in ("true", "false"):
                node = Literal(tok.text == "true", tok.line)
            elif tok.text == "nil":
                node = Literal(None, tok.line)
            elif tok.text in _KEYWORDS:
                raise self.lexer.error(tok.line, f"unexpected keyword {tok.text!r}")
            elif tok.text not in self.functions:
                raise self.lexer.error(
                    tok.line,
                    f'function "{tok.text}" not defined',
                    hint="taltasks renders the Go template built-ins and the common sprig functions; "
                    "see docs/configure.md (Go templates)",
                )
            else:
                node = Identifier(tok.text, tok.line)
        elif tok.text == "(":
            depth, j = 1, k + 1
            while j < len(toks) and depth:
                depth += {"(": 1, ")": -1}.get(toks[j].text if toks[j].kind == "punct" else "", 0)
                j += 1
            if depth:
                raise self.lexer.error(tok.line, "unclosed left paren")
            node = self.pipeline(toks[k + 1 : j - 1], tok.line, "")
            k = j - 1
        else:
            raise self.lexer.error(tok.line, f"unexpected {tok.text!r} in operand")
        k += 1
        # a field chain directly after a variable or a parenthesised pipeline: $x.A, (p).A
        if k < len(toks) and toks[k].kind == "field" and isinstance(node, Variable | Pipeline):
            node = Field(tuple(toks[k].text.split(".")[1:]), toks[k].line, receiver=node)
            k += 1
        return node, k


def parse(source: str, where: str, functions: frozenset[str], line_offset: int = 0) -> list[Any]:
    """Parse ``source``; ``where`` names it in errors, ``line_offset`` shifts its lines."""
    return _Parser(_Lexer(source, where, line_offset), functions).parse()
