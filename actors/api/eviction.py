"""The eviction subresource of pods (policy/v1 Eviction): a deletion that honours PodDisruptionBudgets.

``shoal.api.evict.pods.<ns>.<name>`` with ``{"options": DeleteOptions}``. Kubernetes' ``EvictionREST``:
read the pod fresh; find the budgets of its namespace that cover it (the watch cache says which exist,
each is then read fresh from the datastore); ``protocol.disruption.check_eviction`` decides. When the
eviction spends a disruption, the budget's status (``disruptionsAllowed - 1``, the pod in
``disruptedPods``) is written first with compare-and-swap on the revision just read: two evictions racing
for the last allowed disruption cannot both win, the loser re-reads and is refused. Then the pod is
deleted (gracefully, with the options given). A refusal is ``TooManyRequests`` (HTTP 429): retry later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocol import codec
from protocol.disruption import check_eviction, selects
from protocol.errors import BadRequest, Conflict, NotFound
from protocol.kinds import KindInfo, by_kind
from protocol.objects import Obj, name_of
from protocol.selectors import EVERYTHING, parse_field_selector

if TYPE_CHECKING:
    from actors.api.service import ApiService

BUDGETS = by_kind("PodDisruptionBudget")
ATTEMPTS = 8
"""Budget writes lost to a concurrent eviction before giving up with Conflict (each re-reads and re-checks)."""


async def _budgets(service: ApiService, namespace: str | None, pod: Obj) -> list[tuple[Obj, int]]:
    """The budgets covering ``pod``, each read fresh from the datastore with its revision."""
    found: list[tuple[Obj, int]] = []
    for entry in service.cache.select(BUDGETS.plural, namespace, EVERYTHING, parse_field_selector(None)):
        cached = codec.unpackb(entry.raw)
        if not selects(cached, pod):
            continue
        try:
            fresh, rev = await service._read(BUDGETS, namespace, name_of(cached))
        except NotFound:
            continue  # deleted since the cache saw it
        if selects(fresh, pod):
            found.append((fresh, rev))
    return found


async def evict(service: ApiService, info: KindInfo, namespace: str | None, name: str,
                options: dict[str, Any]) -> Obj:
    """Evict the pod ``namespace/name``: the deleted (or now terminating) pod, or TooManyRequests."""
    if info.kind != "Pod":
        raise BadRequest(f"{info.plural} cannot be evicted")
    for _attempt in range(ATTEMPTS):
        pod, _ = await service._read(info, namespace, name)
        budgets = await _budgets(service, namespace, pod)
        verdict = check_eviction(pod, [b for b, _ in budgets], service.clock())
        if verdict.status is not None:
            budget, rev = budgets[0]
            spent = {**budget, "status": verdict.status}
            spent["metadata"] = {**budget["metadata"], "resourceVersion": str(rev)}
            try:
                await service.update(BUDGETS, namespace, name_of(budget), spent, status_only=True)
            except Conflict:
                continue  # another eviction (or the controller) wrote it: read again and decide again
        return await service.delete(info, namespace, name, options)
    raise Conflict(f'the disruption budget of pods "{name}" is being changed too often; retry the eviction')
