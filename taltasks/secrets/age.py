"""age keys: which one sops will use, creating new ones, and spotting the demo key.

sops reads the private key from ``$SOPS_AGE_KEY_FILE`` (or ``$SOPS_AGE_KEY``, or
``~/.config/sops/age/keys.txt``). The shipped demo repository commits a **throw-away** key at
``talos/demo.agekey`` so the demo runs from a bare checkout; :func:`sops_environment` falls
back to it only when none of the usual sources is set. It protects nothing — anyone can read
it — and :func:`demo_key_warning` says so loudly when it guards a non-loopback cluster.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from pathlib import Path

DEMO_KEY = Path("talos") / "demo.agekey"
_SECRET = re.compile(r"^AGE-SECRET-KEY-1[0-9A-Z]+$", re.M)
_PUBLIC = re.compile(r"age1[0-9a-z]{58}")


def generate(*, comment: str = "") -> tuple[str, str]:
    """A new identity: (key-file text, public recipient)."""
    import datetime as dt

    from pyrage import x25519

    identity = x25519.Identity.generate()
    public = str(identity.to_public())
    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return f"{header}# created: {created}\n# public key: {public}\n{identity}\n", public


def public_key_of(key_text: str) -> list[str]:
    """Recipients of every identity in an age key file."""
    from pyrage import x25519

    return [str(x25519.Identity.from_str(m[0]).to_public()) for m in _SECRET.finditer(key_text)]


def user_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sops" / "age" / "keys.txt"


def sops_environment(root: Path) -> dict[str, str]:
    """Extra environment for sops: the demo key when the user configured no key at all."""
    if os.environ.get("SOPS_AGE_KEY_FILE") or os.environ.get("SOPS_AGE_KEY") or user_key_file().exists():
        return {}
    demo = root / DEMO_KEY
    return {"SOPS_AGE_KEY_FILE": str(demo)} if demo.is_file() else {}


def key_file_in_use(root: Path) -> Path | None:
    env = os.environ.get("SOPS_AGE_KEY_FILE")
    if env:
        return Path(env)
    extra = sops_environment(root)
    if extra:
        return Path(extra["SOPS_AGE_KEY_FILE"])
    return user_key_file() if user_key_file().exists() else None


def sops_recipients(root: Path) -> list[str]:
    config = root / ".sops.yaml"
    return _PUBLIC.findall(config.read_text(encoding="utf-8")) if config.is_file() else []


def demo_recipient(root: Path) -> str | None:
    demo = root / DEMO_KEY
    if not demo.is_file():
        return None
    keys = public_key_of(demo.read_text(encoding="utf-8"))
    return keys[0] if keys else None


def demo_key_warning(root: Path, addresses: Iterable[str]) -> str | None:
    """A warning when the throw-away demo key can decrypt the secrets of a cluster whose
    nodes are not all on loopback (i.e. a real cluster)."""
    demo = demo_recipient(root)
    if demo is None or demo not in sops_recipients(root):
        return None
    real = []
    for a in addresses:
        try:
            if not ipaddress.ip_address(a).is_loopback:
                real.append(a)
        except ValueError:
            real.append(a)
    if not real:
        return None
    return (
        f"the THROW-AWAY demo age key ({DEMO_KEY}) can decrypt this cluster's secrets, but nodes "
        f"have real addresses ({', '.join(real[:3])}{'…' if len(real) > 3 else ''}); anyone with this "
        "checkout can read them. Replace the key and re-encrypt (docs/configure.md, 'Your own age key')."
    )
