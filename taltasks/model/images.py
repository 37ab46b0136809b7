"""Container image references: the tag a version lives in, and moving an image to a version.

Kubernetes components and the kubelet are pinned by image tag (``registry.k8s.io/
kube-apiserver:v1.35.0``, ``ghcr.io/siderolabs/kubelet:v1.35.0``). Upgrades keep the
repository a cluster already uses (a mirror, a private registry) and change only the tag.
"""

from __future__ import annotations


def split(image: str) -> tuple[str, str | None]:
    """``repo[:tag][@digest]`` → (repository, tag or None); the digest is dropped. A
    registry port (``host:5000/x``) is not mistaken for a tag."""
    ref = image.split("@", 1)[0]
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, None
    return repo, tag


def image_tag(image: str | None) -> str | None:
    """``ghcr.io/siderolabs/installer:v1.12.1`` → ``v1.12.1`` (None without a tag)."""
    if not image:
        return None
    return split(image)[1]


def retag(image: str, tag: str) -> str:
    """The same repository at ``tag`` (any digest pin is dropped: it named the old tag)."""
    return f"{split(image)[0]}:{tag}"
