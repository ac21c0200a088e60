"""The API actor's RBAC policy, from its own watch cache: no datastore read per request.

``CachePolicy.current()`` returns the ``protocol.rbac.Policy`` built from the cached Roles, ClusterRoles and
bindings, rebuilt only when one of those kinds changed since (``WatchCache.changed``): a request costs four
dict lookups plus the evaluation. ``ensure_bootstrap`` creates the bootstrap policy
(``protocol.rbac_bootstrap``) when absent and reconciles it as kube-apiserver does at start: a bootstrap object
annotated ``rbac.authorization.kubernetes.io/autoupdate: "true"`` gets the rules (or subjects) of this
version it lacks, keeping the ones its owner added (so a cluster made before a component's role grew keeps
working after an upgrade); with the annotation ``"false"`` it is left as it is.
"""

from __future__ import annotations

from typing import Any

from actors.api.cache import WatchCache
from actors.api.service import ApiService
from protocol import codec, keys, rbac_bootstrap
from protocol.errors import AlreadyExists, Conflict
from protocol.kinds import by_kind
from protocol.kinds.rbac import CLUSTER_ROLE, CLUSTER_ROLE_BINDING, ROLE, ROLE_BINDING
from protocol.rbac import Policy, Rule

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


def _rule_key(raw: Any) -> Any:
    return Rule.parse(raw)


def _subject_key(raw: Any) -> Any:
    return (raw.get("kind"), raw.get("name"), raw.get("namespace") or "") if isinstance(raw, dict) else None


def reconciled(existing: dict[str, Any], bootstrap: dict[str, Any]) -> dict[str, Any] | None:
    """``existing`` with what ``bootstrap`` has and it lacks (rules of a ClusterRole, subjects of a binding),
    or None when nothing is missing or its owner opted out (``autoupdate: "false"``). Additive only, as
    Kubernetes' reconciliation with ``--confirm`` and no removal of extra permissions."""
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    if annotations.get(rbac_bootstrap.AUTOUPDATE_KEY) == "false":
        return None
    field = "rules" if bootstrap["kind"] == "ClusterRole" else "subjects"
    have = existing.get(field) or []
    if not isinstance(have, list):
        return None
    same = _rule_key if field == "rules" else _subject_key
    present = {same(item) for item in have}
    missing = [item for item in bootstrap.get(field) or [] if same(item) not in present]
    if not missing:
        return None
    return {**existing, field: [*have, *missing]}


async def ensure_bootstrap(service: ApiService) -> None:
    """Create each bootstrap ClusterRole and ClusterRoleBinding that does not exist; add to an existing one
    what this version's lacks (``reconciled``)."""
    for kind, objects in (("ClusterRole", rbac_bootstrap.CLUSTER_ROLES),
                          ("ClusterRoleBinding", rbac_bootstrap.CLUSTER_ROLE_BINDINGS)):
        info = by_kind(kind)
        for obj in objects:
            name = obj["metadata"]["name"]
            entry = service.cache.get(keys.object_key(info, None, name))
            if entry is not None:
                updated = reconciled(codec.unpackb(entry.raw), obj)
                if updated is not None:
                    try:
                        await service.update(info, None, name, updated)
                    except Conflict:
                        pass  # another API actor reconciles it at the same time, or its owner edits it
                continue
            try:
                await service.create(info, None, codec.unpackb(codec.packb(obj)))
            except AlreadyExists:
                pass
