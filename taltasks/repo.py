"""Where a checkout keeps what the tools need, and how explicit choices override it.

The layout (also what ``.envrc`` exports):

* ``talos/clusterconfig/talosconfig`` — written by ``invoke configure``;
* ``kubeconfig`` at the repository root — written by ``invoke bootstrap`` / ``talos.kubeconfig --out``;
* ``.taltasks/`` — run journals (git-ignored).

Precedence for both configs: the task's ``--talosconfig``/``--kubeconfig`` option, then the
environment variable, then the checkout's file when it exists, then the tool's own default
(``~/.talos/config``, ``~/.kube/config``).
"""

from __future__ import annotations

import os
from pathlib import Path

TALOSCONFIG = Path("talos") / "clusterconfig" / "talosconfig"
KUBECONFIG = Path("kubeconfig")
STATE_DIR = Path(".taltasks")


def talosconfig_path(root: Path, explicit: str | Path | None = None) -> Path | None:
    """The talosconfig to use, or None for the client's own default (``~/.talos/config``)."""
    if explicit:
        return Path(explicit)
    if os.environ.get("TALOSCONFIG"):
        return Path(os.environ["TALOSCONFIG"])
    candidate = root / TALOSCONFIG
    return candidate if candidate.exists() else None


def kubeconfig_path(root: Path, explicit: str | Path | None = None) -> Path | None:
    """The kubeconfig to use, or None for the client's own default (``~/.kube/config``)."""
    if explicit:
        return Path(explicit)
    if os.environ.get("KUBECONFIG"):
        return Path(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    candidate = root / KUBECONFIG
    return candidate if candidate.exists() else None
