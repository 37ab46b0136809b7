"""Syntax checks shared by the cluster definition and generated-config validation:
IP addresses, CIDRs, DNS names, Kubernetes label keys/values, taints and endpoint URLs.
Each returns a problem sentence or ``None`` so callers can attach their own location."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_NAME = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def ip_problem(value: Any) -> str | None:
    try:
        ipaddress.ip_address(str(value).strip())
    except ValueError:
        return f"{value!r} is not an IP address"
    return None


def is_cidr(value: Any) -> bool:
    text = str(value)
    if "/" not in text:
        return False
    try:
        ipaddress.ip_interface(text)
    except ValueError:
        return False
    return True


def cidr_problem(value: Any, example: str = "10.244.0.0/16") -> str | None:
    return None if is_cidr(value) else f"{value!r} is not a CIDR (like {example})"


def dns_name_problem(value: Any) -> str | None:
    text = str(value)
    if len(text) > 253 or not DNS_NAME.match(text):
        return f"{text!r} is not a valid DNS name (lower-case letters, digits, '-' and '.')"
    return None


def label_key_problem(key: Any) -> str | None:
    prefix, _, name = str(key).rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS_NAME.match(prefix)):
        return f"{key!r} is not a valid Kubernetes label key (bad prefix {prefix!r})"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return f"{key!r} is not a valid Kubernetes label key"
    return None


def label_value_problem(value: Any) -> str | None:
    text = "" if value is None else str(value)
    if text and (len(text) > 63 or not _LABEL_NAME.match(text)):
        return f"{text!r} is not a valid Kubernetes label value"
    return None


def taint_problem(key: Any, value: Any) -> str | None:
    problem = label_key_problem(key)
    if problem:
        return problem.replace("label key", "taint key")
    effect = str(value or "").rpartition(":")[2]
    if effect not in TAINT_EFFECTS:
        return f"taint {key}: {value!r} needs an effect, one of {', '.join(TAINT_EFFECTS)} (like `value:NoSchedule`)"
    return None


def endpoint_problem(endpoint: str, *, require_https: bool = False) -> str | None:
    """Talos's ``ValidateEndpointURI`` (URL, host, numeric port); ``require_https`` adds the
    rule ``talosctl gen config`` applies."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        return f"endpoint {endpoint!r} is not a valid URL ({exc})"
    if not parts.scheme or not parts.hostname or not parts.hostname.strip():
        return f"endpoint {endpoint!r} needs a scheme and a host, like https://192.0.2.10:6443"
    if require_https and parts.scheme != "https":
        return f"endpoint {endpoint!r} must use https://"
    if port is not None and not 0 < port < 65536:
        return f"endpoint {endpoint!r} has an invalid port"
    return None
