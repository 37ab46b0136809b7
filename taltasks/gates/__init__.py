"""Health gates: what must hold before and after each node of a rolling upgrade.

A gate is data (:class:`taltasks.model.policy.GateSpec`): a kind and its settings. Each
kind has an observer (``talosnode``, ``etcd``, ``kubenode``, ``ceph``, ``cnpg``,
``expression``) that turns what the sources report into :class:`~taltasks.gates.checks.Check`
values — one named condition, whether it holds, the value last seen, and since when the
operator says it has held. :class:`~taltasks.gates.engine.GateEngine` waits until every
gate of a stage holds together, for its stability window, before its deadline.

Sources are protocols (:mod:`taltasks.gates.sources`): the Kubernetes and Talos clients
provide adapters; :mod:`taltasks.gates.memory` holds in-memory ones for pure tests.
"""
