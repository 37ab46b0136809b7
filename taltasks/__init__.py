"""taltasks: run Talos Linux Kubernetes clusters from a GitOps checkout with Invoke.

The package is a plain library (``model``, ``machineconfig``, ``talos``, ``kube``, ``gates``,
``workflows``, ``sim``); ``taltasks.tasks`` is the thin Invoke layer on top. Importing the
package or the task collections must stay cheap: heavy libraries load where they are used.
"""

__version__ = "0.1.0"
