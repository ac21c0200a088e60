"""The kinds Shoal serves, one strategy each (as Kubernetes' ``strategy.go``), in one registry. Pure.

Each kind is one module here (``pod.py``, ``deployment.py``...) defining ``INFO`` (a ``KindInfo``: group,
version, plural, names, scope, subresources) and ``STRATEGY`` (a ``Strategy``: defaulting, create-time
admission, initial status, validation, update merge, generation, warnings, deletion, columns, schema);
``STRATEGIES`` below registers it. Adding a kind: docs/ADDING_A_KIND.md.

Public API (everything else is a kind module's detail):

- ``by_kind("Pod")``, ``by_plural("pods")``, ``resolve("po")`` -> ``KindInfo`` (BadRequest when unknown);
  ``KINDS``: every ``KindInfo``, in registration order; ``in_category("all")``: the kinds of a category
  (``KindInfo.categories``), in the order kubectl shows them (core group first, then by group and plural).
- ``strategy_for("Pod")`` / ``strategy_for(info)`` -> ``Strategy`` (BadRequest when unknown).
- Columns: ``strategy_for(kind).columns`` (``Column(name, value, priority, type, description)``; priority
  1 = wide only, as Kubernetes' Table), ``strategy.columns_for(wide=...)``, and a row for an object:
  ``strategy.row(obj, now, wide=...)`` (cells as strings; ``now`` in epoch seconds, for ages).
- Schema: ``strategy_for(kind).schema`` -> ``tuple[Field, ...]``, the top-level fields besides apiVersion,
  kind and metadata (``Field(name, type, description, required, fields, items, values, enum)``).
- Warnings: ``warnings_for(obj)`` -> ``list[str]`` for a created object, ``strategy.update_warnings(new,
  old)`` for an update (the text of kubectl's ``Warning:`` lines).

The API actor's I/O-needing hooks per kind (Service addresses, token Secrets) are in
``actors/api/kindhooks.py``; validation of the envelope and metadata is ``protocol.validation``.
"""

from __future__ import annotations

from protocol.errors import BadRequest
from protocol.kinds import (
    configmap,
    controllerrevision,
    cronjob,
    daemonset,
    deployment,
    endpoints,
    event,
    horizontalpodautoscaler,
    job,
    lease,
    namespace,
    node,
    persistentvolume,
    persistentvolumeclaim,
    pod,
    poddisruptionbudget,
    priorityclass,
    rbac,
    replicaset,
    replicationcontroller,
    secret,
    service,
    serviceaccount,
    statefulset,
    storageclass,
)
from protocol.kinds.strategy import Column, Field, KindInfo, Strategy
from protocol.objects import Obj

__all__ = ["KINDS", "STRATEGIES", "Column", "Field", "KindInfo", "Strategy", "by_kind", "by_plural", "in_category",
           "resolve", "strategy_for", "warnings_for"]

STRATEGIES: tuple[Strategy, ...] = (
    namespace.STRATEGY,
    node.STRATEGY,
    pod.STRATEGY,
    replicationcontroller.STRATEGY,
    replicaset.STRATEGY,
    deployment.STRATEGY,
    job.STRATEGY,
    cronjob.STRATEGY,
    daemonset.STRATEGY,
    statefulset.STRATEGY,
    horizontalpodautoscaler.STRATEGY,
    controllerrevision.STRATEGY,
    service.STRATEGY,
    endpoints.STRATEGY,
    serviceaccount.STRATEGY,
    secret.STRATEGY,
    configmap.STRATEGY,
    event.STRATEGY,
    lease.STRATEGY,
    priorityclass.STRATEGY,
    poddisruptionbudget.STRATEGY,
    persistentvolume.STRATEGY,
    persistentvolumeclaim.STRATEGY,
    storageclass.STRATEGY,
    *rbac.STRATEGIES,
)

KINDS: tuple[KindInfo, ...] = tuple(s.info for s in STRATEGIES)

_BY_KIND = {s.kind: s for s in STRATEGIES}
_BY_PLURAL = {s.info.plural: s.info for s in STRATEGIES}
_BY_ANY_NAME: dict[str, KindInfo] = {}
for _k in KINDS:
    for _alias in (_k.kind.lower(), _k.plural, _k.singular, *_k.short_names):
        _BY_ANY_NAME[_alias] = _k


def _unknown_kind(kind: str) -> BadRequest:
    return BadRequest(f"unknown kind {kind!r}; known kinds: {', '.join(sorted(_BY_KIND))}", {"kind": kind})


def by_kind(kind: str) -> KindInfo:
    found = _BY_KIND.get(kind)
    if found is None:
        raise _unknown_kind(kind)
    return found.info


def strategy_for(kind: str | KindInfo) -> Strategy:
    name = kind.kind if isinstance(kind, KindInfo) else kind
    found = _BY_KIND.get(name)
    if found is None:
        raise _unknown_kind(name)
    return found


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


def in_category(category: str) -> tuple[KindInfo, ...]:
    """The kinds in ``category`` (``all``: pods, replicationcontrollers, services, then apps, autoscaling and
    batch kinds), ordered as kubectl's ``get all`` lists them: the core group first, then by group, then by
    plural. An unknown category has no kinds."""
    found = [k for k in KINDS if category in k.categories]
    return tuple(sorted(found, key=lambda k: (k.group != "", k.group, k.plural)))


def warnings_for(obj: Obj) -> list[str]:
    """The warnings of a created object of a known kind (none for an unknown one)."""
    found = _BY_KIND.get(str(obj.get("kind")))
    return found.warnings(obj) if found is not None else []
