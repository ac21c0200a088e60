"""OpenAPI documents of the kinds Shoal has: v2 (``/openapi/v2``) and v3 (``/openapi/v3`` and one document
per group-version), with what kubectl reads from them: definitions carrying
``x-kubernetes-group-version-kind`` (``kubectl explain``), and PATCH operations per kind whose path lists the
``fieldValidation`` parameter (so ``kubectl apply``/``create`` leave validation to the server, which checks
unknown fields against these schemas: ``fieldvalidation.py``). Built once, pure.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from actors.gateway import schemas
from actors.gateway.openapi_proto import encode_document
from protocol.kinds import KINDS, KindInfo

META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
STATUS = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
QUERY = ("fieldValidation", "fieldManager", "pretty")


def definition_name(info: KindInfo) -> str:
    group = info.group.split(".")[0] if info.group else "core"
    version = info.api_version.rpartition("/")[2]
    return f"io.k8s.api.{group}.{version}.{info.kind}"


def gvk(info: KindInfo) -> dict[str, str]:
    return {"group": info.group, "version": info.api_version.rpartition("/")[2], "kind": info.kind}


def _refs(node: Any, prefix: str, v3: bool) -> Any:
    """Resolve the stand-in ``$ref: ObjectMeta`` into a real reference, for v2 or v3."""
    if isinstance(node, dict):
        if node.get("$ref") == "ObjectMeta":
            ref = {"$ref": prefix + META}
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**rest, "allOf": [ref]} if v3 else {**rest, **ref}
        return {k: _refs(v, prefix, v3) for k, v in node.items()}
    if isinstance(node, list):
        return [_refs(v, prefix, v3) for v in node]
    return node


def definitions(prefix: str, v3: bool, kinds: tuple[KindInfo, ...] = KINDS) -> dict[str, Any]:
    """v3 describes every field the registry knows (``kubectl explain``); v2 only the top level (what kubectl
    validates manifests against: see ``schemas``)."""
    out: dict[str, Any] = {META: copy.deepcopy(schemas.OBJECT_META),
                           STATUS: {"type": "object", "description": "A failure or success of an API call.",
                                    "x-kubernetes-preserve-unknown-fields": True}}
    for info in kinds:
        body = _refs(schemas.schema(info, nested=v3), prefix, v3)
        body["x-kubernetes-group-version-kind"] = [gvk(info)]
        out[definition_name(info)] = body
    return out


def _base(info: KindInfo) -> str:
    return "/api/v1" if info.api_version == "v1" else f"/apis/{info.api_version}"


def _operation(info: KindInfo, action: str, ref: str, v3: bool) -> dict[str, Any]:
    schema = {"$ref": ref}
    response = {"description": "OK", **({"content": {"application/json": {"schema": schema}}} if v3
                                       else {"schema": schema})}
    return {"operationId": f"{action}{info.kind}", "responses": {"200": response},
            "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk(info)}


def _parameters(v3: bool) -> list[dict[str, Any]]:
    def param(name: str) -> dict[str, Any]:
        typed = {"schema": {"type": "string"}} if v3 else {"type": "string"}
        return {"name": name, "in": "query", "uniqueItems": True, **typed}
    return [param(name) for name in QUERY]


def paths(kinds: tuple[KindInfo, ...], prefix: str, v3: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for info in kinds:
        ref = prefix + definition_name(info)
        scope = "/namespaces/{namespace}" if info.namespaced else ""
        collection = f"{_base(info)}{scope}/{info.plural}"
        out[collection] = {"get": _operation(info, "list", ref, v3), "post": _operation(info, "post", ref, v3),
                           "parameters": _parameters(v3)}
        out[collection + "/{name}"] = {
            "get": _operation(info, "get", ref, v3), "put": _operation(info, "put", ref, v3),
            "patch": _operation(info, "patch", ref, v3), "delete": _operation(info, "delete", ref, v3),
            "parameters": _parameters(v3)}
    return out


class Documents:
    """The documents, serialized once."""

    def __init__(self) -> None:
        v2 = {"swagger": "2.0", "info": {"title": "Shoal", "version": "v1.32.0-shoal"},
              "paths": paths(KINDS, "#/definitions/", False), "definitions": definitions("#/definitions/", False)}
        self._v2 = json.dumps(v2, separators=(",", ":")).encode()
        self._v2_proto = encode_document(v2)
        self._v3: dict[str, bytes] = {}
        for api_version in dict.fromkeys(k.api_version for k in KINDS):
            kinds = tuple(k for k in KINDS if k.api_version == api_version)
            prefix = "#/components/schemas/"
            doc = {"openapi": "3.0.0", "info": {"title": "Shoal", "version": "v1.32.0-shoal"},
                   "paths": paths(kinds, prefix, True), "components": {"schemas": definitions(prefix, True, kinds)}}
            key = "api/v1" if api_version == "v1" else f"apis/{api_version}"
            self._v3[key] = json.dumps(doc, separators=(",", ":")).encode()

    def v2_json(self) -> bytes:
        return self._v2

    def v2_protobuf(self) -> bytes:
        return self._v2_proto

    def v3_index(self) -> dict[str, Any]:
        return {"paths": {key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={hashlib.sha256(body).hexdigest()[:32]}"}
                          for key, body in self._v3.items()}}

    def v3_json(self, path: str) -> bytes | None:
        return self._v3.get(path)
