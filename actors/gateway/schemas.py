"""OpenAPI schemas of the kinds, from the kinds registry (``protocol.kinds``: each strategy's ``schema``, a
tree of ``Field``); pure.

The registry describes what Shoal reads, not every field Kubernetes defines, so below the top level every
object is open (``x-kubernetes-preserve-unknown-fields``): a manifest with a field Shoal does not describe
(``securityContext``) is neither refused nor stripped. The top level and ``metadata`` are closed: an unknown
field there is a typo (``kubectl apply`` refuses it; ``fieldValidation`` applies). ``nested=False`` gives
the shape for OpenAPI v2, which kubectl validates manifests against and which has no notion of open objects:
there every object below the top level is left without properties.
"""

from __future__ import annotations

from typing import Any

from protocol.kinds import Field, KindInfo, strategy_for

OBJECT_META: dict[str, Any] = {
    "description": "Standard object metadata: name, namespace, labels, annotations and what the API fills in.",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Name, unique within the namespace (or the cluster)."},
        "generateName": {"type": "string", "description": "Prefix of a name the server generates."},
        "namespace": {"type": "string", "description": "Namespace of the object; empty for cluster-scoped kinds."},
        "uid": {"type": "string", "description": "Unique ID of this incarnation of the object (set by the API)."},
        "resourceVersion": {"type": "string", "description": "Version of the object: the datastore revision."},
        "generation": {"type": "integer", "format": "int64",
                       "description": "Sequence number of changes to the desired state."},
        "creationTimestamp": {"type": "string", "format": "date-time", "description": "When it was created."},
        "deletionTimestamp": {"type": "string", "format": "date-time", "description": "When deletion was asked."},
        "deletionGracePeriodSeconds": {"type": "integer", "format": "int64",
                                       "description": "Seconds the object has to go away once deleted."},
        "labels": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "Labels, selected by label selectors."},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "Annotations: non-identifying data for tools."},
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge",
                       "description": "Finalizers that must be removed before the object is deleted."},
        "ownerReferences": {"type": "array", "description": "Objects this one depends on (garbage collection).",
                            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge"},
        "managedFields": {"type": "array", "description": "Field managers (not kept by Shoal).",
                          "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        "selfLink": {"type": "string", "description": "Deprecated; never set by Shoal."},
    },
}

KUBERNETES_TOP_LEVEL: dict[str, tuple[Field, ...]] = {
    "ConfigMap": (Field("immutable", "boolean", "Whether data may no longer change."),),
    "Secret": (Field("immutable", "boolean", "Whether data may no longer change."),),
    "ServiceAccount": (Field("automountServiceAccountToken", "boolean", "Mount the token into pods."),
                       Field("imagePullSecrets", "array", "Secrets for pulling images.", items=Field("", "object"))),
    "Event": tuple(Field(name, kind, f"The event's {name}.") for name, kind in (
        ("eventTime", "string"), ("series", "object"), ("action", "string"), ("related", "object"),
        ("reportingComponent", "string"), ("reportingInstance", "string"))),
}
"""Top-level fields Kubernetes defines that the registry does not describe: accepted, so that manifests and
objects written by Kubernetes tools are not refused."""


def field_schema(field: Field, nested: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"type": field.type}
    if field.description:
        out["description"] = field.description
    if field.enum:
        out["enum"] = list(field.enum)
    if field.type == "object":
        if field.values is not None:
            out["additionalProperties"] = field_schema(field.values, nested)
        elif nested and field.fields:
            out["properties"] = {f.name: field_schema(f, nested) for f in field.fields}
            required = [f.name for f in field.fields if f.required]
            if required:
                out["required"] = required
            out["x-kubernetes-preserve-unknown-fields"] = True
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif field.type == "array":
        out["items"] = (field_schema(field.items, nested) if field.items is not None
                        else {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    return out


def schema(info: KindInfo, nested: bool = True) -> dict[str, Any]:
    """The OpenAPI schema of ``info``'s objects; ``{"$ref": "ObjectMeta"}`` stands for metadata's."""
    strategy = strategy_for(info)
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string", "description": "Versioned schema of this representation."},
        "kind": {"type": "string", "description": "Kind of object this representation is."},
        "metadata": {"$ref": "ObjectMeta", "description": "Standard object metadata."},
    }
    for field in (*strategy.schema, *KUBERNETES_TOP_LEVEL.get(info.kind, ())):
        properties[field.name] = field_schema(field, nested)
    return {"type": "object", "description": strategy.description or f"{info.kind} ({info.api_version}).",
            "properties": properties}
