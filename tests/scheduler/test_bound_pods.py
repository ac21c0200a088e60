"""The scheduler keeps no copy of bound pods: its cache's ``PodInfo`` (fields shared by a workload's pods) is
all, a status update costs no new ``PodInfo``, and a relist tells which pods went."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

from actors.scheduler.actor import SchedulerActor
from actors.scheduler.bound import BoundPods
from actors.scheduler.model import node_info, node_view, pod_info
from protocol.objects import Obj
from tests.scheduler.helpers import make_node, make_pod

RS = {"name": "web", "uid": "rs1"}


def bound_pod(name: str, *, node: str = "n1", cpu: str = "250m", generation: int = 1) -> Obj:
    pod = make_pod(name, namespace="shop", owner=RS, labels={"app": "web"}, cpu=cpu, nodeName=node,
                   tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}])
    pod["metadata"].update(uid=f"uid-{name}", resourceVersion="10", generation=generation)
    pod["status"] = {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}
    return pod


def actor_with_node() -> SchedulerActor:
    actor = SchedulerActor()
    actor.cache.set_node(node_info(make_node("n1")))
    return actor


def test_pods_of_one_workload_share_their_scheduling_facts() -> None:
    a, b = pod_info(bound_pod("web-1")), pod_info(bound_pod("web-2"))
    assert a.key != b.key and a.uid != b.uid
    assert a.tolerations == b.tolerations and a.tolerations is b.tolerations
    assert a.group == "owner/rs1" and a.group is b.group and a.memory is b.memory
    assert pod_info(bound_pod("web-3", cpu="500m")).cpu == 500  # not shared with a different template


def test_a_status_update_keeps_the_pod_info_and_a_spec_change_replaces_it() -> None:
    actor = actor_with_node()
    actor._on_bound("ADDED", bound_pod("web-1"))
    record = actor.cache.pods["shop/web-1"]
    info = record.info
    assert actor.cache.nodes["n1"].req_cpu == 250 and record.generation == 1

    later = bound_pod("web-1")
    later["status"]["podIP"] = "10.0.0.2"
    actor._on_bound("MODIFIED", later)
    assert actor.cache.pods["shop/web-1"].info is info

    resized = bound_pod("web-1", cpu="400m", generation=2)
    actor._on_bound("MODIFIED", resized)
    assert actor.cache.nodes["n1"].req_cpu == 400 and actor.cache.pods["shop/web-1"].generation == 2

    orphaned = copy.deepcopy(resized)  # a change of owner changes the spreading group: same generation
    orphaned["metadata"]["ownerReferences"] = []
    actor._on_bound("MODIFIED", orphaned)
    assert actor.cache.pods["shop/web-1"].info.group == "labels/shop/app=web"
    assert actor.cache.nodes["n1"].groups == {"labels/shop/app=web": 1}

    done = copy.deepcopy(orphaned)
    done["status"]["phase"] = "Succeeded"
    actor._on_bound("MODIFIED", done)
    assert "shop/web-1" not in actor.cache.pods and actor.cache.nodes["n1"].req_cpu == 0


def test_a_pod_without_a_generation_is_parsed_again() -> None:
    actor = actor_with_node()
    pod = bound_pod("web-1")
    del pod["metadata"]["generation"]
    actor._on_bound("ADDED", pod)
    changed = copy.deepcopy(pod)
    changed["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "300m"
    actor._on_bound("MODIFIED", changed)
    assert actor.cache.nodes["n1"].req_cpu == 300


class ListingClient:
    def __init__(self, chunks: list[list[Obj]], version: int) -> None:
        self.chunks, self.version = chunks, version
        self.asked: dict[str, Any] = {}

    async def list_chunks(self, kind: Any, namespace: str | None = None,
                          **kw: Any) -> AsyncIterator[tuple[list[Obj], int]]:
        self.asked = kw
        for i, chunk in enumerate(self.chunks):
            yield chunk, self.version if i == len(self.chunks) - 1 else 0


def test_a_relist_reports_listed_pods_chunk_by_chunk_and_the_ones_that_went() -> None:
    actor = actor_with_node()
    for name in ("web-1", "web-2", "web-3"):
        actor._on_bound("ADDED", bound_pod(name))
    client = ListingClient([[bound_pod("web-1")], [bound_pod("web-3"), bound_pod("web-4")]], 77)
    reflector = BoundPods(client, actor._on_bound, actor.cache.bound_keys, actor._bound_gone)  # type: ignore[arg-type]
    reflector.resource_version = 50
    asyncio.run(reflector._relist())
    assert sorted(actor.cache.pods) == ["shop/web-1", "shop/web-3", "shop/web-4"]
    assert actor.cache.nodes["n1"].req_cpu == 750 and actor.cache.nodes["n1"].pod_count == 3
    assert reflector.resource_version == 77
    assert client.asked == {"field_selector": "spec.nodeName!=", "min_resource_version": 50}


def test_a_relist_keeps_pods_only_assumed() -> None:
    actor = actor_with_node()
    actor.cache.assume(pod_info(bound_pod("web-9")), "n1")
    reflector = BoundPods(ListingClient([[]], 5), actor._on_bound, actor.cache.bound_keys,  # type: ignore[arg-type]
                          actor._bound_gone)
    asyncio.run(reflector._relist())
    assert "shop/web-9" in actor.cache.pods


def test_the_node_view_keeps_what_node_info_reads() -> None:
    node = make_node("n1", labels={"zone": "z1"}, taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}],
                     unschedulable=True)
    node["metadata"].update(uid="nu", resourceVersion="9", annotations={"note": "x" * 200})
    node["status"]["conditions"] = [
        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "fine"},
        {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "runtime down"}]
    node["status"].update(addresses=[{"type": "InternalIP", "address": "10.0.0.1"}], nodeInfo={"osImage": "x"})
    view = node_view(copy.deepcopy(node))
    assert node_info(view) == node_info(node) and node_info(view).ready == "False"
    assert view["status"]["conditions"] == [{"type": "Ready", "status": "False"}]
    assert "addresses" not in view["status"] and "annotations" not in view["metadata"]
    assert view["metadata"]["resourceVersion"] == "9"
    no_status = make_node("n2", ready=None)
    assert node_info(node_view(no_status)) == node_info(no_status)
