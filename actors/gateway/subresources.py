"""Subresources that are not the object itself: ``scale`` as an ``autoscaling/v1`` Scale (Deployment,
ReplicaSet, ReplicationController) and ``log`` (a pod's container output, from its node's kubelet over NATS,
``runtime.node_logs``)."""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

from aiohttp import web

from actors.gateway import paths
from actors.gateway.http import flag, int_param
from protocol.errors import BadRequest
from protocol.objects import Obj, meta
from protocol.selectors import from_label_selector, from_match_labels
from runtime.client import ApiClient
from runtime.node_logs import fetch_logs


def scale_of(obj: Obj) -> Obj:
    """The Scale of a scalable object: its spec.replicas, status.replicas and selector."""
    m = meta(obj)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    raw = spec.get("selector")
    selector = (from_match_labels(raw) if obj.get("kind") == "ReplicationController"
                else from_label_selector(raw)) if raw else None
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in m},
            "spec": {"replicas": int(spec.get("replicas", 1))},
            "status": {"replicas": int(status.get("replicas") or 0),
                       **({"selector": str(selector)} if selector is not None else {})}}


def log_since(since_seconds: int | None, since_time: str | None, now: float) -> float | None:
    """The Unix time ``sinceSeconds`` or ``sinceTime`` names (at most one of them, as Kubernetes requires)."""
    if since_seconds is not None and since_time is not None:
        raise BadRequest("at most one of sinceTime or sinceSeconds may be specified")
    if since_seconds is not None:
        if since_seconds < 1:
            raise BadRequest("sinceSeconds must be greater than 0")
        return now - since_seconds
    if since_time is not None:
        try:
            return datetime.fromisoformat(since_time.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise BadRequest(f"sinceTime {since_time!r} is not an RFC 3339 time") from None
    return None


async def stream_logs(client: ApiClient, request: web.Request, t: paths.Target) -> web.StreamResponse:
    """``GET pods/<name>/log`` (``container``, ``tailLines``, ``follow``, ``previous``, ``timestamps``,
    ``sinceSeconds``/``sinceTime``, ``limitBytes``) as plain text, line by line as the kubelet sends them; an
    error before the first line is answered as a Status."""
    if flag(request, "insecureSkipTLSVerifyBackend"):
        raise BadRequest("insecureSkipTLSVerifyBackend=true is not supported: kubelets are reached over NATS")
    limit = int_param(request, "limitBytes")
    if limit is not None and limit < 1:
        raise BadRequest("limitBytes must be greater than 0")
    since = log_since(int_param(request, "sinceSeconds"), request.query.get("sinceTime"), time.time())
    lines = fetch_logs(client, str(t.namespace), str(t.name), request.query.get("container") or None,
                       int_param(request, "tailLines"), flag(request, "follow"), flag(request, "previous"),
                       timestamps=flag(request, "timestamps"), since=since, limit_bytes=limit)
    response: web.StreamResponse | None = None
    async with contextlib.aclosing(lines):
        async for line in lines:
            if response is None:
                response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
                response.enable_chunked_encoding()
                await response.prepare(request)
            try:
                await response.write(line.encode() + b"\n")
            except (ConnectionResetError, ConnectionError):
                return response
    if response is None:
        return web.Response(body=b"", content_type="text/plain")
    await response.write_eof()
    return response
