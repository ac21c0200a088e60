"""Table tests of the HorizontalPodAutoscaler's pure algorithm: per-metric proposals (tolerance, missing and
unready pods), stabilization windows, rate policies, bounds, status and conditions."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.hpa_plan import (
    History,
    MetricError,
    Usage,
    decide,
    limit_rate,
    replicas_for_metric,
    stabilize,
)
from protocol.kinds.horizontalpodautoscaler import STRATEGY
from protocol.objects import Obj, format_time

NOW = 1_700_000_000.0
CPU50: Obj = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                        "averageUtilization": 50}}}


def pod(name: str, *, request: str | None = "500m", phase: str = "Running", ready: str | None = "True",
        started: float = NOW - 600, ready_at: float = NOW - 590, deleting: bool = False) -> Obj:
    resources = {"requests": {"cpu": request, "memory": "64Mi"}} if request else {}
    status: Obj = {"phase": phase, "startTime": format_time(started)}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "lastTransitionTime": format_time(ready_at)}]
    m: Obj = {"name": name}
    if deleting:
        m["deletionTimestamp"] = format_time(NOW)
    return {"metadata": m, "spec": {"containers": [{"name": "c", "resources": resources}]}, "status": status}


def use(cpu: int, memory: int = 0) -> Usage:
    return Usage(cpu, memory, NOW - 1, 15.0)


def hpa(metric: Obj = CPU50, *, low: int = 1, high: int = 10, behavior: Obj | None = None) -> Obj:
    obj: Obj = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web", "namespace": "default", "generation": 1},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": low,
                         "maxReplicas": high, "metrics": [metric], **({"behavior": behavior} if behavior else {})}}
    STRATEGY.default(obj)
    return obj


@pytest.mark.parametrize(("pods", "usage", "replicas"), [
    # plain ratio: 3 pods at 500m request using 400m = 80% vs 50% -> ceil(1.6 * 3) = 5
    ([pod("a"), pod("b"), pod("c")], {"a": 400, "b": 400, "c": 400}, 5),
    # within the 10% tolerance: 52% vs 50% keeps 3
    ([pod("a"), pod("b"), pod("c")], {"a": 260, "b": 260, "c": 260}, 3),
    # scale down: 10% -> ceil(0.2 * 3) = 1
    ([pod("a"), pod("b"), pod("c")], {"a": 50, "b": 50, "c": 50}, 1),
    # a missing pod on a scale-up counts 0: (400+400+0)/1500 = 53% -> within tolerance of the new ratio? 1.07: keep
    ([pod("a"), pod("b"), pod("c")], {"a": 400, "b": 400}, 3),
    # a missing pod on a scale-down counts 100%: (50+50+500)/1500 = 40% -> ratio 0.8 -> ceil(2.4) = 3: keep
    ([pod("a"), pod("b"), pod("c")], {"a": 50, "b": 50}, 3),
    # a pending pod on a scale-up counts 0: (900+900+0)/1500=120% -> 2.4 * 3 = 8
    ([pod("a"), pod("b"), pod("c", phase="Pending")], {"a": 900, "b": 900}, 8),
    # an unready pod (Ready False, started recently) is ignored on the way down: only ready ones count
    ([pod("a"), pod("b", ready="False", started=NOW - 60, ready_at=NOW - 50)], {"a": 50, "b": 500}, 1),
    # deleted and failed pods are ignored
    ([pod("a"), pod("b", deleting=True), pod("c", phase="Failed")], {"a": 500, "b": 0, "c": 0}, 2),
])
def test_replicas_for_a_cpu_utilization_metric(pods: list[Obj], usage: dict[str, int], replicas: int) -> None:
    proposal = replicas_for_metric(CPU50, 3, pods, {n: use(c) for n, c in usage.items()}, NOW)
    assert proposal.replicas == replicas
    assert proposal.metric == "cpu resource utilization (percentage of request)"


def test_average_value_and_memory() -> None:
    metric = {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                           "averageValue": "100Mi"}}}
    pods = [pod("a", request=None), pod("b", request=None)]
    usage = {"a": use(0, 300 * 2**20), "b": use(0, 100 * 2**20)}  # 200Mi on average: twice the target
    proposal = replicas_for_metric(metric, 2, pods, usage, NOW)
    assert proposal.replicas == 4 and proposal.metric == "memory resource"
    assert proposal.current["resource"]["current"]["averageValue"] == str(200 * 2**20)


def test_metric_errors() -> None:
    with pytest.raises(MetricError, match="missing request for cpu"):
        replicas_for_metric(CPU50, 1, [pod("a", request=None)], {"a": use(100)}, NOW)
    with pytest.raises(MetricError, match="no metrics returned"):
        replicas_for_metric(CPU50, 1, [pod("a")], {}, NOW)


@pytest.mark.parametrize(("recs", "desired", "current", "up", "down", "expected"), [
    ((), 5, 3, 0, 300, 5),  # up, no window
    (((8, NOW - 100),), 2, 5, 0, 300, 5),  # a higher recommendation within the down window holds it
    (((8, NOW - 400),), 2, 5, 0, 300, 2),  # outside the window: free to go down
    (((3, NOW - 10),), 9, 3, 60, 300, 3),  # a lower one within the up window holds the scale-up
])
def test_stabilize(recs: tuple[tuple[int, float], ...], desired: int, current: int, up: float, down: float,
                   expected: int) -> None:
    result, history = stabilize(History(recommendations=recs), desired, current, up, down, NOW)
    assert result == expected and (desired, NOW) in history.recommendations


@pytest.mark.parametrize(("behavior", "events", "desired", "current", "expected"), [
    (None, (), 20, 2, (6, "ScaleUpLimit")),  # max(100% of 2 -> 4, +4 pods -> 6)
    (None, (), 30, 10, (20, "ScaleUpLimit")),  # +100% of 10
    (None, ((4, NOW - 5),), 30, 10, (12, "ScaleUpLimit")),  # 4 already added this period: from 6
    (None, (), 12, 10, (12, "DesiredWithinRange")),
    (None, (), 50, 9, (10, "TooManyReplicas")),  # within the policies (18) but above maxReplicas 10
    (None, (), 0, 10, (1, "TooFewReplicas")),  # scale down 100% per 15 s, then the minimum
    ({"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}, (), 2, 10,
     (9, "ScaleDownLimit")),
    ({"scaleUp": {"selectPolicy": "Disabled"}}, (), 20, 2, (2, "ScaleUpLimit")),
])
def test_rate_policies(behavior: Obj | None, events: tuple[tuple[int, float], ...], desired: int, current: int,
                       expected: tuple[int, str]) -> None:
    high = 10 if expected[1] == "TooManyReplicas" else 100
    assert limit_rate(hpa(behavior=behavior, high=high), History(scale_events=events), desired, current, NOW) \
        == expected


def decision(obj: Obj, current: int, usage: dict[str, int], history: History | None = None, **kw: Any) -> Any:
    pods = [pod(f"p{i}") for i in range(current)]
    return decide(obj, current, pods, {n: use(c) for n, c in usage.items()}, history or History(), NOW,
                  format_time(NOW))


def test_decide_scales_up_and_reports() -> None:
    result = decision(hpa(), 2, {"p0": 500, "p1": 500})  # 100% vs 50% -> 4
    assert result.rescale and result.desired == 4
    assert result.reason == "cpu resource utilization (percentage of request) above target"
    assert result.status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 100}}}]
    assert result.status["desiredReplicas"] == 4 and result.status["currentReplicas"] == 2
    assert {c["type"]: c["status"] for c in result.status["conditions"]} == {
        "AbleToScale": "True", "ScalingActive": "True", "ScalingLimited": "False"}
    assert result.history.scale_events == ((2, NOW),)


def test_new_autoscaler_does_not_scale_down_within_the_window() -> None:
    first = decision(hpa(), 4, {f"p{i}": 10 for i in range(4)})
    assert not first.rescale and first.desired == 4  # its current replicas count as a recommendation
    later = decision(hpa(), 4, {f"p{i}": 10 for i in range(4)},
                     History(recommendations=((4, NOW - 301), (1, NOW - 100))))
    assert later.rescale and later.desired == 1 and later.reason == "All metrics below target"
    short = hpa(behavior={"scaleDown": {"stabilizationWindowSeconds": 5}})
    assert decision(short, 4, {f"p{i}": 10 for i in range(4)}, History(recommendations=((4, NOW - 6),))).desired == 1


@pytest.mark.parametrize(("current", "desired", "reason"), [
    (12, 10, "Current number of replicas above Spec.MaxReplicas"),
    (1, 2, "Current number of replicas below Spec.MinReplicas"),
])
def test_bounds_without_metrics(current: int, desired: int, reason: str) -> None:
    result = decision(hpa(low=2), current, {})
    assert result.rescale and result.desired == desired and result.reason == reason


def test_target_at_zero_disables_and_missing_metrics_keep() -> None:
    off = decision(hpa(), 0, {})
    assert not off.rescale and off.desired == 0
    assert [c["reason"] for c in off.status["conditions"] if c["type"] == "ScalingActive"] == ["ScalingDisabled"]
    blind = decision(hpa(), 3, {})
    assert not blind.rescale and blind.desired == 3
    active = next(c for c in blind.status["conditions"] if c["type"] == "ScalingActive")
    assert active["status"] == "False" and active["reason"] == "FailedGetResourceMetric"
