"""The kinds Shoal serves: their apiVersion, plural (the key and subject token), short names, scope."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import BadRequest


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: str
    api_version: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool
    has_status: bool
    """Status is written only through update-status; update and patch keep the stored status."""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""


KINDS: tuple[KindInfo, ...] = (
    KindInfo("Namespace", "v1", "namespaces", "namespace", ("ns",), False, True),
    KindInfo("Node", "v1", "nodes", "node", ("no",), False, True),
    KindInfo("Pod", "v1", "pods", "pod", ("po",), True, True),
    KindInfo("ReplicationController", "v1", "replicationcontrollers", "replicationcontroller", ("rc",),
             True, True),
    KindInfo("ReplicaSet", "apps/v1", "replicasets", "replicaset", ("rs",), True, True),
    KindInfo("Deployment", "apps/v1", "deployments", "deployment", ("deploy",), True, True),
    KindInfo("Job", "batch/v1", "jobs", "job", (), True, True),
    KindInfo("CronJob", "batch/v1", "cronjobs", "cronjob", ("cj",), True, True),
    KindInfo("Service", "v1", "services", "service", ("svc",), True, True),
    KindInfo("Endpoints", "v1", "endpoints", "endpoints", ("ep",), True, False),
    KindInfo("ServiceAccount", "v1", "serviceaccounts", "serviceaccount", ("sa",), True, False),
    KindInfo("Secret", "v1", "secrets", "secret", (), True, False),
    KindInfo("ConfigMap", "v1", "configmaps", "configmap", ("cm",), True, False),
    KindInfo("Event", "v1", "events", "event", ("ev",), True, False),
    KindInfo("Lease", "coordination.k8s.io/v1", "leases", "lease", (), True, False),
)

_BY_KIND = {k.kind: k for k in KINDS}
_BY_PLURAL = {k.plural: k for k in KINDS}
_BY_ANY_NAME: dict[str, KindInfo] = {}
for _k in KINDS:
    for _alias in (_k.kind.lower(), _k.plural, _k.singular, *_k.short_names):
        _BY_ANY_NAME[_alias] = _k


def by_kind(kind: str) -> KindInfo:
    info = _BY_KIND.get(kind)
    if info is None:
        raise BadRequest(f"unknown kind {kind!r}; known kinds: {', '.join(sorted(_BY_KIND))}",
                         {"kind": kind})
    return info


def by_plural(plural: str) -> KindInfo:
    info = _BY_PLURAL.get(plural)
    if info is None:
        raise BadRequest(f"unknown resource {plural!r}; known resources: {', '.join(sorted(_BY_PLURAL))}",
                         {"resource": plural})
    return info


def resolve(name: str) -> KindInfo:
    """Resolve what a user typed (``po``, ``pods``, ``Pod``, ``deployments.apps``) to a kind."""
    key = name.strip().lower()
    info = _BY_ANY_NAME.get(key) or _BY_ANY_NAME.get(key.split(".", 1)[0])
    if info is None:
        raise BadRequest(
            f"the server doesn't have a resource type {name!r}; try one of: "
            + ", ".join(sorted(k.plural for k in KINDS)),
            {"resource": name},
        )
    return info
