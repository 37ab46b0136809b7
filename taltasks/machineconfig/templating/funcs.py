"""Template functions: Go's built-ins and the part of sprig that talhelper users reach for.

talhelper registers all of ``sprig.FuncMap()``. Taltasks implements the deterministic,
commonly used part (strings, lists, dicts, maths, defaults, encodings, regexes, ``env``);
the rest — clocks, random values, key generation, network lookups — would make configs
change on every run and is refused by name where it is written.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from taltasks.machineconfig.templating.execute import NO_VALUE, FuncError, go_print, truth
from taltasks.machineconfig.templating.gostruct import GoStruct, NilPointer


def _str(value: Any, what: str = "value") -> str:
    if isinstance(value, str):
        return value
    raise FuncError(f"wrong type for {what}; expected string; got {_go_type(value)}")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise FuncError("wrong type; expected int; got bool")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip(), 0) if value.strip() else 0
        except ValueError:
            try:
                return int(float(value))
            except ValueError:
                return 0
    return 0


def _go_type(value: Any) -> str:
    if isinstance(value, GoStruct):
        return value.go_type
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if value is None or isinstance(value, NilPointer):
        return "<nil>"
    return type(value).__name__


# ---- Go built-ins ---------------------------------------------------------------------------


def _and(first: Any, *rest: Any) -> Any:
    for value in (first, *rest):
        if not truth(value):
            return value
    return rest[-1] if rest else first


def _or(first: Any, *rest: Any) -> Any:
    for value in (first, *rest):
        if truth(value):
            return value
    return rest[-1] if rest else first


def _len(value: Any) -> int:
    if isinstance(value, str | list | tuple | dict):
        return len(value)
    raise FuncError(f"len of type {_go_type(value)}")


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, list | tuple | str):
            i = _int(key)
            if not 0 <= i < len(value):
                raise FuncError(f"index out of range: {i}")
            value = value[i]
        elif isinstance(value, dict):
            value = value.get(key, NO_VALUE)
        elif value is None or isinstance(value, NilPointer):
            raise FuncError("index of untyped nil")
        else:
            raise FuncError(f"can't index item of type {_go_type(value)}")
    return value


def _slice(value: Any, *bounds: Any) -> Any:
    idx = [_int(b) for b in bounds]
    if not isinstance(value, str | list):
        raise FuncError(f"can't slice item of type {_go_type(value)}")
    return value[slice(*idx)] if idx else value


def _print(*args: Any) -> str:
    out = ""
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_print(a)
    return out


def _println(*args: Any) -> str:
    return " ".join(go_print(a) for a in args) + "\n"


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def _printf(fmt: str, *args: Any) -> str:
    fmt = _str(fmt, "format")
    values = list(args)

    def verb(m: re.Match[str]) -> str:
        flags, width, prec, v = m.group(1), m.group(2), m.group(3), m.group(4)
        if v == "%":
            return "%"
        if not values:
            return f"%!{v}(MISSING)"
        a = values.pop(0)
        if v in ("v", "s"):
            text = go_print(a)
            if prec is not None:
                text = text[: int(prec)]
        elif v == "q":
            text = json.dumps(go_print(a), ensure_ascii=False)
        elif v == "d":
            if isinstance(a, bool) or not isinstance(a, int):
                return f"%!d({_go_type(a)}={go_print(a)})"
            text = str(a)
        elif v == "t":
            text = go_print(a) if isinstance(a, bool) else f"%!t({_go_type(a)}={go_print(a)})"
        elif v in ("x", "X"):
            text = format(a, v) if isinstance(a, int) else (go_print(a).encode().hex())
            text = text.upper() if v == "X" else text
        elif v in ("f", "F", "e", "g"):
            if not isinstance(a, int | float) or isinstance(a, bool):
                return f"%!{v}({_go_type(a)}={go_print(a)})"
            text = format(float(a), f".{prec or 6}{v.lower()}") if v != "g" else go_print(float(a))
        else:
            raise FuncError(f"printf verb %{v} is not supported")
        if width and width != "*":
            w = int(width)
            text = text.ljust(w) if "-" in flags else text.rjust(w, "0" if "0" in flags else " ")
        return text

    out = _VERB.sub(verb, fmt)
    if values:
        out += "%!(EXTRA " + ", ".join(f"{_go_type(a)}={go_print(a)}" for a in values) + ")"
    return out


def _basic(a: Any, b: Any) -> tuple[Any, Any]:
    for v in (a, b):
        if isinstance(v, GoStruct | list | dict):
            raise FuncError(f"incompatible type for comparison: {_go_type(v)}")
    if isinstance(a, NilPointer | type(None)) or isinstance(b, NilPointer | type(None)):
        return (a is None or isinstance(a, NilPointer)), (b is None or isinstance(b, NilPointer))
    numeric = (int, float)
    if isinstance(a, bool) != isinstance(b, bool) or (
        isinstance(a, numeric) != isinstance(b, numeric) and not (isinstance(a, bool) or isinstance(b, bool))
    ):
        raise FuncError(f"incompatible types for comparison: {_go_type(a)} and {_go_type(b)}")
    return a, b


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    for b in others:
        x, y = _basic(a, b)
        if x == y:
            return True
    return False


def _order(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        x, y = _basic(a, b)
        if isinstance(x, bool):
            raise FuncError("invalid type for comparison")
        return op(x, y)

    return compare


# ---- sprig ----------------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return not truth(value)


def _default(fallback: Any, *given: Any) -> Any:
    if not given or _empty(given[0]):
        return fallback
    return given[0]


def _required(message: Any, value: Any) -> Any:
    if value is None or isinstance(value, NilPointer) or value is NO_VALUE:
        raise FuncError(_str(message))
    return value


def _fail(message: Any) -> Any:
    raise FuncError(_str(message))


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if truth(v)), None)


def _ternary(yes: Any, no: Any, cond: Any) -> Any:
    return yes if truth(cond) else no


def _quote(*values: Any) -> str:
    return " ".join(json.dumps(go_print(v), ensure_ascii=False) for v in values if v is not None)


def _squote(*values: Any) -> str:
    return " ".join(f"'{go_print(v)}'" for v in values if v is not None)


def _to_string(value: Any) -> str:
    return go_print(value)


def _split_list(sep: str, text: str) -> list[str]:
    return _str(text).split(_str(sep, "separator"))


def _split(sep: str, text: str) -> dict[str, str]:
    return {f"_{i}": part for i, part in enumerate(_split_list(sep, text))}


def _join(sep: str, values: Any) -> str:
    if isinstance(values, str):
        return values
    if not isinstance(values, list | tuple):
        raise FuncError(f"join: expected a list, got {_go_type(values)}")
    return _str(sep, "separator").join(go_print(v) for v in values)


def _list(*values: Any) -> list[Any]:
    return list(values)


def _dict(*pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(pairs), 2):
        out[go_print(pairs[i])] = pairs[i + 1] if i + 1 < len(pairs) else ""
    return out


def _get(d: Any, key: str) -> Any:
    return d.get(key, "") if isinstance(d, dict) else ""


def _has_key(d: Any, key: str) -> bool:
    return isinstance(d, dict) and key in d


def _keys(*dicts: Any) -> list[str]:
    return [k for d in dicts if isinstance(d, dict) for k in d]


def _list_arg(value: Any, name: str) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    raise FuncError(f"{name}: cannot find {name} on type {_go_type(value)}")


def _first(values: Any) -> Any:
    items = _list_arg(values, "first")
    return items[0] if items else None


def _last(values: Any) -> Any:
    items = _list_arg(values, "last")
    return items[-1] if items else None


def _uniq(values: Any) -> list[Any]:
    out: list[Any] = []
    for v in _list_arg(values, "uniq"):
        if v not in out:
            out.append(v)
    return out


def _has(needle: Any, haystack: Any) -> bool:
    return isinstance(haystack, list | tuple) and needle in haystack


def _add(*values: Any) -> int:
    return sum(_int(v) for v in values)


def _mul(first: Any, *rest: Any) -> int:
    out = _int(first)
    for v in rest:
        out *= _int(v)
    return out


def _div(a: Any, b: Any) -> int:
    if _int(b) == 0:
        raise FuncError("integer divide by zero")
    q = abs(_int(a)) // abs(_int(b))
    return q if (_int(a) >= 0) == (_int(b) > 0) else -q


def _mod(a: Any, b: Any) -> int:
    if _int(b) == 0:
        raise FuncError("integer divide by zero")
    return int(_int(a) - _int(b) * int(_int(a) / _int(b)))


def _indent(n: Any, text: str) -> str:
    pad = " " * _int(n)
    return pad + _str(text).replace("\n", "\n" + pad)


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(_str(pattern, "regular expression"))
    except re.error as exc:
        raise FuncError(f"error parsing regexp: {exc}") from None


def _go_replacement(repl: str) -> str:
    """Go's ``$1``/``${1}``/``${name}`` in a replacement, as Python's ``\\g<…>``."""
    repl = repl.replace("\\", "\\\\")
    return re.sub(r"\$(?:\{(\w+)\}|(\d+))", lambda m: f"\\g<{m[1] or m[2]}>", repl)


def _b64dec(text: str) -> str:
    try:
        return base64.b64decode(_str(text), validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        return str(exc)


def functions(env: Mapping[str, str] | None = None) -> dict[str, Callable[..., Any]]:
    """Every function a template may call; ``env`` backs sprig's ``env``."""
    variables = dict(env or {})
    fns: dict[str, Callable[..., Any]] = {
        # Go built-ins
        "and": _and,
        "or": _or,
        "not": lambda v: not truth(v),
        "len": _len,
        "index": _index,
        "slice": _slice,
        "print": _print,
        "printf": _printf,
        "println": _println,
        "eq": _eq,
        "ne": lambda a, b: not _eq(a, b),
        "lt": _order(lambda a, b: a < b),
        "le": _order(lambda a, b: a <= b),
        "gt": _order(lambda a, b: a > b),
        "ge": _order(lambda a, b: a >= b),
        # sprig: defaults and flow
        "default": _default,
        "empty": _empty,
        "coalesce": _coalesce,
        "ternary": _ternary,
        "required": _required,
        "fail": _fail,
        # strings
        "quote": _quote,
        "squote": _squote,
        "upper": lambda s: _str(s).upper(),
        "lower": lambda s: _str(s).lower(),
        "title": lambda s: re.sub(r"\b[a-z]", lambda m: m[0].upper(), _str(s)),
        "trim": lambda s: _str(s).strip(),
        "trimAll": lambda cut, s: _str(s).strip(_str(cut)),
        "trimPrefix": lambda p, s: _str(s).removeprefix(_str(p)),
        "trimSuffix": lambda x, s: _str(s).removesuffix(_str(x)),
        "replace": lambda old, new, s: _str(s).replace(_str(old), _str(new)),
        "contains": lambda sub, s: _str(sub) in _str(s),
        "hasPrefix": lambda p, s: _str(s).startswith(_str(p)),
        "hasSuffix": lambda x, s: _str(s).endswith(_str(x)),
        "nospace": lambda s: re.sub(r"\s", "", _str(s)),
        "trunc": lambda n, s: _str(s)[: _int(n)] if _int(n) >= 0 else _str(s)[_int(n) :],
        "repeat": lambda n, s: _str(s) * max(_int(n), 0),
        "substr": lambda a, b, s: _str(s)[_int(a) : (_int(b) if _int(b) >= 0 else None)],
        "cat": lambda *xs: " ".join(go_print(x) for x in xs if x is not None),
        "indent": _indent,
        "nindent": lambda n, s: "\n" + _indent(n, s),
        "split": _split,
        "splitList": _split_list,
        "join": _join,
        "toString": _to_string,
        "toStrings": lambda xs: [go_print(x) for x in _list_arg(xs, "toStrings")],
        # lists and dicts
        "list": _list,
        "dict": _dict,
        "get": _get,
        "hasKey": _has_key,
        "keys": _keys,
        "sortAlpha": lambda xs: sorted(go_print(x) for x in _list_arg(xs, "sortAlpha")),
        "first": _first,
        "last": _last,
        "rest": lambda xs: _list_arg(xs, "rest")[1:],
        "initial": lambda xs: _list_arg(xs, "initial")[:-1],
        "uniq": _uniq,
        "has": _has,
        # numbers
        "int": _int,
        "int64": _int,
        "atoi": _int,
        "float64": lambda v: float(_int(v)) if not isinstance(v, float) else v,
        "add": _add,
        "add1": lambda v: _int(v) + 1,
        "sub": lambda a, b: _int(a) - _int(b),
        "mul": _mul,
        "div": _div,
        "mod": _mod,
        "max": lambda first, *rest: max(_int(v) for v in (first, *rest)),
        "min": lambda first, *rest: min(_int(v) for v in (first, *rest)),
        # encodings
        "toJson": lambda v: json.dumps(_plain(v), separators=(",", ":")),
        "toPrettyJson": lambda v: json.dumps(_plain(v), indent=2),
        "b64enc": lambda s: base64.b64encode(_str(s).encode()).decode(),
        "b64dec": _b64dec,
        "sha256sum": lambda s: hashlib.sha256(_str(s).encode()).hexdigest(),
        "sha1sum": lambda s: hashlib.sha1(_str(s).encode(), usedforsecurity=False).hexdigest(),
        # regular expressions
        "regexMatch": lambda p, s: _regex(p).search(_str(s)) is not None,
        "regexFind": lambda p, s: m[0] if (m := _regex(p).search(_str(s))) else "",
        "regexFindAll": lambda p, s, n: [m[0] for m in _regex(p).finditer(_str(s))][
            : (_int(n) if _int(n) >= 0 else None)
        ],
        "regexReplaceAll": lambda p, s, r: _regex(p).sub(_go_replacement(_str(r)), _str(s)),
        "regexReplaceAllLiteral": lambda p, s, r: _regex(p).sub(lambda _m: _str(r), _str(s)),
        "regexSplit": lambda p, s, n: _regex(p).split(_str(s), maxsplit=max(_int(n) - 1, 0)),
        # environment (talenv values are exported to it, as talhelper does)
        "env": lambda name: variables.get(_str(name), ""),
        "base": lambda s: _str(s).rstrip("/").rsplit("/", 1)[-1] or "/",
        "dir": lambda s: _str(s).rsplit("/", 1)[0] if "/" in _str(s) else ".",
    }
    return fns


def _plain(value: Any) -> Any:
    if isinstance(value, GoStruct):
        return value.data
    if isinstance(value, NilPointer):
        return None
    return value


FUNCTION_NAMES = frozenset(functions())
