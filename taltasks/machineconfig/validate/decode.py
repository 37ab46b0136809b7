"""Decoding documents the way Talos's config loader does (go-yaml v3/v4, ``KnownFields``).

Talos reads each YAML document into a typed Go struct. What that accepts and refuses is
restated here over the contract's type model (:mod:`.typemodel`):

* a scalar decoded into a string field becomes its text *as written*: ``1`` → ``"1"``,
  ``true`` → ``"true"``, ``0x10`` → ``"0x10"`` (so ``sysctls``, ``sysfs``, labels and
  ``extraArgs`` accept unquoted numbers and booleans); map keys likewise;
* a string where an integer or number belongs is an error; into a boolean field go-yaml
  also takes ``yes``/``no``/``on``/``off`` (YAML 1.1 spellings) and nothing else; an integer
  written with a leading zero is octal, as in YAML 1.1 (``permissions: 0644`` is 420);
* ``null`` is the zero value anywhere; a mapping or list where a scalar belongs (or the
  other way round) is an error;
* an unknown key is an error (Talos decodes with known fields only), with a "did you mean";
* a document kind Talos does not register, or a wrong ``apiVersion`` for it, is an error;
* enums and formats the schema states (durations, CIDRs, URL schemes…) are checked; hex
  digits and MAC addresses in any case, as Go parses them;
* a field the contract's Go types mark deprecated, set by the user, is a *warning* that
  names the replacement.

The decoded values replace the originals in place, so the config written is exactly what
Talos would load.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable
from typing import Any

from taltasks.machineconfig.validate.findings import KeyPath, Severity, yaml_value
from taltasks.machineconfig.validate.typemodel import Model, Type

# (document index, severity, path, message, hint)
Report = Callable[[int, Severity, KeyPath, str, str | None], None]

_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "on", "On", "ON"})
_FALSE = frozenset({"n", "N", "no", "No", "NO", "off", "Off", "OFF"})
_EXPECTED = {
    "struct": "a mapping of keys",
    "map": "a mapping",
    "list": "a list",
    "string": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
}
_HINTS = {
    "int": "write the number without quotes",
    "number": "write the number without quotes",
    "bool": "write true or false",
    "list": "write the items as a YAML list (`- item`)",
}


def go_text(value: Any) -> str:
    """The text go-yaml gives a scalar decoded into a string when the source is unknown."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return str(value)


def go_int(text: str, parsed: int) -> int:
    """The integer go-yaml reads from ``text``: like YAML 1.1 it takes a leading ``0`` as
    octal (``permissions: 0644`` is 420), where a YAML 1.2 reader sees 644."""
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits.isdigit():
        try:
            return sign * int(digits, 8)
        except ValueError:
            return parsed  # "09": not octal; go-yaml falls back to the number it spells
    return parsed


def _spells(text: str, value: Any) -> bool:
    """True when ``text`` is a YAML spelling of ``value`` (guards a source text lookup)."""
    if isinstance(value, bool):
        return text.lower() == ("true" if value else "false")
    if isinstance(value, int):
        try:
            return int(text.replace("_", ""), 0) == value
        except ValueError:
            return (
                text.lstrip("+-").lstrip("0").replace("_", "") == str(abs(value)) or text.lstrip("+-") == "0"
            )
    if isinstance(value, float):
        try:
            return float(text.replace("_", "")) == value or (value != value and "nan" in text.lower())
        except ValueError:
            return text.lower().lstrip("+-") in (".inf", ".nan")
    return isinstance(value, datetime.date) and text[:4] == f"{value.year:04d}"


class _Failed(Exception):
    """A oneOf branch did not fit."""


class Decoder:
    """Decodes the documents of one config (or one patch) for one contract's model."""

    def __init__(
        self,
        model: Model,
        report: Report,
        *,
        partial: bool = False,
        user_set: Callable[[int, KeyPath], bool] | None = None,
        raw_text: Callable[[int, KeyPath], str | None] | None = None,
        as_written: bool = True,
    ) -> None:
        self.model = model
        self.report = report
        self.partial = partial
        self.user_set = user_set
        self.raw_text = raw_text
        # True: a string field takes the source text (a strategic patch, decoded typed);
        # False: the number go-yaml resolved (a JSON patch's values pass through JSON)
        self.as_written = as_written
        self.index = 0
        self._trial: list[str] | None = None  # collecting errors of a oneOf branch

    # ---- documents --------------------------------------------------------------------------

    def documents(self, docs: list[dict[str, Any]]) -> None:
        for index, doc in enumerate(docs):
            self.index = index
            self.document(doc)

    def document(self, doc: dict[str, Any]) -> None:
        from taltasks.model.suggest import did_you_mean

        kind = doc.get("kind")
        if not kind:
            self.value(doc, self.model.v1alpha1, ())
            return
        t = self.model.kinds.get(str(kind))
        if t is None:
            c = self.model.contract
            self.error(
                ("kind",),
                f"unknown document kind {yaml_value(kind)}{did_you_mean(str(kind), self.model.kinds)}",
                f"Talos {c[0]}.{c[1]} knows: {', '.join(sorted(self.model.kinds))}",
            )
            return
        api = doc.get("apiVersion")
        allowed = self.model.api_versions.get(str(kind), ("v1alpha1",))
        if api is None or str(api) not in allowed:
            self.error(
                ("apiVersion",),
                f"{kind} needs apiVersion: {allowed[0]}"
                + (f", not {yaml_value(api)}" if api is not None else ""),
                None,
            )
        self.value(doc, t, ())

    # ---- values -----------------------------------------------------------------------------

    def error(self, path: KeyPath, message: str, hint: str | None) -> None:
        if self._trial is not None:
            self._trial.append(message)
            raise _Failed
        self.report(self.index, "error", path, message, hint)

    def mismatch(self, value: Any, t: Type, path: KeyPath) -> None:
        shown = "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else None
        got = shown or yaml_value(value)
        hint = _HINTS.get(t.kind)
        if t.kind in ("int", "number") and not isinstance(value, str):
            hint = None
        self.error(path, f"expected {_EXPECTED.get(t.kind, t.kind)}, got {got}", hint)

    def value(self, value: Any, t: Type, path: KeyPath, deprecated: bool = False) -> Any:
        if value is None or t.kind == "any":
            return value
        kind = t.kind
        if kind == "struct":
            return self.struct(value, t, path, deprecated)
        if kind == "map":
            return self.mapping(value, t, path, deprecated)
        if kind == "list":
            if not isinstance(value, list):
                self.mismatch(value, t, path)
                return value
            for i, item in enumerate(value):
                value[i] = self.value(item, t.item or Type("any"), (*path, i), deprecated)
            return value
        if kind == "oneof":
            return self.one_of(value, t, path, deprecated)
        if isinstance(value, dict | list):
            self.mismatch(value, t, path)
            return value
        if kind == "string":
            text = value if isinstance(value, str) else self.text(value, path)
            self.check_format(text, t, path)
            return text
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and (value in _TRUE or value in _FALSE):
                return value in _TRUE
            self.mismatch(value, t, path)
            return value
        if kind == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                raw = self.raw_text(self.index, path) if self.raw_text is not None else None
                value = go_int(raw, value) if raw is not None else value
                self.check_enum(value, t, path)
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            self.mismatch(value, t, path)
            return value
        if kind == "number":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
            self.mismatch(value, t, path)
            return value
        return value

    def text(self, value: Any, path: KeyPath) -> str:
        raw = self.raw_text(self.index, path) if self.raw_text is not None else None
        if raw is None or not _spells(raw, value):
            return go_text(value)
        if self.as_written:
            return raw
        return go_text(
            go_int(raw, value) if isinstance(value, int) and not isinstance(value, bool) else value
        )

    def check_format(self, text: str, t: Type, path: KeyPath) -> None:
        self.check_enum(text, t, path)
        if t.pattern is not None and text and not t.pattern.search(text):
            self.error(
                path, f"{yaml_value(text)} is not in the expected form", f"it must match {t.pattern.pattern}"
            )

    def check_enum(self, value: Any, t: Type, path: KeyPath) -> None:
        if t.enum is not None and value not in t.enum and value != "":
            choices = ", ".join(yaml_value(e) for e in t.enum)
            self.error(path, f"{yaml_value(value)} is not one of {choices}", None)

    def struct(self, value: Any, t: Type, path: KeyPath, deprecated: bool) -> Any:
        from taltasks.model.suggest import did_you_mean

        if not isinstance(value, dict):
            self.mismatch(value, t, path)
            return value
        for key in list(value):
            sub = (*path, str(key))
            ft = t.fields.get(key) if isinstance(key, str) else None
            if ft is None:
                ft = next((pt for pat, pt in t.patterns if pat.search(str(key))), None)
            if ft is None:
                known = list(t.fields)
                self.error(
                    sub,
                    f"unknown key {str(key)!r}{did_you_mean(str(key), known)}",
                    "check the spelling against the Talos configuration reference"
                    + (f" ({t.name})" if t.name else ""),
                )
                continue
            child_deprecated = deprecated
            note = t.deprecated.get(key) if not deprecated else None
            if note is not None:
                child_deprecated = True
                self.deprecation(sub, value[key], note)
            value[key] = self.value(value[key], ft, sub, child_deprecated)
        return value

    def deprecation(self, path: KeyPath, value: Any, note: Any) -> None:
        if self.partial or self._trial is not None or value in (None, "", [], {}):
            return
        if self.user_set is not None and not self.user_set(self.index, path):
            return  # written by the generator, as Talos's own generator writes it
        c = self.model.contract
        self.report(
            self.index,
            "warning",
            path,
            f"deprecated in Talos {c[0]}.{c[1]} (still accepted): {note.advice()}",
            None,
        )

    def mapping(self, value: Any, t: Type, path: KeyPath, deprecated: bool) -> Any:
        if not isinstance(value, dict):
            self.mismatch(value, t, path)
            return value
        item = t.item or Type("any")
        if all(isinstance(k, str) for k in value):
            for key in value:
                value[key] = self.value(value[key], item, (*path, key), deprecated)
            return value
        items = [
            (k if isinstance(k, str) else self.text(k, (*path, str(k))), v) for k, v in list(value.items())
        ]
        value.clear()
        for key, v in items:
            value[key] = self.value(v, item, (*path, key), deprecated)
        return value

    def one_of(self, value: Any, t: Type, path: KeyPath, deprecated: bool) -> Any:
        outer = self._trial
        for option in t.options:
            self._trial = []
            try:
                result = self.value(copy.deepcopy(value), option, path, deprecated)
            except _Failed:
                continue
            finally:
                self._trial = outer
            return result
        shapes = " or ".join(_EXPECTED.get(o.kind, o.kind) for o in t.options)
        self.error(path, f"expected {shapes}, got {yaml_value(value)}", None)
        return value
