"""The Invoke collections, assembled from small task modules.

Each module in :data:`MODULES` declares ``COLLECTION`` — ``""`` for the root, or a dotted
name such as ``"talos"`` or ``"talos.config"`` — and every invoke task defined in it lands
in that collection. Adding a task module is one line here. Only invoke and our own light
modules are imported at this point (``invoke --list`` stays fast; a test guards it).
"""

from __future__ import annotations

import importlib

from invoke import Collection, Task

MODULES: tuple[str, ...] = (
    "configure",
    "bootstrap",
    "demo",
    "talos_genconfig",
    "sim",
    "talos_read",
    "talos_config",
    "talos_node",
    "talos_upgrade",
    "talos_handoff",
    "talos_k8s",
    "talos_cni",
    "etcd",
)


def _collection_for(root: Collection, dotted: str) -> Collection:
    coll = root
    for part in filter(None, dotted.split(".")):
        try:
            coll = coll.collections[part]
        except KeyError:
            child = Collection(part)
            coll.add_collection(child)
            coll = child
    return coll


def namespace() -> Collection:
    root = Collection()
    for name in MODULES:
        module = importlib.import_module(f"taltasks.tasks.{name}")
        target = _collection_for(root, getattr(module, "COLLECTION", ""))
        for value in vars(module).values():
            if isinstance(value, Task) and value.__module__ == module.__name__:
                target.add_task(value)
    return root
