"""The three patch types of the Kubernetes API, applied to plain objects; pure.

* ``application/json-patch+json``: RFC 6902 operations (add, remove, replace, move, copy, test);
* ``application/merge-patch+json``: RFC 7386 (``protocol.merge_patch``);
* ``application/strategic-merge-patch+json``: Kubernetes' strategic merge patch, what client-side
  ``kubectl apply``, ``label``, ``annotate``, ``scale`` and ``rollout`` send. Maps merge as in a merge patch;
  lists of named things (containers, ports, env, volumes...) merge item by item on their merge key
  (``MERGE_KEYS``), ``finalizers`` as a set; the directives ``$patch: replace|delete|merge``,
  ``$setElementOrder/<list>``, ``$deleteFromPrimitiveList/<list>`` and ``$retainKeys`` are honoured.
  Other lists are replaced, as Kubernetes does for lists without a patch strategy.

Bad patches raise ``BadRequest`` (malformed) or ``Invalid`` (a ``test`` that fails, a path that is not there).
"""

from __future__ import annotations

import copy
from typing import Any

from protocol.errors import BadRequest, Invalid
from protocol.merge_patch import apply_merge_patch

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "tolerations": "key",
    "topologySpreadConstraints": "topologyKey",
    "conditions": "type",
    "ownerReferences": "uid",
    "addresses": "type",
    "resourceClaims": "name",
    "readinessGates": "conditionType",
}
"""List field -> the key naming its items (the ``patchMergeKey`` of Kubernetes' types). ``ports`` is
handled apart: ``containerPort`` in containers, ``port`` in services and endpoints."""
PRIMITIVE_SETS = frozenset({"finalizers"})
"""Lists of strings merged as sets (``patchStrategy: merge`` on a primitive list)."""


# -- JSON patch (RFC 6902) ---------------------------------------------------------------------------
def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise BadRequest(f"JSON patch path {path!r} is not a JSON pointer")
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]] if path else []


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise Invalid(f"JSON patch path {path!r} does not exist", {"causes": [{"field": path,
                                                                              "message": "path not found"}]})
    return node


def _get_at(doc: Any, parts: list[str], path: str) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    key = parts[-1]
    if isinstance(parent, dict) and key in parent:
        return parent[key]
    if isinstance(parent, list) and key.isdigit() and int(key) < len(parent):
        return parent[int(key)]
    raise Invalid(f"JSON patch path {path!r} does not exist",
                  {"causes": [{"field": path, "message": "path not found"}]})


def _remove_at(doc: Any, parts: list[str], path: str) -> Any:
    value = _get_at(doc, parts, path)
    parent = _parent(doc, parts, path)
    if isinstance(parent, dict):
        del parent[parts[-1]]
    else:
        del parent[int(parts[-1])]
    return value


def _add_at(doc: Any, parts: list[str], value: Any, path: str, *, replace: bool = False) -> Any:
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    key = parts[-1]
    if isinstance(parent, dict):
        if replace and key not in parent:
            raise Invalid(f"JSON patch replace of missing {path!r}", {"causes": [{"field": path,
                                                                              "message": "path not found"}]})
        parent[key] = value
    elif isinstance(parent, list):
        if key == "-" and not replace:
            parent.append(value)
        elif key.isdigit() and int(key) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(key)] = value
            else:
                parent.insert(int(key), value)
        else:
            raise Invalid(f"JSON patch index {key!r} out of range at {path!r}",
                          {"causes": [{"field": path, "message": "index out of range"}]})
    else:
        raise Invalid(f"JSON patch path {path!r} does not lead into an object or list",
                      {"causes": [{"field": path, "message": "not a container"}]})
    return doc


def apply_json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise BadRequest("a JSON patch is a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            raise BadRequest(f"malformed JSON patch operation {op!r}")
        kind, path = op["op"], op.get("path")
        parts = _pointer(path)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise BadRequest(f"JSON patch {kind} at {path!r} needs a value")
        if kind == "add":
            doc = _add_at(doc, parts, copy.deepcopy(op["value"]), str(path))
        elif kind == "replace":
            doc = _add_at(doc, parts, copy.deepcopy(op["value"]), str(path), replace=True)
        elif kind == "remove":
            _remove_at(doc, parts, str(path))
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from"))
            value = (_remove_at(doc, source, str(op.get("from"))) if kind == "move"
                     else copy.deepcopy(_get_at(doc, source, str(op.get("from")))))
            doc = _add_at(doc, parts, value, str(path))
        elif kind == "test":
            if _get_at(doc, parts, str(path)) != op["value"]:
                raise Invalid(f"JSON patch test failed at {path!r}", {"causes": [{"field": str(path),
                                                                              "message": "test failed"}]})
        else:
            raise BadRequest(f"unknown JSON patch operation {kind!r}")
    return doc


# -- strategic merge patch ----------------------------------------------------------------------------
def _merge_key(field: str, items: list[Any], parent_path: tuple[str, ...]) -> str | None:
    if field == "ports":
        return "containerPort" if "containers" in parent_path or "initContainers" in parent_path else "port"
    key = MERGE_KEYS.get(field)
    if key is None:
        return None
    if field == "addresses" and "subsets" in parent_path:
        return "ip"
    return key


def apply_strategic_patch(target: Any, patch: Any) -> Any:
    """``target`` with the strategic merge ``patch`` applied; inputs are not modified."""
    if not isinstance(patch, dict):
        raise BadRequest("a strategic merge patch is a JSON object")
    return _merge_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch, ())


def _merge_map(target: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise BadRequest(f"unknown strategic merge patch directive $patch: {directive!r}")
    retain = patch.get("$retainKeys")
    orders = {k.split("/", 1)[1]: v for k, v in patch.items() if k.startswith("$setElementOrder/")}
    deletions = {k.split("/", 1)[1]: v for k, v in patch.items() if k.startswith("$deleteFromPrimitiveList/")}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            target[key] = _merge_map(current if isinstance(current, dict) else {}, value, (*path, key))
        elif isinstance(value, list):
            target[key] = _merge_list(key, target.get(key), value, path)
        else:
            target[key] = copy.deepcopy(value)
    for key, removed in deletions.items():
        if isinstance(target.get(key), list) and isinstance(removed, list):
            target[key] = [v for v in target[key] if v not in removed]
    for key, order in orders.items():
        if isinstance(target.get(key), list) and isinstance(order, list):
            target[key] = _reorder(key, target[key], order, path)
    if isinstance(retain, list):
        for key in list(target):
            if key not in retain:
                del target[key]
    return target


def _merge_list(field: str, current: Any, patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    existing = current if isinstance(current, list) else []
    if field in PRIMITIVE_SETS:
        return list(existing) + [copy.deepcopy(v) for v in patch if v not in existing]
    key = _merge_key(field, patch, path)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    if any(i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy({k: v for k, v in i.items() if k != "$patch"}) for i in patch
                if i.get("$patch") != "replace"]
    result = [copy.deepcopy(i) for i in existing]
    for item in patch:
        name = item.get(key)
        index = next((n for n, e in enumerate(result) if isinstance(e, dict) and e.get(key) == name), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_merge_map({}, item, (*path, field)))
        else:
            result[index] = _merge_map(result[index], item, (*path, field))
    return result


def _reorder(field: str, items: list[Any], order: list[Any], path: tuple[str, ...]) -> list[Any]:
    key = _merge_key(field, items, path)
    if key is None:
        ranks = {repr(v): n for n, v in enumerate(order)}
        return sorted(items, key=lambda v: ranks.get(repr(v), len(ranks)))
    ranks = {repr(entry.get(key)): n for n, entry in enumerate(order) if isinstance(entry, dict)}
    return sorted(items, key=lambda v: ranks.get(repr(v.get(key)) if isinstance(v, dict) else "", len(ranks)))


def apply_patch(content_type: str, target: Any, patch: Any) -> Any:
    """Apply a patch of any supported type (by its ``Content-Type``)."""
    if content_type == JSON_PATCH:
        return apply_json_patch(target, patch)
    if content_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise BadRequest("a merge patch is a JSON object")
        return apply_merge_patch(target, patch)
    if content_type == STRATEGIC_PATCH:
        return apply_strategic_patch(target, patch)
    raise BadRequest(f"unsupported patch type {content_type!r}; use {JSON_PATCH}, {MERGE_PATCH} or {STRATEGIC_PATCH}")
