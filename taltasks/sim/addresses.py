"""Loopback address plans for simulated clusters.

Every simulated cluster lives in one 127.X.Y.0/24: ``.10`` is the Kubernetes API endpoint
(port 6443), control planes count up from ``.11``, workers from ``.21`` (``.21 + i`` for
the i-th worker; more than 9 control planes or 200 workers do not fit). Linux routes the
whole of 127.0.0.0/8 to ``lo``, so binding these needs no set-up; :func:`free_subnet`
finds a /24 nobody on this machine is using, so parallel test runs do not collide.
"""

from __future__ import annotations

import ipaddress
import random
import socket

TALOS_PORT = 50000
KUBE_PORT = 6443
MAX_CONTROL_PLANES = 9
MAX_WORKERS = 200


class AddressError(ValueError):
    pass


def check_loopback(address: str) -> str:
    """Refuse anything outside 127.0.0.0/8: the simulator must never touch a real network."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise AddressError(f"{address!r} is not an IP address") from None
    if ip.version != 4 or ip not in ipaddress.ip_network("127.0.0.0/8"):
        raise AddressError(
            f"{address} is not a loopback address (127.0.0.0/8); the simulator only uses loopback"
        )
    return address


def subnet_base(subnet: str) -> str:
    """``127.X.Y.0/24`` or ``127.X.Y`` → ``127.X.Y``."""
    net = subnet.split("/")[0]
    parts = net.split(".")
    if len(parts) == 4:
        parts = parts[:3]
    base = ".".join(parts)
    check_loopback(base + ".1")
    return base


def api_address(subnet: str) -> str:
    return f"{subnet_base(subnet)}.10"


def control_plane_address(subnet: str, index: int) -> str:
    if not 0 <= index < MAX_CONTROL_PLANES:
        raise AddressError(f"at most {MAX_CONTROL_PLANES} control planes fit a simulated subnet")
    return f"{subnet_base(subnet)}.{11 + index}"


def worker_address(subnet: str, index: int) -> str:
    if not 0 <= index < MAX_WORKERS:
        raise AddressError(f"at most {MAX_WORKERS} workers fit a simulated subnet")
    return f"{subnet_base(subnet)}.{21 + index}"


def is_free(address: str, port: int) -> bool:
    """True when nothing listens on ``address:port`` and we may bind it."""
    check_loopback(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def free_subnet(rng: random.Random | None = None, attempts: int = 200) -> str:
    """A ``127.X.Y.0/24`` whose API, first control-plane and first worker ports are free."""
    rng = rng or random.Random()
    for _ in range(attempts):
        base = f"127.{rng.randint(100, 250)}.{rng.randint(1, 254)}"
        probes = [(f"{base}.10", KUBE_PORT), (f"{base}.11", TALOS_PORT), (f"{base}.21", TALOS_PORT)]
        if all(is_free(a, p) for a, p in probes):
            return f"{base}.0/24"
    raise AddressError("no free 127.X.Y.0/24 found for a simulated cluster")


def closed_port(address: str = "127.0.0.1") -> int:
    """A loopback port with nothing listening: how tests reach an "unreachable endpoint"."""
    check_loopback(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]
