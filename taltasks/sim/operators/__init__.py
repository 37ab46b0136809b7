"""Simulated Rook-Ceph, CloudNativePG and Flux, driven purely by Kubernetes objects.

They watch what the real operators watch — Node readiness and ``spec.unschedulable``, their
own pods — and write the status fields the real ones write, with the timing behaviour that
makes upgrade gates necessary (health lags a node's return, ``lastChecked`` only moves on
the polling interval, switchovers bump the timeline). See health-gates.md for the facts
they follow and docs/simulator-kubernetes.md for what is simplified.
"""
