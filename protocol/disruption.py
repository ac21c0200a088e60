"""PodDisruptionBudgets: which pods a budget covers, what counts as healthy, and whether an eviction fits.

Shared by the disruption controller (which computes a budget's status) and the API's eviction
subresource (which spends it), so both read a budget the same way. Kubernetes' rules
(``pkg/controller/disruption``, ``pkg/registry/core/pod/storage/eviction.go``):

- a budget selects the pods of its namespace its ``selector`` matches; no selector selects no pod, an
  empty one (``{}``) every pod (policy/v1);
- a pod is healthy when it is Ready and not being deleted, and not listed in ``status.disruptedPods``
  (evicted less than ``DELETION_TIMEOUT`` ago, its deletion not yet seen);
- an eviction of a finished or Pending pod, or of one already being deleted, ignores budgets; a pod
  covered by more than one budget cannot be evicted; an unready pod may go when
  ``unhealthyPodEvictionPolicy`` is ``AlwaysAllow``, or (``IfHealthyBudget``, the default) when the
  budget is healthy; otherwise the budget must be observed at its generation and allow a disruption,
  which the eviction spends (``disruptionsAllowed - 1`` and the pod added to ``disruptedPods``), else
  ``TooManyRequests``. Pure.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from protocol.errors import Forbidden, InternalError, TooManyRequests
from protocol.objects import (
    Obj,
    format_time,
    is_deleting,
    labels_of,
    meta,
    name_of,
    namespace_of,
    parse_time,
    pod_is_ready,
)
from protocol.selectors import from_label_selector

DELETION_TIMEOUT = 120.0
"""Seconds an evicted pod is not counted healthy while its deletion is awaited (Kubernetes' ``DeletionTimeout``)."""
MAX_DISRUPTED_PODS = 2000
"""Most pods ``status.disruptedPods`` may list before evictions are refused (``MaxDisruptedPodSize``)."""
IF_HEALTHY_BUDGET = "IfHealthyBudget"
ALWAYS_ALLOW = "AlwaysAllow"
DISRUPTION_ALLOWED = "DisruptionAllowed"


def selects(pdb: Obj, pod: Obj) -> bool:
    """Whether ``pdb`` covers ``pod`` (same namespace, selector matches; no selector covers nothing)."""
    if namespace_of(pdb) != namespace_of(pod):
        return False
    selector = (pdb.get("spec") or {}).get("selector")
    if selector is None:
        return False
    return from_label_selector(selector).matches(labels_of(pod))


def scaled(value: Any, total: int, *, round_up: bool) -> int:
    """An int-or-percent field: ``3`` is 3, ``"25%"`` is 25% of ``total`` rounded up (or down)."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"(\d+)%", str(value).strip())
    if match is None:
        raise ValueError(f"invalid int or percentage {value!r}")
    exact = int(match.group(1)) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def disrupted_pods(pdb: Obj) -> dict[str, float]:
    """``status.disruptedPods`` as pod name -> eviction time (entries with a bad time are dropped)."""
    found: dict[str, float] = {}
    for name, stamp in ((pdb.get("status") or {}).get("disruptedPods") or {}).items():
        when = parse_time(stamp) if isinstance(stamp, str) else None
        if when is not None:
            found[str(name)] = when
    return found


def is_healthy(pod: Obj, disrupted: dict[str, float], now: float) -> bool:
    """Ready, not being deleted, and not evicted within ``DELETION_TIMEOUT`` (Kubernetes' ``countHealthyPods``)."""
    if is_deleting(pod):
        return False
    evicted = disrupted.get(name_of(pod))
    if evicted is not None and evicted + DELETION_TIMEOUT > now:
        return False
    return pod_is_ready(pod)


def ignores_budgets(pod: Obj) -> bool:
    """An eviction of this pod needs no budget: it is finished, Pending, or already being deleted."""
    return is_deleting(pod) or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Pending")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an eviction does: delete the pod, after writing ``status`` to the budget when it is not None."""

    status: Obj | None = None


def _too_many(pdb: Obj, cause: str) -> TooManyRequests:
    return TooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.",
                           {"causes": [{"reason": "DisruptionBudget", "message": cause}],
                            "budget": name_of(pdb)})


def check_eviction(pod: Obj, budgets: list[Obj], now: float) -> Verdict:
    """Whether ``pod`` may be evicted given the budgets covering it, and the budget status to write
    first when the eviction spends a disruption. Raises ``TooManyRequests`` (not now), ``Forbidden``
    (a budget in a bad state) or ``InternalError`` (more than one budget covers the pod)."""
    if ignores_budgets(pod) or not budgets:
        return Verdict()
    if len(budgets) > 1:
        raise InternalError("This pod has more than one PodDisruptionBudget, which the eviction subresource "
                            "does not support.", {"budgets": sorted(name_of(b) for b in budgets)})
    pdb = budgets[0]
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    observed = int(status.get("observedGeneration") or 0) >= int(meta(pdb).get("generation") or 0)
    if not pod_is_ready(pod):
        if spec.get("unhealthyPodEvictionPolicy") == ALWAYS_ALLOW:
            return Verdict()
        desired = int(status.get("desiredHealthy") or 0)
        if observed and desired > 0 and int(status.get("currentHealthy") or 0) >= desired:
            return Verdict()
    if not observed:
        raise _too_many(pdb, f"The disruption budget {name_of(pdb)} is still being processed by the server.")
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise Forbidden(f"pdb disruptions allowed is negative: {name_of(pdb)}")
    disrupted = dict(status.get("disruptedPods") or {})
    if len(disrupted) > MAX_DISRUPTED_PODS:
        raise Forbidden("DisruptedPods map too big - too many evictions not confirmed by PDB controller")
    if allowed == 0:
        raise _too_many(pdb, f"The disruption budget {name_of(pdb)} needs {int(status.get('desiredHealthy') or 0)} "
                             f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently")
    disrupted[name_of(pod)] = format_time(now)
    new_status: Obj = {**status, "disruptionsAllowed": allowed - 1, "disruptedPods": disrupted}
    if allowed - 1 == 0:
        new_status["conditions"] = with_condition(status.get("conditions"), allowed=False,
                                                  reason="InsufficientPods", message="", now=now)
    return Verdict(new_status)


def with_condition(conditions: Any, *, allowed: bool, reason: str, message: str, now: float) -> list[Obj]:
    """``conditions`` with the DisruptionAllowed condition set (its transition time kept when unchanged)."""
    others = [c for c in conditions or [] if isinstance(c, dict) and c.get("type") != DISRUPTION_ALLOWED]
    old = next((c for c in conditions or [] if isinstance(c, dict) and c.get("type") == DISRUPTION_ALLOWED), None)
    state = "True" if allowed else "False"
    since = (old or {}).get("lastTransitionTime") if (old or {}).get("status") == state else None
    return [*others, {"type": DISRUPTION_ALLOWED, "status": state, "reason": reason, "message": message,
                      "lastTransitionTime": since or format_time(now)}]
