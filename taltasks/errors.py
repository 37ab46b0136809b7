"""Errors a user can act on.

Everything the library raises on purpose derives from :class:`TaltasksError`. The Invoke
layer prints such an error as one line (plus an optional hint) and exits non-zero, never
with a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class TaltasksError(Exception):
    """An expected failure: bad input, an unreachable endpoint, a gate that did not pass.

    ``where`` names the place (``file:line``, a node, an endpoint) and ``hint`` says how
    to fix it; both are optional but most errors should carry at least one.
    """

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def render(self) -> str:
        """The text shown to the user: one line, then the hint on its own line if any."""
        return f"{self}\n  hint: {self.hint}" if self.hint else str(self)


class InputError(TaltasksError):
    """The repository, a file or a command-line argument is wrong; nothing was changed."""

    exit_code = 2


class ConnectionFailed(TaltasksError):
    """An endpoint (Talos API, Kubernetes API) could not be reached or refused us."""

    exit_code = 3


class OperationFailed(TaltasksError):
    """A workflow step or health gate failed; the message says which and what was seen."""

    exit_code = 4
