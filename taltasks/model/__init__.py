"""The cluster definition: ``talos/talconfig.yaml`` + ``talenv.yaml`` as validated values.

``load_cluster(root)`` is the entry point; :class:`Cluster` and :class:`Node` are what the
rest of taltasks plans with. Importing this package is cheap (no YAML library is loaded
until a file is read).
"""

from __future__ import annotations

from taltasks.model.cluster import Cluster, MachineSpec, Node, PatchRef
from taltasks.model.talconfig import DefinitionError, load_cluster

__all__ = ["Cluster", "DefinitionError", "MachineSpec", "Node", "PatchRef", "load_cluster"]
