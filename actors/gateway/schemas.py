"""Stand-in for the kinds registry's schema descriptions (h1-registry adds them to ``protocol/kinds``):
an OpenAPI schema per kind, top level and ``metadata`` described, ``spec``/``status`` open. Replaced by the
registry once it lands in main. Pure."""

from __future__ import annotations

from typing import Any

from protocol.kinds import KindInfo

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
    },
}

EXTRA_TOP_LEVEL: dict[str, dict[str, Any]] = {
    "ConfigMap": {"data": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Data."},
                  "binaryData": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"},
                                 "description": "Binary data, base64."},
                  "immutable": {"type": "boolean", "description": "Whether data may no longer change."}},
    "Secret": {"data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"},
                        "description": "Secret data, base64."},
               "stringData": {"type": "object", "additionalProperties": {"type": "string"},
                              "description": "Secret data as plain strings (write-only)."},
               "type": {"type": "string", "description": "Type of the secret."},
               "immutable": {"type": "boolean", "description": "Whether data may no longer change."}},
    "Endpoints": {"subsets": {"type": "array", "description": "Addresses and ports of the service's endpoints.",
                              "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
    "ServiceAccount": {"secrets": {"type": "array", "description": "Secrets of the service account.",
                                   "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                       "automountServiceAccountToken": {"type": "boolean", "description": "Mount the token."},
                       "imagePullSecrets": {"type": "array", "description": "Image pull secrets.",
                                            "items": {"type": "object",
                                                      "x-kubernetes-preserve-unknown-fields": True}}},
}
EVENT_FIELDS = ("involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count",
                "type", "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance")


def open_object(description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "x-kubernetes-preserve-unknown-fields": True}


def schema(info: KindInfo) -> dict[str, Any]:
    """The OpenAPI schema of ``info``'s objects; ``#/definitions/ObjectMeta`` stands for metadata's."""
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string", "description": "Versioned schema of this representation."},
        "kind": {"type": "string", "description": "Kind of object this representation is."},
        "metadata": {"$ref": "ObjectMeta", "description": "Standard object metadata."},
    }
    if info.kind == "Event":
        for field in EVENT_FIELDS:
            properties[field] = ({"type": "integer"} if field == "count" else
                                 open_object(field) if field in ("involvedObject", "source", "series", "related")
                                 else {"type": "string"}) | {"description": f"The event's {field}."}
    elif info.kind in EXTRA_TOP_LEVEL:
        properties.update(EXTRA_TOP_LEVEL[info.kind])
    else:
        properties["spec"] = open_object(f"Desired state of the {info.kind}.")
    if info.has_status:
        properties["status"] = open_object(f"Observed state of the {info.kind} (written by controllers).")
    return {"type": "object", "description": f"{info.kind} ({info.api_version}) as Shoal serves it.",
            "properties": properties}
