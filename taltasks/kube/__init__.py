"""Talking to a Kubernetes API from the workflows: a client from a kubeconfig context,
node readiness, cordon/uncordon, a PDB-respecting drain, Flux suspend/resume, typed readers
for Rook-Ceph and CloudNativePG, and a watch helper that survives 410 Gone.

Nothing here imports the ``kubernetes`` package at module level (``invoke --list`` must
stay cheap); every function takes a :class:`~taltasks.kube.client.KubeClient`, returns
plain dataclasses, bounds its waiting by a deadline and reports through an
:class:`~taltasks.events.Emitter`.
"""
