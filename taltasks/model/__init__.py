"""The repository's description of the cluster and how to operate it, as plain values.

Everything here is read from YAML files in the checkout, validated with ``file:line``
errors, and returned as frozen values; nothing in this package talks to a cluster.
"""
