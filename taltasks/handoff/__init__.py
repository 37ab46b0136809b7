"""Handing upgrades to an engine that runs inside the cluster (today: tuppr).

:mod:`taltasks.handoff.tuppr` turns the repository's desired state — versions, installer
images, the policy's health checks, batching and maintenance windows — into tuppr's
``TalosUpgrade`` / ``KubernetesUpgrade`` resources and checks them against tuppr's own CRD
schemas (shipped next to it, see ``TUPPR_CRDS.md``). The workflow around it (observe,
prove batches safe, apply or write into the Flux tree, read progress back) is
:mod:`taltasks.workflows.handoff`.
"""
