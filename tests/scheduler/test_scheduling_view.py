"""The bound-pods informer keeps a smaller view of each pod: the scheduler reads the same from it."""

from __future__ import annotations

import copy

from actors.scheduler.actor import _scheduling_inputs
from actors.scheduler.model import pod_info, scheduling_view
from protocol.objects import pod_is_terminal, ref
from runtime.informer import Informer


def running_pod() -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "u1", "resourceVersion": "42",
                     "labels": {"app": "web"}, "annotations": {"note": "x" * 500},
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "web", "uid": "rs1", "controller": True}],
                     "creationTimestamp": "2026-11-30T00:00:00Z"},
        "spec": {"nodeName": "n1", "nodeSelector": {"disk": "ssd"},
                 "containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80, "hostPort": 8080}],
                                 "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}]},
        "status": {"phase": "Running", "podIP": "10.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "c", "ready": True, "state": {"running": {}}}]},
    }


def test_the_view_drops_status_and_annotations_but_keeps_what_scheduling_reads() -> None:
    pod = running_pod()
    view = scheduling_view(copy.deepcopy(pod))
    assert view["status"] == {"phase": "Running"} and "annotations" not in view["metadata"]
    assert pod_info(view) == pod_info(pod)
    assert _scheduling_inputs(view) == _scheduling_inputs(pod)
    assert ref(view) == ref(pod) and view["metadata"]["resourceVersion"] == "42"
    pod["status"]["phase"] = "Succeeded"
    assert pod_is_terminal(scheduling_view(pod)) and not pod_is_terminal(view)


def test_an_informer_stores_and_hands_over_transformed_objects() -> None:
    seen: list[tuple[str, dict | None, dict | None]] = []
    informer = Informer(None, "Pod", transform=scheduling_view)  # type: ignore[arg-type]
    informer.add_handler(lambda event, old, new: seen.append((event, old, new)))
    informer.apply("ADDED", running_pod())
    later = running_pod()
    later["metadata"]["resourceVersion"] = "43"
    later["status"]["podIP"] = "10.0.0.2"
    informer.apply("MODIFIED", later)
    stored = informer.get("shop/web-1")
    assert stored is not None and "podIP" not in stored["status"] and stored["metadata"]["resourceVersion"] == "43"
    assert [e for e, _, _ in seen] == ["ADDED", "MODIFIED"]
    assert all("conditions" not in (obj or {}).get("status", {}) for _, old, new in seen for obj in (old, new))
