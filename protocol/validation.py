"""Schema validation of objects, reporting every problem with its precise field path.

``validate(obj)`` raises ``Invalid`` whose ``details["causes"]`` is a list of
``{"field": "spec.containers[0].image", "message": "Required value"}``; it never modifies ``obj``.
The envelope (kind, apiVersion, status) and metadata are checked here, the kind's own fields by its
strategy (``protocol.kinds``).
"""

from __future__ import annotations

from typing import Any

from protocol.errors import Invalid
from protocol.fielderrors import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    LABEL_VALUE,
    MAX_ANNOTATIONS_BYTES,
    Errors,
    qualified_name,
    type_name,
)
from protocol.kinds import KindInfo, Strategy, strategy_for
from protocol.objects import Obj


def _path_segment_name(e: Errors, name: Any) -> None:
    """Kubernetes' ``IsValidPathSegmentName`` (RBAC names such as ``system:kube-scheduler``)."""
    if not e.check(name, "metadata.name", str, required=True):
        return
    if name in (".", ".."):
        e.add("metadata.name", f"may not be {name!r}")
    elif "/" in name or "%" in name:
        e.add("metadata.name", f"may not contain '/' or '%' (got {name!r})")
    elif len(name) > 253:
        e.add("metadata.name", "must be no more than 253 characters")


def _metadata(e: Errors, obj: Any, strategy: Strategy) -> None:
    info = strategy.info
    meta = obj.get("metadata")
    if not e.check(meta, "metadata", dict, required=True):
        return
    pattern, what, max_len = (
        (DNS_LABEL, "label", 63) if strategy.name_rule == "label" else (DNS_SUBDOMAIN, "subdomain", 253)
    )
    if meta.get("name") is None and meta.get("generateName"):
        if e.check(meta["generateName"], "metadata.generateName", str) and len(meta["generateName"]) > max_len:
            e.add("metadata.generateName", f"must be no more than {max_len} characters")
    elif strategy.name_rule == "path":
        _path_segment_name(e, meta.get("name"))
    else:
        e.name(meta.get("name"), "metadata.name", pattern, what, max_len)
    if info.namespaced and meta.get("namespace") is not None:
        e.name(meta.get("namespace"), "metadata.namespace", DNS_LABEL, "label", 63)
    labels = meta.get("labels")
    if e.check(labels, "metadata.labels", dict):
        for k, v in labels.items():
            qualified_name(e, str(k), f"metadata.labels[{k}]")
            if not isinstance(v, str):
                e.add(f"metadata.labels[{k}]", "Invalid type: label values must be strings")
            elif len(v) > 63 or not LABEL_VALUE.match(v):
                e.add(f"metadata.labels[{k}]", f"invalid label value {v!r}: 63 characters or less, "
                                              "alphanumeric, '-', '_' or '.'")
    annotations = meta.get("annotations")
    e.string_map(annotations, "metadata.annotations")
    if isinstance(annotations, dict):
        for k in annotations:
            qualified_name(e, str(k), f"metadata.annotations[{k}]")
        size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
        if size > MAX_ANNOTATIONS_BYTES:
            e.add("metadata.annotations", f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes")
    e.str_list(meta.get("finalizers"), "metadata.finalizers")
    for path, ref in e.items(meta.get("ownerReferences"), "metadata.ownerReferences"):
        for f in ("apiVersion", "kind", "name", "uid"):
            e.check(ref.get(f), f"{path}.{f}", str, required=True)
        for f in ("controller", "blockOwnerDeletion"):
            e.check(ref.get(f), f"{path}.{f}", bool)
    for f in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp"):
        e.check(meta.get(f), f"metadata.{f}", str)
    e.integer(meta, "generation", "metadata.generation", 0, bits=64)


def validate(obj: Any, *, expect_kind: str | None = None, old: Obj | None = None) -> KindInfo:
    """Validate a whole object (as an update of ``old`` when given: the kind's update checks too); return
    its kind. Raises Invalid listing every cause."""
    e = Errors()
    if not isinstance(obj, dict):
        raise Invalid(f"an object must be a map, got {type_name(type(obj))}",
                      {"causes": [{"field": "", "message": "expected a map"}]})
    kind: Any = obj.get("kind")
    if not e.check(kind, "kind", str, required=True):
        raise Invalid("object has no kind", {"causes": e.causes})
    strategy = strategy_for(kind)  # BadRequest for unknown kinds
    info = strategy.info
    if expect_kind and kind != expect_kind:
        raise Invalid(f"kind {kind!r} sent to the {expect_kind} endpoint",
                      {"causes": [{"field": "kind", "message": f"expected {expect_kind}"}]})
    api_version = obj.get("apiVersion")
    if e.check(api_version, "apiVersion", str) and api_version != info.api_version:
        e.add("apiVersion", f"Unsupported value: {api_version!r}: {kind} is served as {info.api_version}")
    _metadata(e, obj, strategy)
    strategy.validate_fields(e, obj)
    e.check(obj.get("status"), "status", dict)
    if old is not None and not e.causes:
        strategy.validate_update(e, obj, old)
    if e.causes:
        name = obj.get("metadata", {}).get("name") if isinstance(obj.get("metadata"), dict) else None
        summary = "; ".join(f"{c['field']}: {c['message']}" for c in e.causes[:5])
        more = f" (and {len(e.causes) - 5} more)" if len(e.causes) > 5 else ""
        raise Invalid(f"{kind} {name!r} is invalid: {summary}{more}",
                      {"kind": kind, "name": name, "causes": e.causes})
    return info


def validate_status(obj: Any, *, expect_kind: str) -> None:
    """What an update-status request must get right: a map of the kind, with a name and a map status.
    The rest of the object is taken from the stored copy, so it is not checked again."""
    e = Errors()
    if not isinstance(obj, dict):
        raise Invalid("an object must be a map", {"causes": [{"field": "", "message": "expected a map"}]})
    if obj.get("kind") != expect_kind:
        e.add("kind", f"expected {expect_kind}")
    if e.check(obj.get("metadata"), "metadata", dict, required=True):
        e.check(obj["metadata"].get("name"), "metadata.name", str, required=True)
    e.check(obj.get("status"), "status", dict)
    if e.causes:
        raise Invalid(f"{expect_kind} status update is invalid: "
                      + "; ".join(f"{c['field']}: {c['message']}" for c in e.causes), {"causes": e.causes})
