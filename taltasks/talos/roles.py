"""Which Talos role a task needs, checked against the talosconfig before anything is done.

Talos authorises by the ``os:*`` roles in the client certificate's Organization (apid RBAC,
``internal/app/machined/pkg/system/services/machined.go`` rules): ``os:reader`` may read
(Version, ServiceList, Events, non-sensitive COSI resources, etcd status), ``os:operator``
also reboots, shuts down, restarts services, pulls images and takes etcd snapshots,
``os:etcd:backup`` takes etcd snapshots only, and ``os:admin`` may do everything — apply a
config, upgrade, reset, bootstrap, read the machine config or the kubeconfig.

A task that changes things asks :func:`require` first, so a read-only talosconfig is told
which role it lacks before the first call instead of failing half-way (a cordoned node, a
suspended Flux). Contexts without a client certificate (Omni, basic auth behind a proxy)
have no roles we can see; the server decides for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from taltasks.errors import InputError

if TYPE_CHECKING:
    from taltasks.talos.client import TalosClient
    from taltasks.talos.config import Context

ADMIN = "os:admin"
OPERATOR = "os:operator"
READER = "os:reader"
ETCD_BACKUP = "os:etcd:backup"

ADMIN_ONLY = frozenset({ADMIN})
OPERATE = frozenset({ADMIN, OPERATOR})
SNAPSHOT = frozenset({ADMIN, OPERATOR, ETCD_BACKUP})
READ = frozenset({ADMIN, OPERATOR, READER})


def certificate_roles(crt_pem: bytes | None) -> frozenset[str] | None:
    """The ``os:*`` roles in a client certificate's Organization; None without one."""
    if not crt_pem:
        return None
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_pem_x509_certificate(crt_pem)
    except ValueError:
        return None
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return frozenset(str(o.value) for o in orgs if str(o.value).startswith("os:"))


def require(client: TalosClient, allowed: frozenset[str], what: str) -> None:
    """Refuse ``what`` unless the client's certificate carries one of ``allowed``."""
    _check(client.roles, client.context_name, allowed, what)


def require_context(context: Context, allowed: frozenset[str], what: str) -> None:
    """:func:`require` for a talosconfig context, before any client exists."""
    _check(certificate_roles(context.crt), context.name, allowed, what)


def _check(roles: frozenset[str] | None, context: str | None, allowed: frozenset[str], what: str) -> None:
    if roles is None or roles & allowed:
        return
    need = " or ".join(sorted(allowed, key=lambda r: (r != ADMIN, r)))
    have = ", ".join(sorted(roles)) or "no os:* role"
    where = f"talosconfig context {context!r}" if context else "talosconfig"
    raise InputError(
        f"{what} needs the {need} role, and the {where} has {have}; nothing was done",
        hint="use a talosconfig whose client certificate has that role (`invoke configure` writes an os:admin one)",
    )
