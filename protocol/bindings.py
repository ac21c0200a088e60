"""Batched binds: N pod bindings in one request, answered item by item.

Request on ``shoal.api.bind.pods.<ns or _all>``: ``{"v": 1, "bindings": [{"name", "node", "namespace"?,
"uid"?, "resourceVersion"?}, ...]}``. Each item is what one single ``bind`` carries; with ``_all`` every
item names its ``namespace``. The reply ``{"v": 1, "ok": true, "results": [...]}`` has one result per
item, in order: ``{"ok": true, "resourceVersion": N}`` or ``{"ok": false, "error": {...}}`` (a typed
error as everywhere else). One refused item never fails the others; a malformed request as a whole
(``bindings`` not a list, more than ``MAX_BINDINGS`` items) is refused with ``BadRequest``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocol.errors import BadRequest, ShoalError, from_wire

MAX_BINDINGS = 1000
"""Most bindings one request may carry (a full batch stays far below the 4 MiB message limit)."""


@dataclass(frozen=True, slots=True)
class Binding:
    namespace: str
    name: str
    node: str
    uid: str | None = None
    resource_version: str | None = None

    def to_wire(self) -> dict[str, Any]:
        item: dict[str, Any] = {"namespace": self.namespace, "name": self.name, "node": self.node}
        if self.uid:
            item["uid"] = self.uid
        if self.resource_version:
            item["resourceVersion"] = self.resource_version
        return item


def _str(item: dict[str, Any], field: str, *, required: bool) -> str | None:
    value = item.get(field)
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not value:
        raise BadRequest(f"binding needs '{field}' as a non-empty string, got {value!r}")
    return value


def parse_items(request: dict[str, Any]) -> list[Any]:
    """The ``bindings`` list of a request; BadRequest when the request as a whole is malformed."""
    items = request.get("bindings")
    if not isinstance(items, list):
        raise BadRequest("a batched bind needs 'bindings': a list of {name, node, namespace?, uid?}")
    if len(items) > MAX_BINDINGS:
        raise BadRequest(f"a batched bind carries at most {MAX_BINDINGS} bindings, got {len(items)}")
    return items


def parse_binding(item: Any, namespace: str | None) -> Binding:
    """One item of a batch; ``namespace`` is the subject's (None for ``_all``). BadRequest if malformed."""
    if not isinstance(item, dict):
        raise BadRequest(f"a binding must be a map, got {type(item).__name__}")
    given = _str(item, "namespace", required=namespace is None)
    if namespace is not None and given not in (None, namespace):
        raise BadRequest(f"binding namespace {given!r} does not match the subject's namespace {namespace!r}")
    rv = item.get("resourceVersion")
    if rv is not None and not isinstance(rv, str | int):
        raise BadRequest(f"resourceVersion must be a string or an integer, got {rv!r}")
    name, node = _str(item, "name", required=True), _str(item, "node", required=True)
    assert name is not None and node is not None
    return Binding(namespace=given or namespace or "", name=name, node=node,
                   uid=_str(item, "uid", required=False),
                   resource_version=None if rv in (None, "") else str(rv))


def ok_result(resource_version: int) -> dict[str, Any]:
    return {"ok": True, "resourceVersion": resource_version}


def error_result(exc: ShoalError) -> dict[str, Any]:
    return {"ok": False, "error": exc.to_wire()}


def read_result(result: Any) -> int | ShoalError:
    """A reply item: the pod's new resourceVersion, or the typed error that refused it."""
    if isinstance(result, dict) and result.get("ok") is True:
        return int(result.get("resourceVersion") or 0)
    return from_wire(result.get("error") if isinstance(result, dict) else None)
