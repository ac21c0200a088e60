"""The HTTP side of the gateway's handlers: JSON responses with ``Warning`` headers, ``Status`` error bodies,
query parameters read strictly, request bodies (JSON, or Kubernetes protobuf for some kinds)."""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

from aiohttp import web

from actors.gateway import jsonbody, k8sproto, paths
from actors.gateway import status as statuses
from protocol.errors import BadRequest, ShoalError

JSON = "application/json"
DRY_RUN: ContextVar[bool] = ContextVar("dry_run", default=False)
"""Set per request from ``dryRun=All``; every NATS write of that request carries ``dryRun: true``."""


def json_response(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    response = web.Response(body=jsonbody.dumps(body), status=status, content_type=JSON)
    for text in warnings or []:  # RFC 7234 warn-text: a quoted string
        quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
        response.headers.add("Warning", f'299 - "{quoted}"')
    return response


def error_response(exc: ShoalError, target: paths.Target | None = None) -> web.Response:
    kind = target.info.plural if target else None
    group = target.info.group if target else ""
    body = statuses.from_error(exc, kind=kind, group=group, name=target.name if target else None)
    return json_response(body, exc.http_status)


def flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "").lower()
    if value in ("", "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise BadRequest(f"query parameter {name}={value!r} is not a boolean")


def int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"query parameter {name}={value!r} is not an integer") from None


def refuse_unsupported(request: web.Request) -> None:
    """Parameters Shoal cannot honour are refused, not ignored."""
    DRY_RUN.set(dry_run(request.query.getall("dryRun", [])))
    if request.query.get("resourceVersionMatch") == "Exact":
        raise BadRequest("resourceVersionMatch=Exact is not supported: Shoal lists the latest state or one "
                         "at least as new as resourceVersion (NotOlderThan)")
    if flag(request, "sendInitialEvents"):
        raise BadRequest("sendInitialEvents is not supported yet: list, then watch from the list's version")


def dry_run(values: Any) -> bool:
    """``dryRun`` as Kubernetes has it: absent, or ``All`` (a list in DeleteOptions)."""
    values = [values] if isinstance(values, str) else list(values or [])
    for value in values:
        if value != "All":
            raise BadRequest(f"unsupported dryRun value {value!r}: only 'All' is supported")
    return bool(values)


async def read_body(request: web.Request) -> Any:
    """A request body: JSON, or Kubernetes protobuf for the kinds kubectl's typed clients send (``k8sproto``)."""
    content_type = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
    if content_type == k8sproto.MEDIA_TYPE:
        return k8sproto.decode(await request.read())
    if content_type not in ("application/json", "", "*/*") and not content_type.endswith("+json"):
        raise k8sproto.Unsupported(f"the gateway reads JSON bodies (and protobuf for some kinds), "
                                   f"not {content_type}")
    raw = await request.read()
    if not raw:
        raise BadRequest("the request needs a body")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
