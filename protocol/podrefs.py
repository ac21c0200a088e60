"""The objects a Pod references by name: what its kubelet needs to read to run it. Pure.

Kubernetes' Node authorizer graph in one function: a pod references the Secrets, ConfigMaps,
PersistentVolumeClaims and its ServiceAccount named in ``volumes`` (configMap, secret,
persistentVolumeClaim, projected sources), in every container's ``env[].valueFrom`` and ``envFrom``
(init and ephemeral containers too), in ``imagePullSecrets`` and ``serviceAccountName``. The API actor
allows a kubelet to read an object of these kinds only when a pod bound to its node references it
(``actors/api/noderestriction.py``); the kubelet uses the same list to know what to fetch. A
PersistentVolume is readable by the node when a claim its pods reference is bound to it (pod -> claim ->
volume, as in Kubernetes' graph).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from protocol.objects import Obj, namespace_of

SECRET, CONFIG_MAP, PVC, SERVICE_ACCOUNT = "Secret", "ConfigMap", "PersistentVolumeClaim", "ServiceAccount"
REFERENCED_KINDS = frozenset({SECRET, CONFIG_MAP, PVC, SERVICE_ACCOUNT})
PV = "PersistentVolume"
NODE_READABLE_KINDS = REFERENCED_KINDS | {PV}
"""What a kubelet may get when its pods lead to it: the referenced kinds, and the volumes of referenced claims."""

Ref = tuple[str, str, str]
"""(kind, namespace, name)."""


def _maps(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (v for v in value if isinstance(v, dict))


def _name(value: Any, key: str = "name") -> str | None:
    if isinstance(value, dict) and isinstance(value.get(key), str) and value[key]:
        return str(value[key])
    return None


def all_containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from _maps(spec.get(field))


def _volume_refs(volume: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    yield CONFIG_MAP, _name(volume.get("configMap"))
    yield SECRET, _name(volume.get("secret"), "secretName")
    yield PVC, _name(volume.get("persistentVolumeClaim"), "claimName")
    projected = volume.get("projected")
    for source in _maps(projected.get("sources") if isinstance(projected, dict) else None):
        yield CONFIG_MAP, _name(source.get("configMap"))
        yield SECRET, _name(source.get("secret"))


def _container_refs(c: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    for e in _maps(c.get("env")):
        value_from = e.get("valueFrom")
        if isinstance(value_from, dict):
            yield CONFIG_MAP, _name(value_from.get("configMapKeyRef"))
            yield SECRET, _name(value_from.get("secretKeyRef"))
    for e in _maps(c.get("envFrom")):
        yield CONFIG_MAP, _name(e.get("configMapRef"))
        yield SECRET, _name(e.get("secretRef"))


def pod_references(pod: Obj) -> frozenset[Ref]:
    """Every (kind, namespace, name) the pod names, in its own namespace."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return frozenset()
    namespace = namespace_of(pod) or "default"
    found: list[tuple[str, str | None]] = []
    for volume in _maps(spec.get("volumes")):
        found += _volume_refs(volume)
    for c in all_containers(spec):
        found += _container_refs(c)
    found += [(SECRET, _name(s)) for s in _maps(spec.get("imagePullSecrets"))]
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if isinstance(account, str) and account:
        found.append((SERVICE_ACCOUNT, account))
    return frozenset((kind, namespace, name) for kind, name in found if name)
