"""The repository's description of the cluster and how to operate it, as plain values.

``load_cluster(root)`` reads ``talos/talconfig.yaml`` + ``talenv.yaml``; ``policy.load_policy``
reads the upgrade policy. Everything is validated with ``file:line`` errors and returned as
values; nothing in this package talks to a cluster. Importing it is cheap (no YAML library
is loaded until a file is read).
"""

from __future__ import annotations

from taltasks.model.cluster import Cluster, MachineSpec, Node, PatchRef
from taltasks.model.talconfig import DefinitionError, load_cluster

__all__ = ["Cluster", "DefinitionError", "MachineSpec", "Node", "PatchRef", "load_cluster"]
