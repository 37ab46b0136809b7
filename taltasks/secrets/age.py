"""age keys: which one sops will use, creating new ones, and spotting the demo key.

sops reads private keys from ``$SOPS_AGE_KEY_FILE``, ``$SOPS_AGE_KEY`` and
``~/.config/sops/age/keys.txt`` — all of them, together. The shipped demo repository commits a
**throw-away** key at ``talos/demo.agekey`` so the demo runs from a bare checkout;
:func:`sops_environment` adds it as one more identity (through ``SOPS_AGE_KEY``, unless the
user set that variable), so the demo decrypts whatever other keys the user has configured.
It protects nothing — anyone can read it — and :func:`demo_key_warning` says so loudly when
it guards a cluster whose nodes are not on loopback.
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


def sops_environment(root: Path) -> dict[str, str]:
    """Extra environment for sops: the demo key as an additional identity, when present."""
    demo = root / DEMO_KEY
    if os.environ.get("SOPS_AGE_KEY") or not demo.is_file():
        return {}
    keys = _SECRET.findall(demo.read_text(encoding="utf-8"))
    return {"SOPS_AGE_KEY": "\n".join(keys)} if keys else {}


def recipients_in(path: Path) -> list[str]:
    """Every age recipient named in a file (.sops.yaml rules, or a sops file's metadata)."""
    return _PUBLIC.findall(path.read_text(encoding="utf-8")) if path.is_file() else []


def demo_recipient(root: Path) -> str | None:
    demo = root / DEMO_KEY
    if not demo.is_file():
        return None
    keys = public_key_of(demo.read_text(encoding="utf-8"))
    return keys[0] if keys else None


def demo_key_warning(root: Path, addresses: Iterable[str], secret_files: Iterable[str] = ()) -> str | None:
    """A warning when the throw-away demo key can decrypt the secrets of a cluster whose
    nodes are not all on loopback (i.e. a real cluster): its recipient is in .sops.yaml or
    in the metadata of one of ``secret_files``."""
    demo = demo_recipient(root)
    if demo is None:
        return None
    named = recipients_in(root / ".sops.yaml") + [r for f in secret_files for r in recipients_in(root / f)]
    if demo not in named:
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


def _candidate_identities(root: Path) -> list[str]:
    """Every private key sops could use here, in sops' own order, plus the demo key."""
    texts = []
    if os.environ.get("SOPS_AGE_KEY_FILE"):
        path = Path(os.environ["SOPS_AGE_KEY_FILE"]).expanduser()
        if path.is_file():
            texts.append(path.read_text(encoding="utf-8"))
    if os.environ.get("SOPS_AGE_KEY"):
        texts.append(os.environ["SOPS_AGE_KEY"])
    default = Path.home() / ".config" / "sops" / "age" / "keys.txt"
    if default.is_file():
        texts.append(default.read_text(encoding="utf-8"))
    demo = root / DEMO_KEY
    if demo.is_file():
        texts.append(demo.read_text(encoding="utf-8"))
    return list(dict.fromkeys(k for t in texts for k in _SECRET.findall(t)))


def key_for_flux(root: Path) -> bytes:
    """The age key file Flux needs in-cluster (secret ``flux-system/sops-age``): every
    identity available here whose recipient ``.sops.yaml`` names — never a key the
    repository does not encrypt to."""
    from taltasks.errors import InputError

    wanted = set(recipients_in(root / ".sops.yaml"))
    if not wanted:
        raise InputError(
            "no age recipients in .sops.yaml",
            where=".sops.yaml",
            hint="add a creation rule with your age public key",
        )
    chosen = [k for k in _candidate_identities(root) if public_key_of(k)[0] in wanted]
    if not chosen:
        raise InputError(
            "none of the available age keys matches a recipient of .sops.yaml",
            where=".sops.yaml",
            hint="set SOPS_AGE_KEY_FILE to the key file whose public key .sops.yaml lists",
        )
    return ("\n".join(chosen) + "\n").encode()
