"""Pure decisions of the HorizontalPodAutoscaler controller: Kubernetes' algorithm
(``pkg/controller/podautoscaler/horizontal.go`` and ``replica_calculator.go``), for Resource metrics.

- Bounds first: a target scaled to 0 (with minReplicas > 0) is left alone (``ScalingDisabled``); above
  ``maxReplicas`` or below ``minReplicas`` it is brought inside without looking at metrics.
- Per metric (``replicas_for_metric``): pods are grouped as Kubernetes' ``groupPods`` does -- deleted and
  failed pods ignored; Pending pods unready; pods without a sample missing; for CPU, a pod whose Ready
  condition is missing or, within 5 minutes of its start, False or newer than the sample's window, and a
  pod never ready within 30 s of its start, unready. The usage ratio is the ready pods' usage over their
  requests (Utilization, in percent of the target) or their average over the target (AverageValue). With
  no missing or unready pod to account for, a ratio within the 10 % tolerance keeps the replicas, else
  ``ceil(ratio * ready pods)``. Missing pods then count as using 100 % (or the target, when above 100 %)
  on a scale-down and 0 on a scale-up; unready pods 0 on a scale-up; if that flips the direction or lands
  within the tolerance, the replicas stay. Every metric proposes; the highest proposal wins.
- Behavior (``stabilize`` and ``limit_rate``): the recommendation is held between the lowest
  recommendation of the scale-up stabilization window and the highest of the scale-down window (default
  0 s and 300 s; a new autoscaler starts with its current replicas as a recommendation so it does not
  scale down at once), then limited by the policies of the direction (Pods / Percent per period,
  ``selectPolicy`` Max, Min or Disabled) counting the changes already made in each period.

The recommendations and scale events an autoscaler remembers are its ``History``, passed in and returned
(the controller keeps them in memory, as Kubernetes' does). Nothing here does I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from protocol.objects import Obj, condition, is_deleting, name_of, parse_time
from protocol.quantity import cpu_millis, memory_bytes, parse_quantity

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 300.0
INITIAL_READINESS_DELAY = 30.0


@dataclass(frozen=True, slots=True)
class Usage:
    """One pod's measured use: CPU in millicores, memory in bytes, read at ``timestamp`` over ``window`` s."""

    cpu: int
    memory: int
    timestamp: float
    window: float


@dataclass(frozen=True)
class History:
    recommendations: tuple[tuple[int, float], ...] = ()
    """(replicas, when) recommended before stabilization."""
    scale_events: tuple[tuple[int, float], ...] = ()
    """(change in replicas, when): positive up, negative down."""


@dataclass(frozen=True)
class Proposal:
    replicas: int
    metric: str
    """``cpu resource utilization (percentage of request)`` as Kubernetes names it in events."""
    current: Obj
    """The metric's ``status.currentMetrics`` entry."""


class MetricError(Exception):
    """A metric cannot propose (no samples, a missing request): kept in the ScalingActive condition."""


@dataclass(frozen=True)
class Decision:
    desired: int
    rescale: bool
    reason: str
    """``New size: N; reason: ...``'s reason when ``rescale``."""
    status: Obj
    history: History
    requeue_after: float | None = None


# -- per metric -------------------------------------------------------------------------------
def _requests(pod: Obj, resource: str) -> int | None:
    """The pod's summed container requests of ``resource`` (millicores or bytes); None if one lacks it."""
    total = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        value = ((container.get("resources") or {}).get("requests") or {}).get(resource)
        if value is None:
            return None
        total += cpu_millis(value) if resource == "cpu" else memory_bytes(value)
    return total


def _value(usage: Usage, resource: str) -> int:
    return usage.cpu if resource == "cpu" else usage.memory


def group_pods(pods: list[Obj], usage: dict[str, Usage], resource: str, now: float
               ) -> tuple[int, set[str], set[str], set[str]]:
    """Kubernetes' ``groupPods``: (ready count, unready, missing, ignored) pod names."""
    ready, unready, missing, ignored = 0, set(), set(), set()
    for pod in pods:
        name = name_of(pod)
        phase = (pod.get("status") or {}).get("phase")
        if is_deleting(pod) or phase == "Failed":
            ignored.add(name)
            continue
        if phase == "Pending":
            unready.add(name)
            continue
        sample = usage.get(name)
        if sample is None:
            missing.add(name)
            continue
        if resource == "cpu":
            cond = condition(pod, "Ready")
            start = parse_time((pod.get("status") or {}).get("startTime"))
            if cond is None or start is None:
                is_unready = True
            else:
                changed = parse_time(cond.get("lastTransitionTime")) or 0.0
                if start + CPU_INITIALIZATION_PERIOD > now:
                    is_unready = cond.get("status") == "False" or sample.timestamp < changed + sample.window
                else:
                    is_unready = cond.get("status") == "False" and start + INITIAL_READINESS_DELAY > changed
            if is_unready:
                unready.add(name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def replicas_for_metric(metric: Obj, current_replicas: int, pods: list[Obj], usage: dict[str, Usage],
                        now: float) -> Proposal:
    resource_spec = metric.get("resource") or {}
    resource = str(resource_spec.get("name") or "cpu")
    target = resource_spec.get("target") or {}
    utilization = target.get("type") != "AverageValue"
    ready, unready, missing, ignored = group_pods(pods, usage, resource, now)
    by_name = {name_of(p): p for p in pods}
    samples = {n: _value(u, resource) for n, u in usage.items() if n in by_name and n not in ignored | unready}
    if not samples:
        raise MetricError(f"unable to get metrics for resource {resource}: no metrics returned from resource "
                          "metrics API")
    requests: dict[str, int] = {}
    if utilization:
        for name in set(samples) | missing | unready:
            request = _requests(by_name[name], resource)
            if request is None:
                raise MetricError(f"failed to get {resource} utilization: missing request for {resource} in "
                                  f"container(s) of pod {name}")
            requests[name] = request
        target_value = float(target.get("averageUtilization") or 0)
        average_target = 0.0
    else:
        average_target = float(parse_quantity(target.get("averageValue") or "0"))
        average_target *= 1000 if resource == "cpu" else 1  # millicores, as the samples
        target_value = average_target

    def ratio(values: dict[str, int]) -> tuple[float, int]:
        if utilization:
            total_request = sum(requests[n] for n in values)
            if total_request <= 0:
                raise MetricError(f"failed to get {resource} utilization: the pods request no {resource}")
            percent = sum(values.values()) * 100 // total_request
            return (sum(values.values()) * 100 / total_request) / target_value, percent
        average = sum(values.values()) / len(values)
        return average / target_value, round(average)

    usage_ratio, current = ratio(samples)
    name = (f"{resource} resource utilization (percentage of request)" if utilization else f"{resource} resource")
    status = _current_metric(resource, utilization, current)
    scale_up_with_unready = bool(unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - usage_ratio) <= TOLERANCE:
            return Proposal(current_replicas, name, status)
        return Proposal(math.ceil(usage_ratio * ready), name, status)
    if missing:
        if usage_ratio < 1.0:
            fallback = max(100.0, target_value) if utilization else target_value
            for pod in missing:
                samples[pod] = int(requests[pod] * fallback / 100) if utilization else int(average_target)
        elif usage_ratio > 1.0:
            for pod in missing:
                samples[pod] = 0
    if scale_up_with_unready:
        for pod in unready:
            samples[pod] = 0
    new_ratio, _ = ratio(samples)
    if abs(1.0 - new_ratio) <= TOLERANCE or (usage_ratio < 1.0 < new_ratio) or (usage_ratio > 1.0 > new_ratio):
        return Proposal(current_replicas, name, status)
    new_replicas = math.ceil(new_ratio * len(samples))
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (new_ratio > 1.0 and new_replicas < current_replicas):
        return Proposal(current_replicas, name, status)
    return Proposal(new_replicas, name, status)


def _current_metric(resource: str, utilization: bool, value: int) -> Obj:
    if utilization:
        return {"type": "Resource", "resource": {"name": resource, "current": {"averageUtilization": value}}}
    text = f"{value}m" if resource == "cpu" else str(value)
    return {"type": "Resource", "resource": {"name": resource, "current": {"averageValue": text}}}


# -- behavior ----------------------------------------------------------------------------------
def _rules(hpa: Obj, direction: str) -> Obj:
    return ((hpa.get("spec") or {}).get("behavior") or {}).get(direction) or {}


def _window(rules: Obj, default: int) -> float:
    value = rules.get("stabilizationWindowSeconds")
    return float(default if value is None else value)


def stabilize(history: History, desired: int, current: int, up_window: float, down_window: float, now: float
              ) -> tuple[int, History]:
    """Kubernetes' ``stabilizeRecommendationWithBehaviors``: the recommendation held within the windows,
    and the history with ``desired`` recorded (replacing one sample older than both windows)."""
    up, down = desired, desired
    old_index = None
    for i, (replicas, at) in enumerate(history.recommendations):
        if at > now - up_window:
            up = min(up, replicas)
        if at > now - down_window:
            down = max(down, replicas)
        if at < now - up_window and at < now - down_window:
            old_index = i
    recommendation = max(current, up)
    recommendation = min(recommendation, down)
    recs = list(history.recommendations)
    if old_index is not None:
        recs[old_index] = (desired, now)
    else:
        recs.append((desired, now))
    return recommendation, replace(history, recommendations=tuple(recs))


def _changed_in(events: tuple[tuple[int, float], ...], period: float, now: float, up: bool) -> int:
    return sum(abs(change) for change, at in events if at > now - period and (change > 0) == up)


def limit_rate(hpa: Obj, history: History, desired: int, current: int, now: float) -> tuple[int, str]:
    """Kubernetes' ``convertDesiredReplicasWithBehaviorRate``: the policies' limit, and min/max."""
    spec = hpa.get("spec") or {}
    low, high = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1)
    events = history.scale_events
    if desired > current:
        rules = _rules(hpa, "scaleUp")
        select = rules.get("selectPolicy") or "Max"
        if select == "Disabled":
            limit = current
        else:
            proposals = []
            for policy in rules.get("policies") or []:
                period = float(policy.get("periodSeconds") or 15)
                start = current - _changed_in(events, period, now, True) + _changed_in(events, period, now, False)
                value = int(policy.get("value") or 0)
                proposals.append(start + value if policy.get("type") == "Pods"
                                 else math.ceil(start * (1 + value / 100)))
            limit = (min if select == "Min" else max)(proposals) if proposals else current
        limit = max(limit, current)
        allowed, reason = (limit, "ScaleUpLimit") if high > limit else (high, "TooManyReplicas")
        return (allowed, reason) if desired > allowed else (desired, "DesiredWithinRange")
    if desired < current:
        rules = _rules(hpa, "scaleDown")
        select = rules.get("selectPolicy") or "Max"
        if select == "Disabled":
            limit = current
        else:
            proposals = []
            for policy in rules.get("policies") or []:
                period = float(policy.get("periodSeconds") or 15)
                start = current - _changed_in(events, period, now, True) + _changed_in(events, period, now, False)
                value = int(policy.get("value") or 0)
                proposals.append(start - value if policy.get("type") == "Pods" else int(start * (1 - value / 100)))
            limit = (max if select == "Min" else min)(proposals) if proposals else current
        limit = min(limit, current)
        allowed, reason = (limit, "ScaleDownLimit") if low < limit else (low, "TooFewReplicas")
        return (allowed, reason) if desired < allowed else (desired, "DesiredWithinRange")
    return desired, "DesiredWithinRange"


def _longest_period(hpa: Obj) -> float:
    periods = [float(p.get("periodSeconds") or 0) for d in ("scaleUp", "scaleDown")
               for p in _rules(hpa, d).get("policies") or []]
    return max(periods, default=15.0)


# -- the decision ------------------------------------------------------------------------------
def _condition(type_: str, status: bool, reason: str, message: str, previous: Obj, now_text: str) -> Obj:
    old = next((c for c in previous.get("conditions") or [] if c.get("type") == type_), None)
    value = "True" if status else "False"
    since = old.get("lastTransitionTime") if old is not None and old.get("status") == value else now_text
    return {"type": type_, "status": value, "reason": reason, "message": message, "lastTransitionTime": since}


def decide(hpa: Obj, current_replicas: int, pods: list[Obj], usage: dict[str, Usage], history: History,
           now: float, now_text: str) -> Decision:
    """What ``hpa`` wants of its target, which has ``current_replicas`` and runs ``pods`` (its selector's)."""
    spec, previous = hpa.get("spec") or {}, hpa.get("status") or {}
    low, high = int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1)
    if not history.recommendations and _window(_rules(hpa, "scaleDown"), 300) > 0:
        history = replace(history, recommendations=((current_replicas, now),))  # maybeInitScaleDownStabilization
    history = replace(history, scale_events=tuple(e for e in history.scale_events
                                                  if e[1] > now - _longest_period(hpa)))
    metrics_status: list[Obj] = list(previous.get("currentMetrics") or [])
    active = ("ValidMetricFound", "the HPA was able to successfully calculate a replica count")
    active_ok = True
    rescale_reason = ""
    if current_replicas == 0 and low != 0:
        desired, limited = 0, None
        active_ok, active = False, ("ScalingDisabled", "scaling is disabled since the replica count of the "
                                    "target is zero")
    elif current_replicas > high:
        desired, limited, rescale_reason = high, None, "Current number of replicas above Spec.MaxReplicas"
    elif current_replicas < low:
        desired, limited, rescale_reason = low, None, "Current number of replicas below Spec.MinReplicas"
    else:
        proposals: list[Proposal] = []
        errors: list[str] = []
        for metric in spec.get("metrics") or []:
            try:
                proposals.append(replicas_for_metric(metric, current_replicas, pods, usage, now))
            except MetricError as exc:
                errors.append(str(exc))
        if not proposals:
            active_ok = False
            active = ("FailedGetResourceMetric", errors[0] if errors else "no metrics")
            desired, limited = current_replicas, None
        else:
            metrics_status = [p.current for p in proposals]
            best = max(proposals, key=lambda p: p.replicas)
            stabilized, history = stabilize(history, best.replicas, current_replicas,
                                            _window(_rules(hpa, "scaleUp"), 0), _window(_rules(hpa, "scaleDown"), 300),
                                            now)
            desired, limit_reason = limit_rate(hpa, history, stabilized, current_replicas, now)
            limited = limit_reason
            rescale_reason = (f"{best.metric} above target" if desired > current_replicas
                              else "All metrics below target")
    rescale = desired != current_replicas and (active_ok or rescale_reason.startswith("Current"))
    if rescale:
        history = replace(history, scale_events=(*history.scale_events, (desired - current_replicas, now)))
    able = ("SucceededRescale", f"the HPA controller was able to update the target scale to {desired}") if rescale \
        else ("ReadyForNewScale", "recommended size matches current size")
    conditions = [_condition("AbleToScale", True, *able, previous, now_text),
                  _condition("ScalingActive", active_ok, *active, previous, now_text)]
    if limited in ("TooManyReplicas", "TooFewReplicas", "ScaleUpLimit", "ScaleDownLimit"):
        conditions.append(_condition("ScalingLimited", True, limited, "the desired replica count is "
                                     + ("more than the maximum replica count" if limited == "TooManyReplicas" else
                                        "less than the minimum replica count" if limited == "TooFewReplicas" else
                                        "increasing faster than the maximum scale rate"
                                        if limited == "ScaleUpLimit" else
                                        "decreasing faster than the maximum scale rate"), previous, now_text))
    else:
        conditions.append(_condition("ScalingLimited", False, "DesiredWithinRange",
                                     "the desired count is within the acceptable range", previous, now_text))
    status: Obj = {"observedGeneration": (hpa.get("metadata") or {}).get("generation") or 0,
                   "currentReplicas": current_replicas, "desiredReplicas": desired,
                   "currentMetrics": metrics_status, "conditions": conditions}
    last = now_text if rescale else previous.get("lastScaleTime")
    if last:
        status["lastScaleTime"] = last
    return Decision(desired, rescale, rescale_reason, status, history)

