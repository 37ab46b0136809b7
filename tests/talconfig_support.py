"""Small talconfig.yaml repositories for the talhelper-field tests (one field per case)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from taltasks.machineconfig.render import Renderer
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.model import load_cluster

TALCONFIG = """\
clusterName: lab
endpoint: https://192.0.2.10:6443
talosVersion: {talos}
kubernetesVersion: {k8s}
{extra}
nodes:
  - hostname: cp-1
    ipAddress: 192.0.2.11
    controlPlane: true
    installDisk: /dev/sda
{nodes}
"""
K8S = {"v1.11.5": "v1.34.1", "v1.12.4": "v1.35.0", "v1.13.9": "v1.36.4", "v1.14.0": "v1.37.0"}


def write_repo(
    root: Path,
    *,
    talos: str = "v1.13.9",
    extra: str = "",
    nodes: str = "",
    files: dict[str, str] | None = None,
) -> Path:
    (root / "talos").mkdir(parents=True, exist_ok=True)
    text = TALCONFIG.format(
        talos=talos,
        k8s=K8S[talos],
        extra=textwrap.dedent(extra).strip(),
        nodes=textwrap.indent(textwrap.dedent(nodes).strip(), "  "),
    )
    (root / "talos" / "talconfig.yaml").write_text(text)
    for name, body in (files or {}).items():
        path = root / "talos" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root


def documents(root: Path, secrets: SecretsBundle, hostname: str = "cp-1") -> list[dict]:
    cluster = load_cluster(root)
    return Renderer(cluster, secrets).documents(cluster.node(hostname))


def kinds(docs: list[dict]) -> list[str]:
    return [f"{d['kind']}/{d['name']}" if d.get("name") else d["kind"] for d in docs[1:]]


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)
