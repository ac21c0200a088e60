"""Taints and tolerations: the one matching rule, shared by the scheduler and the node lifecycle controller.

``tolerates_taint`` is Kubernetes' ``Toleration.ToleratesTaint`` (k8s.io/api core/v1), rule for rule:

- an empty ``effect`` matches every effect, otherwise the effects must be equal;
- an empty ``key`` matches every key, otherwise the keys must be equal;
- operator ``Exists`` matches any value; ``Equal`` (also the default, an empty operator) compares the
  values, an absent value being ""; any other operator matches nothing.

So ``{effect: NoExecute}`` (no key, default operator Equal, no value) tolerates every NoExecute taint
without a value, such as ``node.kubernetes.io/unreachable``. ``tolerationSeconds`` plays no part in
matching: it only bounds how long a matched NoExecute taint is tolerated (``min_toleration_seconds``).
(Kubernetes' API validation refuses an empty key without ``Exists``, so there such a toleration never
reaches the matcher; the rule itself is the same either way. The alpha ``Gt``/``Lt`` operators, behind
Kubernetes' TaintTolerationComparisonOperators gate, are not supported: they match nothing, as with the
gate off.)

Values here are parsed once from the objects (``taint_of``, ``toleration_of``) into frozen dataclasses,
so the scheduler can match them in its loops without touching dicts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
"""The well-known taint keys: set by the node lifecycle controller (the first two) and implied by a
cordon (the last); the scheduler reads a not-ready or unreachable Ready condition as the first two."""

NO_SCHEDULE = "NoSchedule"
PREFER_NO_SCHEDULE = "PreferNoSchedule"
NO_EXECUTE = "NoExecute"
EXISTS = "Exists"
EQUAL = "Equal"
INVALID = "Invalid"
"""The operator given to a toleration that is not a map: it matches no taint."""


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: str = ""


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str = ""
    operator: str = EQUAL
    value: str = ""
    effect: str = ""
    seconds: int | None = None
    """``tolerationSeconds``: how long a matched NoExecute taint is tolerated; None is forever."""

    def tolerates(self, taint: Taint) -> bool:
        return tolerates_taint(self, taint)


def tolerates_taint(toleration: Toleration, taint: Taint) -> bool:
    """Kubernetes' ``ToleratesTaint`` (see the module docstring)."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key and toleration.key != taint.key:
        return False
    operator = toleration.operator
    if operator == EXISTS:
        return True
    return (operator == EQUAL or not operator) and toleration.value == taint.value


def tolerations_tolerate_taint(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    """Whether any of ``tolerations`` tolerates ``taint`` (Kubernetes' ``TolerationsTolerateTaint``)."""
    # a plain loop, not any() over a generator: the scheduler calls this per node, and the loop takes about
    # half the time for a pod's usual two tolerations
    for t in tolerations:  # noqa: SIM110
        if tolerates_taint(t, taint):
            return True
    return False


def find_untolerated_taint(tolerations: Collection[Toleration], taints: Iterable[Taint],
                           effects: Collection[str] | None = None) -> Taint | None:
    """The first of ``taints`` (of ``effects``, all when None) no toleration tolerates, else None.

    Kubernetes' ``FindMatchingUntoleratedTaint`` with an effect filter."""
    for taint in taints:
        if effects is not None and taint.effect not in effects:
            continue
        if not tolerations_tolerate_taint(tolerations, taint):
            return taint
    return None


def tolerates_all(tolerations: Collection[Toleration], taints: Iterable[Taint],
                  effects: Collection[str] | None = None) -> bool:
    """Whether every taint of ``effects`` (all when None) is tolerated."""
    return find_untolerated_taint(tolerations, taints, effects) is None


def matching_tolerations(tolerations: Iterable[Toleration], taint: Taint) -> list[Toleration]:
    return [t for t in tolerations if tolerates_taint(t, taint)]


def min_toleration_seconds(tolerations: Iterable[Toleration]) -> int | None:
    """How long the matched ``tolerations`` tolerate a NoExecute taint: the smallest ``tolerationSeconds``
    (0 or negative: not at all, 0), None when none of them sets it (forever).

    Kubernetes' taint manager ``getMinTolerationTime``; the caller handles "no matching toleration"."""
    least: int | None = None
    for t in tolerations:
        if t.seconds is not None:
            if t.seconds <= 0:
                return 0
            least = t.seconds if least is None else min(least, t.seconds)
    return least


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def taint_of(obj: dict[str, Any]) -> Taint:
    """A ``spec.taints`` entry as a Taint."""
    return Taint(_text(obj.get("key")), _text(obj.get("value")), _text(obj.get("effect")))


def toleration_of(obj: Any) -> Toleration:
    """A ``spec.tolerations`` entry as a Toleration (a non-map tolerates nothing)."""
    if not isinstance(obj, dict):
        return Toleration(operator=INVALID)
    seconds = obj.get("tolerationSeconds")
    return Toleration(_text(obj.get("key")), _text(obj.get("operator")) or EQUAL, _text(obj.get("value")),
                      _text(obj.get("effect")),
                      seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else None)


def taints_of(node: Any) -> tuple[Taint, ...]:
    """A node's ``spec.taints`` (entries that are not maps are skipped: validation rejects them)."""
    spec = node.get("spec") if isinstance(node, dict) else None
    taints = (spec.get("taints") if isinstance(spec, dict) else None) or ()
    return tuple(taint_of(t) for t in taints if isinstance(t, dict))


def tolerations_of(pod: Any) -> tuple[Toleration, ...]:
    """A pod's ``spec.tolerations``."""
    spec = pod.get("spec") if isinstance(pod, dict) else None
    return tuple(toleration_of(t) for t in (spec.get("tolerations") if isinstance(spec, dict) else None) or ())
