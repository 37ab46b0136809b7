"""The talosconfig that goes with generated machine configs.

One context named after the cluster: the OS CA, and an ``os:admin`` client certificate
(Ed25519, signed by the OS CA, valid one year — talos-config-gen.md §1.3); endpoints are the
control-plane IPs, nodes every node IP (talhelper's choice). A certificate is random by
nature, so to keep ``configure`` idempotent an existing talosconfig's credential is reused
while it is still good: signed by this cluster's OS CA, ``os:admin``, and valid for at least
:data:`RENEW_BEFORE` more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from taltasks.machineconfig import pki
from taltasks.machineconfig.secrets import SecretsBundle
from taltasks.talos.config import Context, TalosConfig

ADMIN_ROLE = "os:admin"
RENEW_BEFORE = dt.timedelta(days=30)


def admin_credential(secrets: SecretsBundle, *, roles: Sequence[str] = (ADMIN_ROLE,)) -> pki.KeyPair:
    return pki.issue(secrets.os, usage="client", organizations=list(roles), validity=pki.ONE_YEAR)


def credential_reusable(
    ctx: Context | None, secrets: SecretsBundle, *, now: dt.datetime | None = None
) -> bool:
    """True when ``ctx`` holds a client certificate this cluster can keep using."""
    if ctx is None or not ctx.crt or not ctx.key or ctx.ca != secrets.os.crt:
        return False
    try:
        cert = pki.load_certificate(ctx.crt)
        pki.load_private_key(ctx.key)
        if not pki.verify_signed_by(ctx.crt, secrets.os.crt):
            return False
    except pki.PKIError:
        return False
    moment = now or pki.now()
    return ADMIN_ROLE in pki.organizations(cert) and cert.not_valid_after_utc - moment > RENEW_BEFORE


def build_talosconfig(
    name: str,
    secrets: SecretsBundle,
    *,
    endpoints: Sequence[str] = (),
    nodes: Sequence[str] = (),
    previous: TalosConfig | None = None,
) -> TalosConfig:
    """A talosconfig with one context ``name``; reuses ``previous``'s credential when good."""
    old = previous.contexts.get(name) if previous else None
    if credential_reusable(old, secrets):
        assert old is not None
        crt, key = old.crt, old.key
    else:
        pair = admin_credential(secrets)
        crt, key = pair.crt, pair.key
    ctx = Context(
        name=name, endpoints=list(endpoints), nodes=list(nodes), ca=secrets.os.crt, crt=crt, key=key
    )
    return TalosConfig(contexts={name: ctx}, current=name)
