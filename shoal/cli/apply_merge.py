"""The three-way merge behind ``shoal apply``, pure: what was last applied, what is applied now, and what
the cluster holds give the object to write.

As with kubectl, the manifest last applied is kept in the ``kubectl.kubernetes.io/last-applied-configuration``
annotation. Fields set in the manifest win; fields the previous manifest set and this one dropped are
removed; everything else the cluster holds (defaults the API filled in, fields written by controllers,
status) is kept. Lists of named things (containers, env, volumes, ports...) merge item by item on their
key, as Kubernetes' strategic merge patch does, so defaulted fields inside containers survive a
re-apply and an unchanged manifest writes nothing.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from protocol.objects import Obj, meta

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",),
    "ports": ("containerPort", "port"),
    "hostAliases": ("ip",),
}
"""Field name → candidate keys identifying the items of that list (the first all items carry is used)."""


def manifest_for_annotation(manifest: Obj) -> str:
    """The manifest as recorded in the annotation: compact JSON, stable key order, no resourceVersion."""
    recorded = copy.deepcopy(manifest)
    m = meta(recorded)
    m.pop("resourceVersion", None)
    annotations = dict(m.get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    if annotations:
        m["annotations"] = annotations
    else:
        m.pop("annotations", None)
    return json.dumps(recorded, sort_keys=True, separators=(",", ":"))


def with_last_applied(manifest: Obj) -> Obj:
    """A copy of ``manifest`` carrying the annotation: what ``apply`` sends on create."""
    out = copy.deepcopy(manifest)
    m = meta(out)
    m.pop("resourceVersion", None)
    m["annotations"] = {**(m.get("annotations") or {}), LAST_APPLIED: manifest_for_annotation(manifest)}
    return out


def last_applied(current: Obj) -> Obj | None:
    raw = (meta(current).get("annotations") or {}).get(LAST_APPLIED)
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _merge_key(field: str, *lists: list[Any]) -> str | None:
    for key in MERGE_KEYS.get(field, ()):
        if all(isinstance(item, dict) and key in item for items in lists for item in items):
            return key
    return None


def _merge_list(field: str, original: Any, modified: list[Any], current: Any) -> list[Any]:
    if not isinstance(current, list):
        return copy.deepcopy(modified)
    original_items = original if isinstance(original, list) else []
    key = _merge_key(field, modified, current, original_items)
    if key is None:
        return copy.deepcopy(modified)
    current_by = {item[key]: item for item in current}
    original_by = {item[key]: item for item in original_items}
    wanted = {item[key] for item in modified}
    merged = [merge(original_by.get(item[key]), item, current_by[item[key]]) if item[key] in current_by
              else copy.deepcopy(item) for item in modified]
    # items someone else added stay; items the previous manifest had and this one dropped go
    merged += [copy.deepcopy(item) for item in current
               if item[key] not in wanted and item[key] not in original_by]
    return merged


def merge(original: Any, modified: Any, current: Any, field: str = "") -> Any:
    """Three-way merge of one value: ``original`` last applied, ``modified`` applied now, ``current`` live."""
    if isinstance(modified, dict) and isinstance(current, dict):
        result = copy.deepcopy(current)
        previous = original if isinstance(original, dict) else {}
        for key in previous:
            if key not in modified:
                result.pop(key, None)
        for key, value in modified.items():
            if value is None:
                result.pop(key, None)
            elif key in current:
                result[key] = merge(previous.get(key), value, current[key], key)
            else:
                result[key] = copy.deepcopy(value)
        return result
    if isinstance(modified, list):
        return _merge_list(field, original, modified, current)
    return copy.deepcopy(modified)


def applied(current: Obj, manifest: Obj) -> Obj:
    """The object ``apply`` writes over ``current`` (its resourceVersion kept, for compare-and-swap)."""
    modified = with_last_applied(manifest)
    result: Obj = merge(last_applied(current), modified, current)
    rv = meta(current).get("resourceVersion")
    if rv is not None:
        meta(result)["resourceVersion"] = rv
    return result
