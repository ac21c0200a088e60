"""The OpenAPI v2 document in protobuf (gnostic's ``openapi.v2.Document``), which is the only form in which
kubectl reads ``/openapi/v2`` (client-go asks for ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``
and does not fall back to JSON). A hand-written encoder for the subset of the schema the gateway's document
uses (field numbers from gnostic's ``openapiv2/OpenAPIv2.proto``); pure, no protobuf library needed.
"""

from __future__ import annotations

import json
from typing import Any


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _str(field: int, text: str) -> bytes:
    return _bytes(field, text.encode()) if text else b""


def _bool(field: int, value: bool) -> bytes:
    return _varint(field << 3) + _varint(1) if value else b""


def _named_any(name: str, value: Any) -> bytes:
    """``NamedAny{name=1, value=2: Any{yaml=2}}``: a vendor extension, its value as YAML (JSON is YAML)."""
    return _str(1, name) + _bytes(2, _str(2, json.dumps(value)))


def _extensions(field: int, node: dict[str, Any]) -> bytes:
    return b"".join(_bytes(field, _named_any(k, v)) for k, v in node.items() if k.startswith("x-"))


def schema(node: dict[str, Any]) -> bytes:
    out = [_str(1, node.get("$ref", "")), _str(2, node.get("format", "")), _str(4, node.get("description", ""))]
    out += [_str(19, r) for r in node.get("required", [])]
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out.append(_bytes(21, _bytes(1, schema(extra))))
    elif isinstance(extra, bool):
        out.append(_bytes(21, _bool(2, extra) or _varint(2 << 3) + _varint(0)))
    if "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        out.append(_bytes(22, b"".join(_str(1, t) for t in types)))
    if isinstance(node.get("items"), dict):
        out.append(_bytes(23, _bytes(1, schema(node["items"]))))
    out += [_bytes(24, schema(s)) for s in node.get("allOf", [])]
    if isinstance(node.get("properties"), dict):
        out.append(_bytes(25, b"".join(_bytes(1, _str(1, k) + _bytes(2, schema(v)))
                                        for k, v in node["properties"].items())))
    out.append(_extensions(31, node))
    return b"".join(out)


def _parameter(p: dict[str, Any]) -> bytes:
    query = _str(2, p.get("in", "")) + _str(4, p["name"]) + _str(6, p.get("type", "")) + _bool(20, p.get(
        "uniqueItems", False))
    return _bytes(1, _bytes(2, _bytes(3, query)))  # ParametersItem.parameter.non_body_parameter.query_sub_schema


def _operation(op: dict[str, Any]) -> bytes:
    out = [_str(5, op.get("operationId", ""))]
    responses = b""
    for code, response in op.get("responses", {}).items():
        body = _str(1, response.get("description", ""))
        if isinstance(response.get("schema"), dict):
            body += _bytes(2, _bytes(1, schema(response["schema"])))
        responses += _bytes(1, _str(1, code) + _bytes(2, _bytes(1, body)))
    out.append(_bytes(9, responses))
    out.append(_extensions(13, op))
    return b"".join(out)


METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(item: dict[str, Any]) -> bytes:
    out = [_bytes(number, _operation(item[method])) for method, number in METHODS.items() if method in item]
    out += [_bytes(9, _parameter(p)) for p in item.get("parameters", [])]
    return b"".join(out)


def encode_document(doc: dict[str, Any]) -> bytes:
    info = doc.get("info", {})
    out = [_str(1, doc.get("swagger", "2.0")),
           _bytes(2, _str(1, info.get("title", "")) + _str(2, info.get("version", "")))]
    out.append(_bytes(8, b"".join(_bytes(2, _str(1, path) + _bytes(2, _path_item(item)))
                                  for path, item in doc.get("paths", {}).items())))
    out.append(_bytes(9, b"".join(_bytes(1, _str(1, name) + _bytes(2, schema(body)))
                                  for name, body in doc.get("definitions", {}).items())))
    return b"".join(out)
