"""talosconfig: the client-side file that says where the Talos API is and who we are.

Format (talos-api.md §9.1)::

    context: mycluster
    contexts:
      mycluster:
        endpoints: [192.0.2.2, 192.0.2.3]   # host, host:port; bare host means :50000
        nodes: [192.0.2.2]                 # default targets (optional)
        ca: <base64 of the OS CA PEM>
        crt: <base64 of the client certificate PEM>
        key: <base64 of the client key PEM, label "ED25519 PRIVATE KEY">
        auth: {...}       # Omni / basic auth (optional)
        proxy-url: ...    # talosctl 1.14 (optional)

Located by ``$TALOSCONFIG``, else ``~/.talos/config``. Files are written with mode 0600
(they hold a private key). Every problem is an :class:`~taltasks.errors.InputError` naming
the file and, where it applies, the context.

A talosconfig is shared with talosctl, omnictl and whoever edited it by hand, so saving a
loaded file changes only what was changed: the edited keys are spliced into the original
text (:mod:`taltasks.yamlsplice`) and every other byte — ``auth`` blocks, keys we do not
know, comments, indentation — stays as it was.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taltasks.errors import InputError

DEFAULT_PORT = 50000


def default_path() -> Path:
    env = os.environ.get("TALOSCONFIG")
    if env:
        return Path(env)
    return Path.home() / ".talos" / "config"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int = DEFAULT_PORT

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``host``, ``host:port``, ``[v6]:port`` or ``https://host[:port]`` (talosctl treats
        an https URL as port 443 unless given)."""
        value = text.strip()
        port = DEFAULT_PORT
        if "://" in value:
            scheme, _, value = value.partition("://")
            value = value.rstrip("/")
            if scheme == "https":
                port = 443
        if value.startswith("["):
            host, _, rest = value[1:].partition("]")
            if rest.startswith(":"):
                port = _port(rest[1:], text)
            return cls(host, port)
        if value.count(":") == 1:
            host, _, p = value.partition(":")
            return cls(host, _port(p, text))
        return cls(value, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _port(text: str, whole: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise InputError(f"endpoint {whole!r} has an invalid port {text!r}") from None
    if not 0 < port < 65536:
        raise InputError(f"endpoint {whole!r} has an out-of-range port {port}")
    return port


@dataclass
class Context:
    """One talosconfig context: endpoints to dial, default nodes, and the credentials."""

    name: str
    endpoints: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    ca: bytes | None = None  # PEM
    crt: bytes | None = None  # PEM
    key: bytes | None = None  # PEM (Talos label kept; relabelled when loaded into OpenSSL)
    cluster: str | None = None
    auth: dict[str, Any] | None = None  # talosctl's `auth`: `basic` or `siderov1` (Omni)
    proxy_url: str | None = None  # talosctl 1.14 `proxy-url`
    extra: dict[str, Any] = field(default_factory=dict)  # keys we do not model, kept as read

    @property
    def parsed_endpoints(self) -> list[Endpoint]:
        return [Endpoint.parse(e) for e in self.endpoints]

    def to_yaml_dict(self) -> dict[str, Any]:
        """The context as talosctl writes it (its key order), then any unknown keys."""
        out: dict[str, Any] = {"endpoints": list(self.endpoints)}
        if self.nodes:
            out["nodes"] = list(self.nodes)
        for key in ("ca", "crt", "key"):
            value = getattr(self, key)
            if value is not None:
                out[key] = base64.b64encode(value).decode()
        if self.auth:
            out["auth"] = self.auth
        if self.cluster:
            out["cluster"] = self.cluster
        if self.proxy_url:
            out["proxy-url"] = self.proxy_url
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out


@dataclass
class TalosConfig:
    """A whole talosconfig file: contexts by name and the current one."""

    contexts: dict[str, Context] = field(default_factory=dict)
    current: str | None = None
    path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # unknown top-level keys
    # what was read, to write back only what changed (None for a config built in memory)
    _source: _Source | None = field(default=None, repr=False, compare=False)

    # ---- reading ------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str | None = None) -> TalosConfig:
        import yaml

        p = Path(path) if path else default_path()
        if not p.exists():
            raise InputError(
                "talosconfig not found",
                where=str(p),
                hint="set TALOSCONFIG, pass --talosconfig, or run `invoke configure` to generate one",
            )
        try:
            text = p.read_text()
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{p}:{mark.line + 1}" if mark else str(p)
            raise InputError(
                f"talosconfig is not valid YAML ({getattr(exc, 'problem', exc)})", where=where
            ) from None
        except OSError as exc:
            raise InputError(f"cannot read talosconfig: {exc.strerror}", where=str(p)) from None
        cfg = cls.from_dict(raw, path=p)
        cfg._source = _Source(text, raw, cfg._snapshot())
        return cfg

    @classmethod
    def from_dict(cls, raw: Any, *, path: Path | None = None) -> TalosConfig:
        where = str(path) if path else "talosconfig"
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise InputError("talosconfig must be a mapping with `context` and `contexts`", where=where)
        contexts_raw = raw.get("contexts") or {}
        if not isinstance(contexts_raw, dict):
            raise InputError("`contexts` must be a mapping of name to context", where=where)
        contexts: dict[str, Context] = {}
        for name, body in contexts_raw.items():
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise InputError(f"context {name!r} must be a mapping", where=where)
            endpoints = list(body.get("endpoints") or [])
            if body.get("target"):  # deprecated single endpoint, appended like talosctl does
                endpoints.append(body["target"])
            auth = body.get("auth")
            if auth is not None and not isinstance(auth, dict):
                raise InputError(f"context {name!r} field `auth` must be a mapping", where=where)
            contexts[str(name)] = Context(
                name=str(name),
                endpoints=[str(e) for e in endpoints],
                nodes=[str(n) for n in body.get("nodes") or []],
                ca=_b64(body.get("ca"), f"context {name!r} field `ca`", where),
                crt=_b64(body.get("crt"), f"context {name!r} field `crt`", where),
                key=_b64(body.get("key"), f"context {name!r} field `key`", where),
                cluster=body.get("cluster"),
                auth=auth or None,
                proxy_url=str(body["proxy-url"]) if body.get("proxy-url") else None,
                extra={str(k): v for k, v in body.items() if k not in _MODELLED},
            )
        current = raw.get("context")
        return cls(
            contexts=contexts,
            current=str(current) if current is not None else None,
            path=path,
            extra={str(k): v for k, v in raw.items() if k not in ("context", "contexts")},
        )

    def context(self, name: str | None = None) -> Context:
        """The named context, or the current one; a clear error when it does not exist."""
        where = str(self.path) if self.path else "talosconfig"
        wanted = name or self.current
        if not wanted:
            raise InputError(
                "talosconfig has no current context",
                where=where,
                hint="pass --context NAME or run `invoke talos.config.use-context NAME`",
            )
        try:
            return self.contexts[wanted]
        except KeyError:
            known = ", ".join(sorted(self.contexts)) or "none"
            raise InputError(
                f"context {wanted!r} is not defined (known contexts: {known})",
                where=where,
                hint="`invoke talos.config.contexts` lists them",
            ) from None

    # ---- writing ------------------------------------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        return {
            "context": self.current or "",
            "contexts": {name: ctx.to_yaml_dict() for name, ctx in self.contexts.items()},
            **self.extra,
        }

    def to_yaml(self) -> str:
        """The file's new text: the original with only the changes spliced in when this
        config was loaded from a file, else a fresh document."""
        import yaml

        if self._source is not None:
            from taltasks.yamlsplice import CannotSplice

            try:
                return self._source.edited(self._snapshot())
            except CannotSplice:
                pass  # flow style or another layout we do not edit in place: write it all
        return yaml.safe_dump(self._snapshot(), sort_keys=False, default_flow_style=False, width=1 << 30)

    def save(self, path: Path | str | None = None) -> Path:
        """Write atomically with mode 0600 (the file holds a private key)."""
        p = Path(path) if path else (self.path or default_path())
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        text = self.to_yaml()
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, p)
        self.path = p
        self._source = _Source(text, _yaml_load(text), self._snapshot())
        return p

    def merge(self, other: TalosConfig, *, rename_conflicts: bool = True) -> list[str]:
        """Add ``other``'s contexts, like ``talosctl config merge``: a name already present
        with different content becomes ``name-1``, ``name-2``…; the merged current context
        becomes current. Returns the names added."""
        added: list[str] = []
        for name, ctx in other.contexts.items():
            target = name
            if name in self.contexts and self.contexts[name] != ctx:
                if not rename_conflicts:
                    raise InputError(f"context {name!r} already exists with different settings")
                n = 1
                while f"{name}-{n}" in self.contexts:
                    n += 1
                target = f"{name}-{n}"
            self.contexts[target] = Context(**{**ctx.__dict__, "name": target})
            added.append(target)
            if name == other.current:
                self.current = target
        return added


_MODELLED = frozenset({"endpoints", "target", "nodes", "ca", "crt", "key", "cluster", "auth", "proxy-url"})


def _yaml_load(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


@dataclass
class _Source:
    """The text a config was read from, its raw data, and the data as first understood."""

    text: str
    raw: Any
    loaded: dict[str, Any]

    def edited(self, now: dict[str, Any]) -> str:
        """The source text with every difference between ``loaded`` and ``now`` spliced in."""
        import copy

        from taltasks.yamlsplice import DELETE, CannotSplice, splice

        if not isinstance(self.raw, dict):
            raise CannotSplice("the file is not a mapping")
        expected = copy.deepcopy(self.raw)
        changes: list[tuple[tuple[str, ...], Any]] = []

        def change(path: tuple[str, ...], value: Any) -> None:
            changes.append((path, value))
            node = expected
            for key in path[:-1]:
                if not isinstance(node.get(key), dict):
                    node[key] = {}
                node = node[key]
            if value is DELETE:
                node.pop(path[-1], None)
            else:
                node[path[-1]] = value

        if now["context"] != self.loaded["context"]:
            change(("context",), now["context"])
        before, after = self.loaded["contexts"], now["contexts"]
        if before and not isinstance(self.raw.get("contexts"), dict):
            raise CannotSplice("contexts is not a mapping")
        for name in before:
            if name not in after:
                change(("contexts", name), DELETE)
        for name, body in after.items():
            if name not in before:
                if not self.raw.get("contexts"):
                    raise CannotSplice("no contexts mapping to add to")
                change(("contexts", name), body)
                continue
            old = before[name]
            raw_body = (self.raw.get("contexts") or {}).get(name) or {}
            for key in dict.fromkeys([*old, *body]):
                if old.get(key) != body.get(key):
                    change(("contexts", name, key), body.get(key, DELETE))
                    if key == "endpoints" and "target" in raw_body:
                        change(("contexts", name, "target"), DELETE)  # folded into endpoints
        for key in dict.fromkeys([*self.loaded, *now]):
            if key not in ("context", "contexts") and self.loaded.get(key) != now.get(key):
                change((key,), now.get(key, DELETE))
        if not changes:
            return self.text
        return splice(self.text, changes, expected=expected)


def _b64(value: Any, what: str, where: str) -> bytes | None:
    if value in (None, ""):
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{what} is not valid base64", where=where) from None
