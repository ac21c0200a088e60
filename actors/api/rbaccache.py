"""The API actor's RBAC policy, from its own watch cache: no datastore read per request.

``CachePolicy.current()`` returns the ``protocol.rbac.Policy`` built from the cached Roles, ClusterRoles and
bindings, rebuilt only when one of those kinds changed since (``WatchCache.changed``): a request costs four
dict lookups plus the evaluation. ``ensure_bootstrap`` creates the bootstrap policy
(``protocol.rbac_bootstrap``) when absent, as kube-apiserver does at start.
"""

from __future__ import annotations

from typing import Any

from actors.api.cache import WatchCache
from actors.api.service import ApiService
from protocol import codec, keys, rbac_bootstrap
from protocol.errors import AlreadyExists
from protocol.kinds import by_kind
from protocol.kinds.rbac import CLUSTER_ROLE, CLUSTER_ROLE_BINDING, ROLE, ROLE_BINDING
from protocol.rbac import Policy

PLURALS = (ROLE.plural, CLUSTER_ROLE.plural, ROLE_BINDING.plural, CLUSTER_ROLE_BINDING.plural)


class CachePolicy:
    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache
        self._seen: tuple[int, ...] | None = None
        self._policy = Policy()
        self.builds = 0

    def current(self) -> Policy:
        changed = self.cache.changed
        seen = tuple(changed.get(p, 0) for p in PLURALS)
        if seen != self._seen:
            self._policy = Policy.build(*(self._objects(p) for p in PLURALS))
            self._seen = seen
            self.builds += 1
        return self._policy

    def _objects(self, plural: str) -> list[dict[str, Any]]:
        out = []
        for entry in self.cache.objects.get(plural, {}).values():
            try:
                obj = codec.unpackb(entry.raw)
            except Exception:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out


async def ensure_bootstrap(service: ApiService) -> None:
    """Create each bootstrap ClusterRole and ClusterRoleBinding that does not exist (existing ones, maybe
    edited by the cluster's owner, are left as they are)."""
    for kind, objects in (("ClusterRole", rbac_bootstrap.CLUSTER_ROLES),
                          ("ClusterRoleBinding", rbac_bootstrap.CLUSTER_ROLE_BINDINGS)):
        info = by_kind(kind)
        for obj in objects:
            if service.cache.get(keys.object_key(info, None, obj["metadata"]["name"])) is not None:
                continue
            try:
                await service.create(info, None, codec.unpackb(codec.packb(obj)))
            except AlreadyExists:
                pass
