"""Pod identity, as Kubernetes' ServiceAccount admission plugin gives it. Pure.

Every pod runs as a ServiceAccount (``spec.serviceAccountName``, default ``default``). Unless
``automountServiceAccountToken`` is false on the pod (which wins) or on its ServiceAccount, admission adds
a projected volume ``kube-api-access-<5 chars>`` with

- ``serviceAccountToken`` (``token``): a token bound to the pod, which the kubelet asks of the API (the
  ``token`` verb on pods, ``actors/api/service.py: issue_token``) and renews;
- ``configMap kube-root-ca.crt`` (``ca.crt``): the cluster's CA, published in every namespace by the
  rootca controller;
- ``downwardAPI`` (``namespace``): the pod's namespace;

and mounts it read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in every container and init
container that does not already mount something there.
"""

from __future__ import annotations

from typing import Any

from protocol.objects import Obj

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
DEFAULT_ACCOUNT = "default"
TOKEN_EXPIRATION = 3607


def account_name(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_ACCOUNT)


def automount(pod: Obj, account: Obj | None) -> bool:
    """Whether the token is mounted: the pod's setting wins, then the account's; default true."""
    own = (pod.get("spec") or {}).get("automountServiceAccountToken")
    if isinstance(own, bool):
        return own
    theirs = (account or {}).get("automountServiceAccountToken")
    return theirs if isinstance(theirs, bool) else True


def token_volume(suffix: str) -> Obj:
    return {"name": f"{VOLUME_PREFIX}{suffix}", "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": ROOT_CA_KEY, "path": ROOT_CA_KEY}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def _containers(spec: Obj) -> list[Any]:
    return [c for f in ("initContainers", "containers") for c in spec.get(f) or [] if isinstance(c, dict)]


def add_token_volume(pod: Obj, suffix: str) -> bool:
    """Add the projected token volume and its mounts to ``pod`` in place (idempotent); False when the pod
    already has one or mounts something at the path in every container."""
    spec = pod.setdefault("spec", {})
    volumes = spec.setdefault("volumes", [])
    if any(isinstance(v, dict) and str(v.get("name", "")).startswith(VOLUME_PREFIX) for v in volumes):
        return False
    wanting = [c for c in _containers(spec) if not any(
        isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH for m in c.get("volumeMounts") or [])]
    if not wanting:
        return False
    volume = token_volume(suffix)
    volumes.append(volume)
    for c in wanting:
        c.setdefault("volumeMounts", []).append({"name": volume["name"], "mountPath": MOUNT_PATH, "readOnly": True})
    return True


def root_ca_configmap(namespace: str, ca_pem: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": ROOT_CA_CONFIGMAP, "namespace": namespace,
        "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the "
                        "cluster's API endpoint (Shoal: the NATS servers' TLS CA; empty without TLS)."}},
        "data": {ROOT_CA_KEY: ca_pem}}
