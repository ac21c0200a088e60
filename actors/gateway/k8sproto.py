"""Kubernetes' protobuf encoding of request bodies (``application/vnd.kubernetes.protobuf``), decoded to the
JSON form; pure.

kubectl sends protobuf, not JSON, from its typed clients: ``kubectl create deployment|service|configmap|
secret|namespace|serviceaccount|priorityclass``, the ``TokenRequest`` of ``kubectl create token``,
``kubectl create role|clusterrole|rolebinding|clusterrolebinding``, the access reviews of ``kubectl auth
can-i``, and the
``DeleteOptions`` of ``kubectl drain``. The body is
``k8s\\x00`` then a ``runtime.Unknown`` (its ``typeMeta`` and ``raw``, the object's own message). The messages
those commands write are described below (field numbers from k8s.io/api and k8s.io/apimachinery
``generated.proto``); any other kind, or a field not described here and set to something else than its zero
value, is refused (415), never dropped: JSON bodies (``kubectl apply``) carry everything.

Go's protobuf writes non-pointer fields even when empty, so empty strings, zeros and ``false`` are left out
of the JSON form (as Go's ``omitempty`` would), except for the fields in ``KEEP_ZERO`` where a zero means
something (``replicas: 0``).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from protocol.errors import BadRequest

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"

# field number -> (JSON name, type); a type is a scalar ("string", "bytes", "int", "bool"), a message name,
# "map:<value type>" for map fields, and "[]<type>" for repeated fields.
MESSAGES: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes"), 3: ("contentEncoding", "string"),
                4: ("contentType", "string")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
                   4: ("selfLink", "string"), 5: ("uid", "string"), 6: ("resourceVersion", "string"),
                   7: ("generation", "int"), 8: ("creationTimestamp", "Time"), 9: ("deletionTimestamp", "Time"),
                   10: ("deletionGracePeriodSeconds", "int"), 11: ("labels", "map:string"),
                   12: ("annotations", "map:string"), 13: ("ownerReferences", "[]OwnerReference"),
                   14: ("finalizers", "[]string")},
    "OwnerReference": {1: ("kind", "string"), 3: ("name", "string"), 4: ("uid", "string"),
                       5: ("apiVersion", "string"), 6: ("controller", "bool"), 7: ("blockOwnerDeletion", "bool")},
    "Time": {1: ("seconds", "int"), 2: ("nanos", "int")},
    "IntOrString": {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "string")},
    "Quantity": {1: ("string", "string")},
    "LabelSelector": {1: ("matchLabels", "map:string"), 2: ("matchExpressions", "[]LabelSelectorRequirement")},
    "LabelSelectorRequirement": {1: ("key", "string"), 2: ("operator", "string"), 3: ("values", "[]string")},
    "ConfigMap": {1: ("metadata", "ObjectMeta"), 2: ("data", "map:string"), 3: ("binaryData", "map:bytes"),
                  4: ("immutable", "bool")},
    "Secret": {1: ("metadata", "ObjectMeta"), 2: ("data", "map:bytes"), 3: ("type", "string"),
               4: ("stringData", "map:string"), 5: ("immutable", "bool")},
    "Namespace": {1: ("metadata", "ObjectMeta"), 2: ("spec", "NamespaceSpec"), 3: ("status", "Empty")},
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "ServiceAccount": {1: ("metadata", "ObjectMeta"), 2: ("secrets", "[]ObjectReference"),
                       3: ("imagePullSecrets", "[]LocalObjectReference"), 4: ("automountServiceAccountToken", "bool")},
    "ObjectReference": {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string"),
                        4: ("uid", "string"), 5: ("apiVersion", "string"), 6: ("resourceVersion", "string"),
                        7: ("fieldPath", "string")},
    "LocalObjectReference": {1: ("name", "string")},
    "Service": {1: ("metadata", "ObjectMeta"), 2: ("spec", "ServiceSpec"), 3: ("status", "Empty")},
    "ServiceSpec": {1: ("ports", "[]ServicePort"), 2: ("selector", "map:string"), 3: ("clusterIP", "string"),
                    4: ("type", "string"), 5: ("externalIPs", "[]string"), 7: ("sessionAffinity", "string"),
                    10: ("externalName", "string"), 18: ("clusterIPs", "[]string")},
    "ServicePort": {1: ("name", "string"), 2: ("protocol", "string"), 3: ("port", "int"),
                    4: ("targetPort", "IntOrString"), 5: ("nodePort", "int"), 6: ("appProtocol", "string")},
    "Deployment": {1: ("metadata", "ObjectMeta"), 2: ("spec", "DeploymentSpec"), 3: ("status", "Empty")},
    "DeploymentSpec": {1: ("replicas", "int"), 2: ("selector", "LabelSelector"), 3: ("template", "PodTemplateSpec"),
                       4: ("strategy", "DeploymentStrategy"), 5: ("minReadySeconds", "int"),
                       6: ("revisionHistoryLimit", "int"), 7: ("paused", "bool"),
                       9: ("progressDeadlineSeconds", "int")},
    "DeploymentStrategy": {1: ("type", "string"), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: ("maxUnavailable", "IntOrString"), 2: ("maxSurge", "IntOrString")},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {2: ("containers", "[]Container"), 3: ("restartPolicy", "string"),
                4: ("terminationGracePeriodSeconds", "int"), 6: ("dnsPolicy", "string"),
                7: ("nodeSelector", "map:string"), 8: ("serviceAccountName", "string"),
                19: ("schedulerName", "string"), 20: ("initContainers", "[]Container")},
    "Container": {1: ("name", "string"), 2: ("image", "string"), 3: ("command", "[]string"),
                  4: ("args", "[]string"), 5: ("workingDir", "string"), 6: ("ports", "[]ContainerPort"),
                  7: ("env", "[]EnvVar"), 8: ("resources", "ResourceRequirements"),
                  13: ("terminationMessagePath", "string"), 14: ("imagePullPolicy", "string"),
                  20: ("terminationMessagePolicy", "string")},
    "ContainerPort": {1: ("name", "string"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                      4: ("protocol", "string"), 5: ("hostIP", "string")},
    "EnvVar": {1: ("name", "string"), 2: ("value", "string")},
    "ResourceRequirements": {1: ("limits", "map:Quantity"), 2: ("requests", "map:Quantity")},
    "Job": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec"), 3: ("status", "Empty")},
    "JobSpec": {1: ("parallelism", "int"), 2: ("completions", "int"), 3: ("activeDeadlineSeconds", "int"),
                4: ("selector", "LabelSelector"), 5: ("manualSelector", "bool"), 6: ("template", "PodTemplateSpec"),
                7: ("backoffLimit", "int"), 8: ("ttlSecondsAfterFinished", "int"), 9: ("completionMode", "string"),
                10: ("suspend", "bool"), 14: ("podReplacementPolicy", "string")},
    "PriorityClass": {1: ("metadata", "ObjectMeta"), 2: ("value", "int"), 3: ("globalDefault", "bool"),
                      4: ("description", "string"), 5: ("preemptionPolicy", "string")},
    "DeleteOptions": {1: ("gracePeriodSeconds", "int"), 2: ("preconditions", "Preconditions"),
                      3: ("orphanDependents", "bool"), 4: ("propagationPolicy", "string"), 5: ("dryRun", "[]string")},
    "Preconditions": {1: ("uid", "string"), 2: ("resourceVersion", "string")},
    "TokenRequest": {1: ("metadata", "ObjectMeta"), 2: ("spec", "TokenRequestSpec"), 3: ("status", "Empty")},
    "TokenRequestSpec": {1: ("audiences", "[]string"), 3: ("boundObjectRef", "BoundObjectReference"),
                         4: ("expirationSeconds", "int")},
    "BoundObjectReference": {1: ("kind", "string"), 2: ("apiVersion", "string"), 3: ("name", "string"),
                             4: ("uid", "string")},
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SelfSubjectAccessReviewSpec"),
                                3: ("status", "Empty")},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes"),
                                    2: ("nonResourceAttributes", "NonResourceAttributes")},
    "ResourceAttributes": {1: ("namespace", "string"), 2: ("verb", "string"), 3: ("group", "string"),
                           4: ("version", "string"), 5: ("resource", "string"), 6: ("subresource", "string"),
                           7: ("name", "string")},
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
    "SubjectAccessReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SubjectAccessReviewSpec"),
                            3: ("status", "Empty")},
    "SubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes"),
                                2: ("nonResourceAttributes", "NonResourceAttributes"), 3: ("user", "string"),
                                4: ("groups", "[]string"), 6: ("uid", "string")},
    "SelfSubjectRulesReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SelfSubjectRulesReviewSpec"),
                               3: ("status", "Empty")},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string")},
    "Role": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule")},
    "ClusterRole": {1: ("metadata", "ObjectMeta"), 2: ("rules", "[]PolicyRule"),
                    3: ("aggregationRule", "AggregationRule")},
    "PolicyRule": {1: ("verbs", "[]string"), 2: ("apiGroups", "[]string"), 3: ("resources", "[]string"),
                   4: ("resourceNames", "[]string"), 5: ("nonResourceURLs", "[]string")},
    "AggregationRule": {1: ("clusterRoleSelectors", "[]LabelSelector")},
    "RoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"), 3: ("roleRef", "RoleRef")},
    "ClusterRoleBinding": {1: ("metadata", "ObjectMeta"), 2: ("subjects", "[]Subject"), 3: ("roleRef", "RoleRef")},
    "Subject": {1: ("kind", "string"), 2: ("apiGroup", "string"), 3: ("name", "string"), 4: ("namespace", "string")},
    "RoleRef": {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")},
    "Empty": {},
}
KINDS = frozenset({"ConfigMap", "Secret", "Namespace", "ServiceAccount", "Service", "Deployment", "PriorityClass",
                   "Job", "DeleteOptions", "TokenRequest", "SelfSubjectAccessReview", "SubjectAccessReview",
                   "SelfSubjectRulesReview", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
KEEP_ZERO = frozenset({("DeploymentSpec", "replicas"), ("PriorityClass", "value"),
                       ("JobSpec", "parallelism"), ("JobSpec", "completions"), ("JobSpec", "backoffLimit"),
                       ("JobSpec", "ttlSecondsAfterFinished"),
                       ("DeleteOptions", "gracePeriodSeconds"), ("DeleteOptions", "orphanDependents"),
                       ("ServiceAccount", "automountServiceAccountToken"),
                       ("PodSpec", "terminationGracePeriodSeconds")})


class Unsupported(BadRequest):
    """A protobuf body the gateway cannot read: answered 415, so the client may send JSON instead."""

    http_status = 415


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise BadRequest("truncated protobuf varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise BadRequest("truncated protobuf field")
            out.append((number, data[pos:pos + length]))
            pos += length
        else:
            raise Unsupported(f"protobuf wire type {wire} is not used by the kinds the gateway reads")
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind == "string":
        return value.decode() if isinstance(value, bytes) else str(value)
    if kind == "bytes":
        return base64.b64encode(value).decode() if isinstance(value, bytes) else ""
    if kind == "int":
        return _signed(value) if isinstance(value, int) else 0
    if kind == "bool":
        return bool(value)
    return decode_message(kind, value if isinstance(value, bytes) else b"")


def _empty(value: Any) -> bool:
    return value in ("", 0, False, None) or value == {} or value == []


def decode_message(name: str, data: bytes) -> Any:
    table = MESSAGES[name]
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in table:
            if value in (0, b""):
                continue  # a Go zero value, written for every non-pointer field: the same as absent
            raise Unsupported(f"field {number} of {name} in the protobuf body is not read by the gateway: send "
                              "JSON (kubectl apply -f) for it")
        field, kind = table[number]
        if kind.startswith("map:"):
            entry = dict(_fields(value if isinstance(value, bytes) else b""))
            key = entry.get(1, b"")
            out.setdefault(field, {})[key.decode() if isinstance(key, bytes) else str(key)] = \
                _scalar(kind[4:], entry.get(2, b"" if kind[4:] != "int" else 0))
        elif kind.startswith("[]"):
            out.setdefault(field, []).append(_scalar(kind[2:], value))
        else:
            out[field] = _scalar(kind, value)
    if name == "Time":
        if not out.get("seconds"):
            return None  # Go's zero time: absent
        return datetime.fromtimestamp(int(out.get("seconds", 0)), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if name == "IntOrString":
        return out.get("strVal", "") if out.get("type") == 1 else int(out.get("intVal", 0))
    if name == "Quantity":
        return out.get("string", "")
    return {k: v for k, v in out.items() if (name, k) in KEEP_ZERO or not _empty(v)}


def decode(body: bytes) -> dict[str, Any]:
    """The object of a ``application/vnd.kubernetes.protobuf`` body, in its JSON form."""
    if not body.startswith(MAGIC):
        raise BadRequest("a Kubernetes protobuf body starts with k8s\\x00")
    unknown = decode_message("Unknown", body[len(MAGIC):]) if len(body) > len(MAGIC) else {}
    type_meta = unknown.get("typeMeta") or {}
    kind, api_version = type_meta.get("kind", ""), type_meta.get("apiVersion", "")
    if kind not in KINDS:
        raise Unsupported(f"the gateway reads protobuf bodies of {', '.join(sorted(KINDS))}, not {kind or 'this'}: "
                          "send JSON (kubectl apply -f)")
    obj = decode_message(kind, base64.b64decode(unknown.get("raw", "")))
    if not isinstance(obj, dict):
        raise BadRequest("the protobuf body is not an object")
    return {"apiVersion": api_version, "kind": kind, **obj}
