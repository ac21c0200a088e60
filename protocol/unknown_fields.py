"""Unknown fields, as Kubernetes' field validation: found with the kinds' schemas, pruned, warned or refused.

``fieldValidation`` (a request option, as kube-apiserver's query parameter): ``Strict`` refuses an object
with unknown fields (BadRequest listing them), ``Warn`` (the default) drops them and answers a warning per
field, ``Ignore`` drops them silently. An unknown field is never stored (Kubernetes prunes fields its types
do not have when decoding).

Which fields are known: ``apiVersion``, ``kind``, ``metadata`` (ObjectMeta's fields), ``status`` and the
kind's schema (``Strategy.schema``). An object Field that lists ``fields`` lists all of them; a Field
without (a map of values, or a subtree the schema does not describe) is not looked into, so a valid
Kubernetes field is never reported. ``status`` is not checked (status writers are Shoal's own components).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from protocol.errors import BadRequest
from protocol.kinds.strategy import OBJECT_META_FIELDS, Field, Strategy

MAX_REPORTED = 50
ENVELOPE = frozenset({"apiVersion", "kind", "metadata", "status"})
META = frozenset(f.partition(":")[0] for f in OBJECT_META_FIELDS)


class FieldValidation(StrEnum):
    STRICT = "Strict"
    WARN = "Warn"
    IGNORE = "Ignore"


def field_validation(value: Any) -> FieldValidation:
    """The request option; absent means Warn."""
    if value is None:
        return FieldValidation.WARN
    try:
        return FieldValidation(value)
    except ValueError:
        raise BadRequest(f"fieldValidation must be Strict, Warn or Ignore, not {str(value)[:40]!r}") from None


def find_unknown(obj: Any, strategy: Strategy, *, prune: bool = False) -> list[str]:
    """The paths of ``obj``'s unknown fields (at most ``MAX_REPORTED`` reported); removed from ``obj`` when
    ``prune``. Works on merge patches too (they have the object's shape)."""
    found: list[str] = []
    if not isinstance(obj, dict):
        return found
    top = _by_name(strategy.schema)
    for key in list(obj):
        if key in ENVELOPE:
            continue
        if key in top:
            if key != "status":
                _walk(obj[key], top[key], str(key), found, prune)
        else:
            _unknown(obj, key, str(key), found, prune)
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in list(meta):
            if key not in META:
                _unknown(meta, key, f"metadata.{key}", found, prune)
    return found


_BY_NAME: dict[int, tuple[tuple[Field, ...], dict[str, Field]]] = {}
"""Each schema level's fields by name, built once (every create and update walks its kind's schema); keyed by
the tuple's id, the tuple kept with it so the id cannot be reused while the entry lives."""


def _by_name(fields: tuple[Field, ...]) -> dict[str, Field]:
    entry = _BY_NAME.get(id(fields))
    if entry is None or entry[0] is not fields:
        if len(_BY_NAME) > 4096:  # schemas are module constants: reached only if some are made on the fly
            _BY_NAME.clear()
        entry = _BY_NAME[id(fields)] = (fields, {f.name: f for f in fields})
    return entry[1]


def _unknown(parent: dict[Any, Any], key: Any, path: str, found: list[str], prune: bool) -> None:
    if len(found) < MAX_REPORTED:
        found.append(path)
    if prune:
        del parent[key]


def _walk(value: Any, field: Field, path: str, found: list[str], prune: bool) -> None:
    """Iterative over the object's depth is not needed: the schema is at most ~10 levels deep and the walk
    follows it only, whatever the object's nesting."""
    if field.items is not None and isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, field.items, f"{path}[{index}]", found, prune)
        return
    if not field.fields or not isinstance(value, dict):
        return  # a scalar, a map of values, or a subtree the schema does not describe
    known = _by_name(field.fields)
    for key in list(value):
        child = known.get(key)
        if child is None:
            _unknown(value, key, f"{path}.{key}", found, prune)
        else:
            _walk(value[key], child, f"{path}.{key}", found, prune)


def apply(obj: Any, strategy: Strategy, mode: FieldValidation) -> list[str]:
    """Prune ``obj``'s unknown fields; the warnings to answer (Warn), or BadRequest (Strict)."""
    if mode == FieldValidation.STRICT:
        unknown = find_unknown(obj, strategy)
        if unknown:
            listed = ", ".join(f'unknown field "{p}"' for p in unknown[:10])
            more = f" (and {len(unknown) - 10} more)" if len(unknown) > 10 else ""
            raise BadRequest(f"strict decoding error: {listed}{more}", {"unknownFields": unknown})
        return []
    unknown = find_unknown(obj, strategy, prune=True)
    if mode == FieldValidation.IGNORE:
        return []
    return [f'unknown field "{p}"' for p in unknown]
