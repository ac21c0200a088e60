"""Helpers over objects in the Kubernetes shape (plain maps), shared by every actor and agent.

Objects stay plain ``dict``s on purpose: they decode from msgpack and YAML with no conversion, and
unknown fields written by newer clients survive a round trip.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


def meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def name_of(obj: Obj) -> str:
    return str(meta(obj).get("name", ""))


def namespace_of(obj: Obj) -> str | None:
    ns = meta(obj).get("namespace")
    return str(ns) if ns else None


def labels_of(obj: Obj) -> dict[str, str]:
    labels = meta(obj).get("labels")
    return labels if isinstance(labels, dict) else {}


def uid_of(obj: Obj) -> str:
    return str(meta(obj).get("uid", ""))


def resource_version(obj: Obj) -> int:
    """The object's resourceVersion as the integer KV revision (0 when absent)."""
    rv = meta(obj).get("resourceVersion")
    try:
        return int(rv) if rv else 0
    except (TypeError, ValueError):
        return 0


def ref(obj: Obj) -> str:
    """``namespace/name`` (or ``name`` when cluster-scoped): the key controllers reconcile by."""
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


def split_ref(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def controller_of(obj: Obj) -> Obj | None:
    for owner in meta(obj).get("ownerReferences") or []:
        if owner.get("controller"):
            return owner  # type: ignore[no-any-return]
    return None


def owner_reference(owner: Obj, *, controller: bool = True, block: bool = True) -> Obj:
    return {
        "apiVersion": owner.get("apiVersion", ""), "kind": owner.get("kind", ""),
        "name": name_of(owner), "uid": uid_of(owner),
        "controller": controller, "blockOwnerDeletion": block,
    }


_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")
"""The latest second formatted (``format_time`` is asked for the same second many times: every status a
kubelet computes, every write's audit record, every created object; ``strftime`` costs ~4 µs a call)."""


def _split(epoch: float) -> tuple[int, int]:
    """(second, microsecond) of ``epoch`` rounded to the microsecond as ``datetime.fromtimestamp`` rounds it."""
    frac, whole = math.modf(epoch)
    second, micro = int(whole), round(frac * 1_000_000)
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    elif micro < 0:
        second, micro = second - 1, micro + 1_000_000
    return second, micro


def _second_text(second: int) -> str:
    global _last_second
    last = _last_second
    if second != last[0]:
        last = _last_second = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return last[1]


def format_time(epoch: float) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes timestamps."""
    return _second_text(_split(epoch)[0]) + "Z"


def format_micro_time(epoch: float) -> str:
    second, micro = _split(epoch)
    return f"{_second_text(second)}.{micro:06d}Z"


def parse_time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def condition(obj: Obj, kind: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond  # type: ignore[no-any-return]
    return None


def condition_true(obj: Obj, kind: str) -> bool:
    cond = condition(obj, kind)
    return cond is not None and cond.get("status") == "True"


def pod_is_ready(pod: Obj) -> bool:
    return condition_true(pod, "Ready")


def pod_is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_deleting(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))
