"""Server-side field validation (``?fieldValidation=Strict|Warn|Ignore``) of the objects written through the
gateway, against the kinds' OpenAPI schemas (``schemas``); pure.

As in Kubernetes: ``Strict`` refuses an object with a field its schema does not have (400, ``strict decoding
error: unknown field "spec.foo"``); ``Warn`` (the default) drops such fields and answers a ``Warning`` for
each; ``Ignore`` drops them silently. Parts of a schema marked ``x-kubernetes-preserve-unknown-fields`` or
given by ``additionalProperties`` (maps) take any field.
"""

from __future__ import annotations

from typing import Any

from actors.gateway import schemas
from protocol.errors import BadRequest
from protocol.kinds import KindInfo

DIRECTIVES = ("Strict", "Warn", "Ignore")


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    return schemas.OBJECT_META if schema.get("$ref") == "ObjectMeta" else schema


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of the fields in ``value`` that ``schema`` does not describe."""
    schema = _resolve(schema)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict):
        if "additionalProperties" in schema:
            inner = schema["additionalProperties"]
            if not isinstance(inner, dict):
                return []
            return [p for k, v in value.items() for p in unknown_fields(v, inner, f"{path}{k}.")]
        properties = schema.get("properties")
        if properties is None:
            return []
        found = []
        for key, item in value.items():
            if key not in properties:
                found.append(f"{path}{key}")
            else:
                found += unknown_fields(item, properties[key], f"{path}{key}.")
        return found
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [p for n, item in enumerate(value) for p in unknown_fields(item, schema["items"], f"{path[:-1]}[{n}].")]
    return []


def _drop(obj: Any, path: str) -> None:
    parts = path.replace("[", ".[").split(".")
    node = obj
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    node.pop(parts[-1], None)


def check(info: KindInfo, obj: dict[str, Any], directive: str | None) -> list[str]:
    """Validate ``obj`` (dropping unknown fields unless Strict); the warnings to answer."""
    directive = directive or "Warn"
    if directive not in DIRECTIVES:
        raise BadRequest(f"fieldValidation {directive!r}: use Strict, Warn or Ignore")
    unknown = unknown_fields(obj, schemas.schema(info))
    if not unknown:
        return []
    if directive == "Strict":
        raise BadRequest("strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown),
                         {"causes": [{"field": p, "message": "unknown field"} for p in unknown]})
    for path in unknown:
        _drop(obj, path)
    return [f'unknown field "{p}"' for p in unknown] if directive == "Warn" else []
