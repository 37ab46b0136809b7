"""Talos 1.13+ LifecycleService and ImageService on a simulated node.

As upstream (``internal/app/lifecycle``, ``internal/app/images``, v1.13.9 / v1.14.0-rc.1):

* ``ImageService.Pull`` pulls into one containerd instance (driver + namespace): layer
  progress, then the reference pinned to its digest; an image the registry does not have
  is NotFound, and nothing is stored. ``List`` lists one instance's images.
* ``LifecycleService.Upgrade`` runs the installer from an image *already pulled* into the
  same instance (else Internal "…not found in containerd store"), one install/upgrade at a
  time (FailedPrecondition), streams its output and ends with its exit code — a failure is
  an exit code, not a gRPC error. It does not pull, does not check etcd, does not change
  the machine stage and does not reboot: the node runs the new version after the next
  reboot. ``Install`` refuses an installed machine (every configured node is).

Whether these services exist on a node at all is its minor's business (apid checks
:mod:`.versions` before a handler runs).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import grpc

from taltasks.sim.talos import configview
from taltasks.sim.talos.machined import Call, RpcError
from taltasks.talos.api import common_pb2
from taltasks.talos.api import image_pb2 as img
from taltasks.talos.api import lifecycle_pb2 as lc

if TYPE_CHECKING:
    from taltasks.sim.talos.node import SimNode


def instance_key(instance: common_pb2.ContainerdInstance) -> str:
    """``system`` or ``cri``: the containerd namespace an image lives in (the driver only
    says which containerd serves it)."""
    if instance.namespace == common_pb2.NS_SYSTEM:
        return "system"
    if instance.namespace == common_pb2.NS_CRI:
        return "cri"
    raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "unsupported containerd namespace: NS_UNKNOWN")


def digest_of(ref: str) -> str:
    return "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


def pinned(ref: str) -> str:
    """``repo:tag`` → ``repo:tag@sha256:…`` as Pull reports what it pulled."""
    return ref if "@" in ref else f"{ref}@{digest_of(ref)}"


class Images:
    """``machine.ImageService`` handlers (method names as on the wire)."""

    @staticmethod
    def Pull(
        node: SimNode, req: img.ImageServicePullRequest, call: Call
    ) -> Iterator[img.ImageServicePullResponse]:
        where = instance_key(req.containerd)
        ref = req.image_ref
        if not ref:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "image reference is required")
        if not node.cluster.registry_has(ref):
            node.record("talos.image_pull", image=ref, namespace=where, source="ImageService", found=False)
            raise RpcError(
                grpc.StatusCode.NOT_FOUND,
                f'error pulling image: failed to resolve reference "{ref}": {ref}: not found',
            )
        store = node.image_store(where)
        layer = digest_of(ref + "#layer")[7:19]
        Status = img.ImageServicePullLayerProgress
        if ref in store:
            yield img.ImageServicePullResponse(
                pull_progress=img.ImageServicePullProgress(
                    layer_id=layer, progress=Status(status=Status.ALREADY_EXISTS)
                )
            )
        else:
            total = 64 * 1024 * 1024
            for status, offset in ((Status.DOWNLOADING, total // 2), (Status.DOWNLOAD_COMPLETE, total)):
                if not call.is_active():
                    return
                node._sleep(node.timings.image_pull / 2)
                yield img.ImageServicePullResponse(
                    pull_progress=img.ImageServicePullProgress(
                        layer_id=layer, progress=Status(status=status, offset=offset, total=total)
                    )
                )
            store.add(ref)
        node.record("talos.image_pull", image=ref, namespace=where, source="ImageService", found=True)
        yield img.ImageServicePullResponse(name=pinned(ref))

    @staticmethod
    def List(
        node: SimNode, req: img.ImageServiceListRequest, call: Call
    ) -> Iterator[img.ImageServiceListResponse]:
        from google.protobuf.timestamp_pb2 import Timestamp

        created = Timestamp()
        created.FromNanoseconds(int(time.time() * 1e9))
        for ref in sorted(node.image_store(instance_key(req.containerd))):
            yield img.ImageServiceListResponse(
                name=ref, digest=digest_of(ref), size=64 * 1024 * 1024, created_at=created
            )


class Lifecycle:
    """``machine.LifecycleService`` handlers."""

    @staticmethod
    def Install(
        node: SimNode, req: lc.LifecycleServiceInstallRequest, call: Call
    ) -> Iterator[lc.LifecycleServiceInstallResponse]:
        if not node.maintenance:
            raise RpcError(grpc.StatusCode.ALREADY_EXISTS, "machine is already installed")
        raise RpcError(
            grpc.StatusCode.FAILED_PRECONDITION, "installation needs a SideroLink admin (not simulated)"
        )
        yield  # pragma: no cover - a generator, like every streaming handler

    @staticmethod
    def Upgrade(
        node: SimNode, req: lc.LifecycleServiceUpgradeRequest, call: Call
    ) -> Iterator[lc.LifecycleServiceUpgradeResponse]:
        lock = node.lifecycle_lock
        if not lock.acquire(blocking=False):
            raise RpcError(
                grpc.StatusCode.FAILED_PRECONDITION, "another installation/upgrade is already in progress"
            )
        try:
            yield from _upgrade(node, req, call)
        finally:
            lock.release()


def _progress(message: str | None = None, exit_code: int | None = None) -> lc.LifecycleServiceUpgradeResponse:
    if exit_code is not None:
        return lc.LifecycleServiceUpgradeResponse(
            progress=lc.LifecycleServiceInstallProgress(exit_code=exit_code)
        )
    return lc.LifecycleServiceUpgradeResponse(progress=lc.LifecycleServiceInstallProgress(message=message))


def _upgrade(
    node: SimNode, req: lc.LifecycleServiceUpgradeRequest, call: Call
) -> Iterator[lc.LifecycleServiceUpgradeResponse]:
    if node.maintenance:
        raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, "machine is not installed")
    image = req.source.image_name
    if not image:
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "installer image name is required")
    where = instance_key(req.containerd)
    if image not in node.image_store(where):
        raise RpcError(
            grpc.StatusCode.INTERNAL,
            f'upgrade failed: installer image "{image}" not found in containerd store: image "{image}": not found',
        )
    node.record("talos.lifecycle_upgrade", image=image, namespace=where)
    yield _progress(f"running installer {image}")
    node._sleep(node.timings.upgrade_pull)
    while node.faults.upgrade_hangs and call.is_active() and not node.cluster.stopping.is_set():
        node._sleep(0.1)
    tag = configview.image_tag(image)
    if not tag or not _is_version(tag):
        yield _progress(f"error: the installer image {image} does not say which Talos it installs")
        node.record("talos.lifecycle_upgrade_done", image=image, exit_code=1)
        yield _progress(exit_code=1)
        return
    yield _progress(f"installing Talos {tag} to the system disk")
    node.installed_version = tag
    yield _progress("upgrade finished; the new version runs after a reboot")
    node.record("talos.lifecycle_upgrade_done", image=image, exit_code=0, version=tag)
    yield _progress(exit_code=0)


def _is_version(tag: str) -> bool:
    from taltasks.model.versions import Version

    try:
        Version.parse(tag)
    except ValueError:
        return False
    return True
