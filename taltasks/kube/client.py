"""A Kubernetes client built from a kubeconfig context, with our error types.

:func:`connect` loads a kubeconfig (``--kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``)
and a context, and returns a :class:`KubeClient`. Its :meth:`~KubeClient.call` runs one API
call and turns failures into errors a user can act on: ``ApiException`` becomes
:class:`KubeApiError` (status, reason and the server's message), an unreachable or
untrusted endpoint becomes :class:`~taltasks.errors.ConnectionFailed` naming the server.
Responses are plain JSON dicts (camelCase, as on the wire), never client model objects.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taltasks.errors import ConnectionFailed, InputError, OperationFailed

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read


class KubeApiError(OperationFailed):
    """The API server refused a request; ``status`` is the HTTP code, ``reason`` the
    Status reason (NotFound, Conflict, TooManyRequests…), ``body`` the parsed Status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        reason: str,
        body: dict[str, Any] | None = None,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, where=where, hint=hint)
        self.status = status
        self.reason = reason
        self.body = body or {}

    @property
    def causes(self) -> list[dict[str, Any]]:
        return list((self.body.get("details") or {}).get("causes") or [])


def kubeconfig_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("KUBECONFIG")
    if env:
        parts = [p for p in env.split(os.pathsep) if p]
        for p in parts:
            if Path(p).exists():
                return Path(p)
        if parts:
            return Path(parts[0])
    return Path.home() / ".kube" / "config"


@dataclass
class KubeClient:
    """An authenticated API client for one kubeconfig context."""

    api_client: Any
    context: str
    server: str
    kubeconfig: Path

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    @property
    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    @property
    def policy(self) -> Any:
        from kubernetes import client

        return client.PolicyV1Api(self.api_client)

    @property
    def custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api_client)

    def call(self, what: str, fn: Any, *args: Any, raw: bool = False, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)``; return the decoded JSON body (or the client's own
        result with ``raw=True``). ``what`` names the call in error messages."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kwargs.setdefault("_request_timeout", DEFAULT_TIMEOUT)
        if not raw:
            kwargs["_preload_content"] = False
        try:
            result = fn(*args, **kwargs)
        except ApiException as exc:
            raise api_error(exc, what, self.server) from None
        except HTTPError as exc:
            raise ConnectionFailed(
                f"cannot reach the Kubernetes API to {what}: {_root_cause(exc)}",
                where=self.server,
                hint=f"check that the cluster is up and that context {self.context!r} in {self.kubeconfig} points at it",
            ) from None
        if raw:
            return result
        data = result.data
        return json.loads(data) if data else None

    def request(
        self,
        what: str,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """One request to any API path (for kinds only known at run time); the decoded JSON
        reply, errors as in :meth:`call`."""
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        method, url, headers, body, post = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query or []),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )

        def send(**kwargs: Any) -> Any:
            response = self.api_client.call_api(
                method, url, header_params=headers, body=body, post_params=post, **kwargs
            )
            response.read()
            if response.status >= 400:
                exc = ApiException(status=response.status, reason=response.reason)
                exc.body = response.data.decode("utf-8", "replace") if response.data else ""
                raise exc
            return response

        response = self.call(what, send, raw=True)
        return json.loads(response.data) if response.data else None

    def list_custom(
        self, group: str, version: str, plural: str, namespace: str | None = None, *, what: str
    ) -> list[dict[str, Any]] | None:
        """Items of a custom resource (of ``namespace``, else cluster-wide); None when the
        resource is not served at all (its CRD is not installed)."""
        try:
            if namespace:
                body = self.call(
                    what, self.custom.list_namespaced_custom_object, group, version, namespace, plural
                )
            else:
                body = self.call(what, self.custom.list_cluster_custom_object, group, version, plural)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise
        return list(body.get("items") or [])

    def get_custom(
        self, group: str, version: str, plural: str, namespace: str, name: str, *, what: str
    ) -> dict[str, Any]:
        return self.call(
            what, self.custom.get_namespaced_custom_object, group, version, namespace, plural, name
        )

    def close(self) -> None:
        self.api_client.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _root_cause(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    while reason is not None and getattr(reason, "reason", None) is not None and reason is not reason.reason:
        reason = reason.reason
    return str(reason or exc)


def api_error(exc: Any, what: str, server: str) -> KubeApiError:
    body: dict[str, Any] = {}
    try:
        body = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") or exc.reason or "error"
    reason = body.get("reason") or str(exc.reason or "")
    hint = None
    if exc.status == 401:
        hint = "the client certificate in the kubeconfig is not accepted; regenerate the kubeconfig"
    elif exc.status == 403:
        hint = "the kubeconfig's user lacks permission; use the cluster admin kubeconfig"
    return KubeApiError(
        f"{what}: {message} ({exc.status} {reason})",
        status=int(exc.status or 0),
        reason=reason,
        body=body,
        where=server,
        hint=hint,
    )


def connect(kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None) -> KubeClient:
    """A client for ``context`` (default: the kubeconfig's current context)."""
    import yaml

    path = kubeconfig_path(kubeconfig)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise InputError(
            "kubeconfig not found",
            where=str(path),
            hint="pass --kubeconfig, set KUBECONFIG, or write one with `talosctl kubeconfig` (`invoke sim.up` writes DIR/kubeconfig)",
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read kubeconfig: {exc}", where=str(path)) from None
    return _client_for(doc, path, context)


def connect_text(text: str, *, source: str, context: str | None = None) -> KubeClient:
    """A client for a kubeconfig held in memory — e.g. the admin kubeconfig a Talos node
    hands out — without writing it anywhere. ``source`` names it in messages."""
    import yaml

    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"cannot read kubeconfig: {exc}", where=source) from None
    return _client_for(doc, Path(source), context, in_memory=True)


def _client_for(doc: Any, path: Path, context: str | None, *, in_memory: bool = False) -> KubeClient:
    from kubernetes.config.config_exception import ConfigException

    from kubernetes import config

    if not isinstance(doc, dict):
        raise InputError("kubeconfig is not a YAML mapping", where=str(path))
    contexts = {
        c.get("name"): c.get("context") or {} for c in doc.get("contexts") or [] if isinstance(c, dict)
    }
    name = context or doc.get("current-context")
    if not name or name not in contexts:
        raise InputError(
            f"kubeconfig has no context {name!r}" if name else "kubeconfig has no current context",
            where=str(path),
            hint=f"contexts in this file: {', '.join(sorted(map(str, contexts))) or '(none)'}",
        )
    cluster_name = contexts[name].get("cluster")
    server = next(
        (
            c.get("cluster", {}).get("server", "")
            for c in doc.get("clusters") or []
            if c.get("name") == cluster_name
        ),
        "",
    )
    try:
        if in_memory:
            api_client = config.new_client_from_config_dict(doc, context=name, persist_config=False)
        else:
            api_client = config.new_client_from_config(
                config_file=str(path), context=name, persist_config=False
            )
    except (ConfigException, ValueError, OSError) as exc:
        raise InputError(f"kubeconfig context {name!r} is unusable: {exc}", where=str(path)) from None
    return KubeClient(api_client=api_client, context=str(name), server=server, kubeconfig=path)
