"""Rules of contract 1.14: old and new form of one setting, control-plane-only documents.

* **old and new form together** — a v1alpha1 section that a 1.14 document took over is
  refused while that document is in the config (each document's
  ``V1Alpha1ConflictValidate`` upstream). The 1.14 generator writes those documents, so
  this is what an old-form repo patch runs into; the error names the patch's own
  ``file:line`` and its hint is the exact documents to write instead
  (:mod:`taltasks.machineconfig.docmap`). Sections Talos reads in both forms (sysctls,
  kernel modules, …) are not errors: the decode step warns that they are deprecated.
* **control-plane-only documents on a worker** — Talos refuses the Kubernetes control-plane
  documents (``ControlplaneOnlyConfig`` upstream) on other machine types; a global patch
  adding one reaches the workers too.
"""

from __future__ import annotations

from taltasks.machineconfig.docmap import CHECKED_ELSEWHERE, MOVES, lookup, replacement_yaml
from taltasks.machineconfig.validate.registry import RuleContext, rule

# Kinds Talos allows on control-plane machines only (types implementing ControlplaneOnlyDocument).
CONTROL_PLANE_ONLY = frozenset(
    {
        "KubeAdmissionControlConfig",
        "KubeAggregatorCAConfig",
        "KubeAPIServerConfig",
        "KubeAuditPolicyConfig",
        "KubeAuthenticationConfig",
        "KubeAuthorizerConfig",
        "KubeControllerManagerConfig",
        "KubeCoreDNSConfig",
        "KubeEtcdEncryptionConfig",
        "KubeFlannelCNIConfig",
        "KubeProxyConfig",
        "KubeSchedulerConfig",
        "KubeServiceAccountConfig",
        "KubeTalosAPIAccessConfig",
    }
)


def _conflicting(ctx: RuleContext, kinds: tuple[str, ...], old: tuple[str, ...]) -> list[str]:
    present = [k for k in kinds if ctx.documents(k)]
    if old == ("machine", "features", "hostDNS"):
        # ResolverConfig conflicts with features.hostDNS only when it sets hostDNS itself
        present = [k for k in present if any(d.get("hostDNS") for d in ctx.documents(k))]
    return present


@rule("v1alpha1-and-document-exclusive", first="1.14")
def _old_and_new_form(ctx: RuleContext) -> None:
    v1 = ctx.v1alpha1
    if v1 is None:
        return
    for moved in MOVES:
        if not moved.exclusive or moved.old in CHECKED_ELSEWHERE:
            continue
        value = lookup(v1, moved.old)
        if value is None or value == "":
            continue
        present = _conflicting(ctx, moved.exclusive, moved.old)
        if not present:
            continue
        translation = moved.translate(value)
        hint = "write it as documents instead (a strategic merge patch; remove the v1alpha1 form):\n"
        hint += replacement_yaml(translation) if translation.documents else "(nothing to write)"
        for path, why in translation.dropped:
            where = ".".join((*moved.old, *path))
            hint += f"\n{where}: {why}"
        documents = " and ".join(present)
        ctx.error(
            v1,
            moved.old,
            f"{moved.label} is the v1alpha1 form of what the {documents} document{'s' if len(present) > 1 else ''} "
            f"of contract {ctx.contract} hold{'' if len(present) > 1 else 's'}; Talos refuses both together",
            hint=hint,
        )


@rule("control-plane-only-documents", first="1.14")
def _control_plane_only(ctx: RuleContext) -> None:
    if ctx.v1alpha1 is None or ctx.control_plane:
        return
    for doc in ctx.docs:
        kind = doc.get("kind")
        if kind in CONTROL_PLANE_ONLY:
            ctx.error(
                doc,
                (),
                f"{kind} is a control-plane document; Talos refuses it on a {ctx.machine.get('type') or 'worker'} node",
                hint="apply the patch that adds it to control planes only (controlPlane.patches in talconfig.yaml)",
            )
