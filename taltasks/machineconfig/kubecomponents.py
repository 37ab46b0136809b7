"""Where a Talos machine config names each Kubernetes component's image.

``talosctl upgrade-k8s`` moves a cluster to a Kubernetes version by changing these images
in the nodes' configs (control-plane components on control planes, kube-proxy there too,
the kubelet everywhere). Up to contract 1.13 they sit in the ``v1alpha1`` document
(``cluster.apiServer.image`` …); a contract-1.14 config may carry them in their own
documents (``KubeAPIServerConfig.image`` …), which then win. ``talos.upgrade-k8s`` and the
simulated tuppr's ``upgrade-k8s`` Job both read this one table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    name: str  # kube-apiserver, …, kube-proxy, kubelet
    path: tuple[str, ...]  # where its image sits in the v1alpha1 document
    repository: str  # the image repository Talos uses when the config names none
    resource: str | None = None  # the COSI config resource a control plane publishes
    document: str | None = None  # the contract-1.14 document holding ``image`` instead

    def locate(self, raw: bytes) -> tuple[str | None, tuple[str, ...]]:
        """(document kind or None for v1alpha1, key path) of the image in this config."""
        from taltasks.machineconfig.edit import has_document

        if self.document and has_document(raw, self.document):
            return self.document, ("image",)
        return None, self.path

    def where(self, raw: bytes) -> str:
        kind, path = self.locate(raw)
        return f"{kind}.{'.'.join(path)}" if kind else ".".join(path)

    def image_in(self, raw: bytes) -> str | None:
        """The image this config names (None when it leaves it to Talos's default)."""
        from taltasks.machineconfig.edit import get_field

        kind, path = self.locate(raw)
        value = get_field(raw, path, kind=kind)
        return str(value) if value else None

    def with_image(self, raw: bytes, image: str, *, where: str | None = None) -> bytes | None:
        """``raw`` with this component's image set to ``image`` (None when it already is)."""
        from taltasks.machineconfig.edit import get_field, set_fields

        kind, path = self.locate(raw)
        if get_field(raw, path, kind=kind) == image:
            return None
        return set_fields(raw, {path: image}, where=where, kind=kind)


CONTROL_PLANE = (
    Component(
        "kube-apiserver",
        ("cluster", "apiServer", "image"),
        "registry.k8s.io/kube-apiserver",
        "APIServerConfigs.kubernetes.talos.dev",
        "KubeAPIServerConfig",
    ),
    Component(
        "kube-controller-manager",
        ("cluster", "controllerManager", "image"),
        "registry.k8s.io/kube-controller-manager",
        "ControllerManagerConfigs.kubernetes.talos.dev",
        "KubeControllerManagerConfig",
    ),
    Component(
        "kube-scheduler",
        ("cluster", "scheduler", "image"),
        "registry.k8s.io/kube-scheduler",
        "SchedulerConfigs.kubernetes.talos.dev",
        "KubeSchedulerConfig",
    ),
)
KUBE_PROXY = Component(
    "kube-proxy", ("cluster", "proxy", "image"), "registry.k8s.io/kube-proxy", document="KubeProxyConfig"
)
KUBELET = Component(
    "kubelet", ("machine", "kubelet", "image"), "ghcr.io/siderolabs/kubelet", document="KubeletConfig"
)
BY_NAME = {c.name: c for c in (*CONTROL_PLANE, KUBE_PROXY, KUBELET)}


def proxy_disabled_in(raw: bytes) -> bool:
    """Whether the config turns kube-proxy off (``cluster.proxy.disabled``, or a
    ``KubeProxyConfig`` with ``enabled: false``)."""
    from taltasks.machineconfig.edit import get_field

    return bool(get_field(raw, ("cluster", "proxy", "disabled"))) or (
        get_field(raw, ("enabled",), kind="KubeProxyConfig") is False
    )
