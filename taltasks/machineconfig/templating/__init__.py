"""Go templates as talhelper renders them: ``text/template`` + the common sprig functions.

talhelper renders templates in node labels and annotations, in patches (files and inline),
in ``extraManifests`` and in the output ``filenameTmpl``; the data is Talos's Go config
value (:mod:`.gostruct`). A template that does not parse or names something unknown is an
error at its ``file:line`` (:class:`TemplateError`), raised before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from taltasks.machineconfig.templating.execute import Executor, go_print
from taltasks.machineconfig.templating.funcs import FUNCTION_NAMES, functions
from taltasks.machineconfig.templating.gostruct import GoStruct, config_value
from taltasks.machineconfig.templating.parse import TemplateError, parse

__all__ = ["GoStruct", "TemplateError", "config_value", "go_print", "is_template", "render"]


def is_template(text: str) -> bool:
    """talhelper's test: a value holding ``{{`` or ``}}`` is a template."""
    return "{{" in text or "}}" in text


@lru_cache(maxsize=512)
def _parsed(text: str, where: str, line_offset: int) -> list[Any]:
    return parse(text, where, FUNCTION_NAMES, line_offset)


def render(
    text: str,
    data: Any,
    *,
    where: str,
    line_offset: int = 0,
    env: Mapping[str, str] | None = None,
) -> str:
    """Execute ``text`` with ``data`` as dot. ``where`` (a file) and ``line_offset`` locate
    errors; ``env`` answers sprig's ``env``."""
    nodes = _parsed(text, where, line_offset)
    return Executor(where, line_offset, functions(env)).run(nodes, data)
