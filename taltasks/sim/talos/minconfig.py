"""Minimal machine configs for simulated nodes started "already configured".

When ``sim.up`` runs without a repository, nodes still need a config to take their
identity from. This renders just the fields a simulated node reads (role, CAs, hostname,
installer and component images, cluster endpoint) — not a full Talos config; the real
generator (``taltasks.machineconfig``) is used when a repository is given.
"""

from __future__ import annotations

import base64

import yaml

from taltasks.machineconfig import pki


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def render(
    *,
    cluster_name: str,
    endpoint: str,
    hostname: str,
    ip: str,
    control_plane: bool,
    version: str,
    kubernetes_version: str,
    os_ca: pki.KeyPair,
    k8s_ca: pki.KeyPair,
) -> bytes:
    machine = {
        "type": "controlplane" if control_plane else "worker",
        "token": "simula.tedtokenvalue0",
        "ca": {"crt": _b64(os_ca.crt), "key": _b64(os_ca.key) if control_plane else ""},
        "certSANs": [ip],
        "kubelet": {"image": f"ghcr.io/siderolabs/kubelet:{kubernetes_version}"},
        "network": {"hostname": hostname},
        "install": {"disk": "/dev/sda", "image": f"ghcr.io/siderolabs/installer:{version}"},
    }
    cluster = {
        "clusterName": cluster_name,
        "controlPlane": {"endpoint": endpoint},
        "ca": {"crt": _b64(k8s_ca.crt), "key": _b64(k8s_ca.key) if control_plane else ""},
        "proxy": {"image": f"registry.k8s.io/kube-proxy:{kubernetes_version}"},
    }
    if control_plane:
        for comp, name in (
            ("apiServer", "kube-apiserver"),
            ("controllerManager", "kube-controller-manager"),
            ("scheduler", "kube-scheduler"),
        ):
            cluster[comp] = {"image": f"registry.k8s.io/{name}:{kubernetes_version}"}
    doc = {"version": "v1alpha1", "debug": False, "persist": True, "machine": machine, "cluster": cluster}
    return yaml.safe_dump(doc, sort_keys=False).encode()


def kubeconfig(cluster_name: str, server: str, k8s_ca: pki.KeyPair) -> str:
    """An admin kubeconfig like the one Talos hands out (client cert, O=system:masters)."""
    admin = pki.issue(k8s_ca, usage="client", organizations=["system:masters"], common_name="admin")
    user = f"admin@{cluster_name}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {"server": server, "certificate-authority-data": _b64(k8s_ca.crt)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(admin.crt),
                    "client-key-data": _b64(pki.openssl_key_pem(admin.key)),
                },
            }
        ],
        "contexts": [
            {"name": user, "context": {"cluster": cluster_name, "namespace": "default", "user": user}}
        ],
        "current-context": user,
    }
    return yaml.safe_dump(doc, sort_keys=False)
