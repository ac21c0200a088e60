"""Subresources that are not the object itself: ``scale`` as an ``autoscaling/v1`` Scale (Deployment,
ReplicaSet, ReplicationController) and ``log`` (a pod's container output, from its node's kubelet over NATS,
``runtime.node_logs``)."""

from __future__ import annotations

import contextlib

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


async def stream_logs(client: ApiClient, request: web.Request, t: paths.Target) -> web.StreamResponse:
    """``GET pods/<name>/log`` (``container``, ``tailLines``, ``follow``, ``previous``) as plain text, line by
    line as the kubelet sends them; an error before the first line is answered as a Status."""
    for unsupported in ("timestamps", "insecureSkipTLSVerifyBackend"):
        if flag(request, unsupported):
            raise BadRequest(f"{unsupported}=true is not supported for logs yet")
    for unsupported in ("sinceSeconds", "sinceTime", "limitBytes"):
        if request.query.get(unsupported):
            raise BadRequest(f"{unsupported} is not supported for logs yet")
    lines = fetch_logs(client, str(t.namespace), str(t.name), request.query.get("container") or None,
                       int_param(request, "tailLines"), flag(request, "follow"), flag(request, "previous"))
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
