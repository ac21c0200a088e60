"""The DaemonSet controller end to end: a real nats-server, API, scheduler, controller manager and hollow
kubelets (the real kubelet on the fake runtime). Pods are bound by the scheduler, run by the kubelets."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors.controllers.daemonset_plan import HASH_LABEL
from agents.hollow.nodes import HollowNodes, HollowSettings
from protocol import codec, subjects
from protocol.objects import Obj, condition_true, controller_of, is_deleting, meta, name_of, pod_is_ready
from runtime.client import ApiClient
from runtime.informer import Informer
from runtime.nats_server import NatsServer
from tests.cli.conftest import ShoalCli
from tests.conftest import ActorRunner, cancel_and_wait
from tests.controllers.conftest import StartControllers, eventually
from tests.scheduler.test_scheduler_integration import start_scheduler

NS = "default"


def daemonset(name: str, *, image: str = "agent:1", node_selector: dict[str, str] | None = None,
              tolerations: list[Obj] | None = None, strategy: Obj | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "agent", "image": image}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    ds: Obj = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": NS},
               "spec": {"selector": {"matchLabels": {"ds": name}},
                        "template": {"metadata": {"labels": {"ds": name}}, "spec": spec}}}
    if strategy:
        ds["spec"]["updateStrategy"] = strategy
    return ds


async def start_nodes(runner: ActorRunner, client: ApiClient, count: int, prefix: str = "node-"
                      ) -> tuple[HollowNodes, asyncio.Event]:
    hollow = HollowNodes(HollowSettings(nodes=count, prefix=prefix, lease_interval=2.0, status_interval=2.0,
                                        relist_interval=0.5))
    stop = await runner.start(hollow, lambda: len(hollow.agents) == count)
    names = {hollow.node_name(i) for i in range(count)}

    async def registered() -> bool:
        nodes = (await client.list("Node")).items
        return names <= {name_of(n) for n in nodes if condition_true(n, "Ready")}

    await eventually(registered, timeout=30, interval=0.2)
    return hollow, stop


@pytest.fixture
async def cluster(runner: ActorRunner, client: ApiClient, start_controllers: StartControllers
                  ) -> AsyncIterator[HollowNodes]:
    """Three hollow nodes (node-0..2), a scheduler and the DaemonSet controller."""
    hollow, _ = await start_nodes(runner, client, 3)
    await start_scheduler(runner)
    await start_controllers("daemonset")
    yield hollow


async def daemon_pods(client: ApiClient, name: str) -> list[Obj]:
    ds = await client.get("DaemonSet", name, NS)
    pods = (await client.list("Pod", NS)).items
    return [p for p in pods if (controller_of(p) or {}).get("uid") == meta(ds)["uid"] and not is_deleting(p)]


async def settled_on(client: ApiClient, name: str, nodes: set[str]) -> dict[str, Obj] | None:
    """The DaemonSet's pods by node once exactly one runs Ready on each of ``nodes`` and nowhere else, and
    its status says so."""
    ds = await client.get("DaemonSet", name, NS)
    status = ds.get("status") or {}
    pods = await daemon_pods(client, name)
    by_node = {(p.get("spec") or {}).get("nodeName"): p for p in pods}
    done = (len(pods) == len(nodes) and set(by_node) == nodes and all(pod_is_ready(p) for p in pods)
            and status.get("desiredNumberScheduled") == len(nodes)
            and status.get("currentNumberScheduled") == len(nodes)
            and status.get("numberReady") == len(nodes) and status.get("numberAvailable") == len(nodes)
            and status.get("updatedNumberScheduled") == len(nodes) and status.get("numberMisscheduled") == 0
            and status.get("observedGeneration") == meta(ds).get("generation"))
    return by_node if done else None  # type: ignore[return-value]


NODES3 = {"node-0", "node-1", "node-2"}


async def test_one_pod_per_node_following_nodes(runner: ActorRunner, client: ApiClient, cluster: HollowNodes
                                                ) -> None:
    await client.create(daemonset("agent"))
    by_node = await eventually(lambda: settled_on(client, "agent", NODES3), timeout=30)
    pod = next(iter(by_node.values()))
    assert name_of(pod).startswith("agent-") and pod["metadata"]["labels"][HASH_LABEL]
    required = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required["nodeSelectorTerms"][0]["matchFields"][0]["values"] == [pod["spec"]["nodeName"]]
    assert {t["key"] for t in pod["spec"]["tolerations"]} >= {"node.kubernetes.io/not-ready",
                                                              "node.kubernetes.io/unschedulable"}

    # a node joins: it gets a pod
    _, stop_late = await start_nodes(runner, client, 1, prefix="late-")
    await eventually(lambda: settled_on(client, "agent", {*NODES3, "late-0"}), timeout=30)

    # a deleted daemon pod is replaced on its node
    victim = by_node["node-1"]
    await client.delete("Pod", name_of(victim), NS)
    replaced = await eventually(lambda: settled_on(client, "agent", {*NODES3, "late-0"}), timeout=30)
    assert name_of(replaced["node-1"]) != name_of(victim)

    # the node goes: so does its pod
    stop_late.set()
    await client.delete("Node", "late-0")
    await eventually(lambda: settled_on(client, "agent", NODES3), timeout=30)

    events = (await client.list("Event", NS)).items
    reasons = Counter(e["reason"] for e in events if e["involvedObject"]["name"] == "agent")
    assert reasons["SuccessfulCreate"] == 5 and reasons["SuccessfulDelete"] == 1

    # the controller manager's health tells the passes and their planning time
    reply = await client.nc.request(subjects.health("controller-manager"), b"", timeout=10)
    passes = codec.check_reply(codec.decode(reply.data))["health"]["stats"]["daemonset"]
    assert passes["passes"] >= 4 and {"planning_s", "planning_cpu_s", "mean_ms", "max_ms"} <= set(passes)


async def test_taints_tolerations_and_node_selector(client: ApiClient, cluster: HollowNodes) -> None:
    node0 = await client.get("Node", "node-0")
    await client.patch("Node", "node-0", {"spec": {"taints": [{"key": "dedicated", "value": "db",
                                                                "effect": "NoSchedule"}]}})
    await client.patch("Node", "node-1", {"metadata": {"labels": {"role": "edge"}}})
    assert node0  # present before the patches
    await client.create(daemonset("plain"))
    await client.create(daemonset("tolerant", tolerations=[{"key": "dedicated", "operator": "Exists"}]))
    await client.create(daemonset("edge", node_selector={"role": "edge"}))
    await eventually(lambda: settled_on(client, "plain", {"node-1", "node-2"}), timeout=30)
    await eventually(lambda: settled_on(client, "tolerant", NODES3), timeout=30)
    await eventually(lambda: settled_on(client, "edge", {"node-1"}), timeout=30)

    # a NoExecute taint the pod does not tolerate evicts it; removing the taint brings it back
    await client.patch("Node", "node-2", {"spec": {"taints": [{"key": "drain", "effect": "NoExecute"}]}})
    await eventually(lambda: settled_on(client, "plain", {"node-1"}), timeout=30)
    status = (await client.get("DaemonSet", "tolerant", NS))["status"]
    assert status["desiredNumberScheduled"] == 2  # node-2 is out for it too
    await client.patch("Node", "node-2", {"spec": {"taints": None}})
    await eventually(lambda: settled_on(client, "plain", {"node-1", "node-2"}), timeout=30)

    # the label goes: the edge pod is misscheduled, then deleted
    await client.patch("Node", "node-1", {"metadata": {"labels": {"role": None}}})

    async def none_left() -> bool:
        return await settled_on(client, "edge", set()) == {}

    await eventually(none_left, timeout=30)


async def test_rolling_update_goes_node_by_node(client: ApiClient, runner: ActorRunner,
                                                cluster: HollowNodes) -> None:
    await start_nodes(runner, client, 2, prefix="extra-")
    nodes = {*NODES3, "extra-0", "extra-1"}
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    await client.create(daemonset("roll", strategy=strategy))
    first = await eventually(lambda: settled_on(client, "roll", nodes), timeout=30)
    old_hash = next(iter(first.values()))["metadata"]["labels"][HASH_LABEL]

    # follow every pod change during the rollout: at no moment may two nodes lack a serving pod
    serving: dict[str, set[str]] = {n: {name_of(p)} for n, p in first.items()}
    worst = [len(nodes)]
    informer = Informer(client, "Pod", NS)

    def observe(_event: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        if pod is None or node is None:
            return
        names = serving.setdefault(node, set())
        if new is not None and pod_is_ready(new) and not is_deleting(new):
            names.add(name_of(pod))
        else:
            names.discard(name_of(pod))
        worst[0] = min(worst[0], sum(1 for n in nodes if serving.get(n)))

    informer.add_handler(observe)
    task = asyncio.create_task(informer.run())
    await informer.synced.wait()
    try:
        ds = await client.get("DaemonSet", "roll", NS)
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:2"
        await client.update(ds)

        async def rolled() -> dict[str, Obj] | None:
            by_node = await settled_on(client, "roll", nodes)
            if by_node is None or any(p["metadata"]["labels"][HASH_LABEL] == old_hash for p in by_node.values()):
                return None
            return by_node

        done = await eventually(rolled, timeout=60)
    finally:
        await cancel_and_wait(task)
    assert all(p["spec"]["containers"][0]["image"] == "agent:2" for p in done.values())
    assert worst[0] == len(nodes) - 1  # one node at a time: never two down, and it did go one down


async def test_on_delete_waits_for_deletions(client: ApiClient, cluster: HollowNodes) -> None:
    await client.create(daemonset("manual", strategy={"type": "OnDelete"}))
    first = await eventually(lambda: settled_on(client, "manual", NODES3), timeout=30)
    ds = await client.get("DaemonSet", "manual", NS)
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:2"
    await client.update(ds)

    async def observed() -> Any:
        status = (await client.get("DaemonSet", "manual", NS)).get("status") or {}
        return status.get("observedGeneration") == 2 and status.get("updatedNumberScheduled") == 0

    await eventually(observed, timeout=15)
    assert {name_of(p) for p in await daemon_pods(client, "manual")} == {name_of(p) for p in first.values()}
    await client.delete("Pod", name_of(first["node-0"]), NS)

    async def replaced() -> Any:
        pods = {(p["spec"] or {}).get("nodeName"): p for p in await daemon_pods(client, "manual")}
        new = pods.get("node-0")
        return new is not None and pod_is_ready(new) and new["spec"]["containers"][0]["image"] == "agent:2"

    await eventually(replaced, timeout=30)
    status = (await client.get("DaemonSet", "manual", NS))["status"]
    assert status["desiredNumberScheduled"] == 3
    images = sorted(p["spec"]["containers"][0]["image"] for p in await daemon_pods(client, "manual"))
    assert images == ["agent:1", "agent:1", "agent:2"]


async def test_shoal_rollout_status_follows_a_daemonset(nats_server: NatsServer, client: ApiClient,
                                                        cluster: HollowNodes) -> None:
    cli = ShoalCli(nats_server.url)
    await client.create(daemonset("watched"))
    await eventually(lambda: settled_on(client, "watched", NODES3), timeout=30)
    ds = await client.get("DaemonSet", "watched", NS)
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:2"
    await client.update(ds)
    result = await cli("rollout", "status", "ds/watched", "--timeout", "60s")
    assert result.rc == 0, result
    assert result.out.strip().splitlines()[-1] == 'daemon set "watched" successfully rolled out'
    done = await cli("rollout", "status", "daemonset", "watched", "--watch=false")
    assert done.rc == 0 and 'successfully rolled out' in done.out

    # the history: one ControllerRevision per template, numbered, the newest running
    revisions = sorted((r for r in (await client.list("ControllerRevision", NS)).items
                        if r["metadata"]["name"].startswith("watched-")), key=lambda r: r["revision"])
    assert [r["revision"] for r in revisions] == [1, 2]
    running = {p["metadata"]["labels"][HASH_LABEL] for p in await daemon_pods(client, "watched")}
    assert running == {revisions[1]["metadata"]["labels"][HASH_LABEL]}
    history = await cli("rollout", "history", "ds/watched")
    assert history.rc == 0, history
    assert [line.split()[0] for line in history.out.splitlines()] == ["daemonset.apps/watched", "REVISION", "1", "2"]
    first = await cli("rollout", "history", "ds/watched", "--revision", "1")
    assert first.rc == 0 and "agent:1" in first.out and "agent:2" not in first.out, first

    await client.create(daemonset("manual", strategy={"type": "OnDelete"}))
    refused = await cli("rollout", "status", "ds/manual")
    assert refused.rc == 1 and "only available for the RollingUpdate strategy" in refused.err, refused
    other = await cli("rollout", "pause", "ds/watched")
    assert other.rc != 0 and "cannot be used here" in other.err, other

    # undo: back to revision 1's template, which becomes revision 3
    undone = await cli("rollout", "undo", "ds/watched")
    assert undone.rc == 0 and undone.out.strip() == "daemonset.apps/watched rolled back", undone
    assert (await cli("rollout", "status", "ds/watched", "--timeout", "60s")).rc == 0
    images = {p["spec"]["containers"][0]["image"] for p in await daemon_pods(client, "watched")}
    assert images == {"agent:1"}

    async def renumbered() -> bool:
        revisions = {r["metadata"]["name"]: r["revision"] for r in (await client.list("ControllerRevision", NS)).items
                     if r["metadata"]["name"].startswith("watched-")}
        return sorted(revisions.values()) == [2, 3]

    await eventually(renumbered, timeout=15)
    again = await cli("rollout", "undo", "ds/watched", "--to-revision", "3")
    assert again.rc == 0 and "skipped rollback" in again.out, again


async def test_surge_rollout_keeps_every_node_serving(client: ApiClient, cluster: HollowNodes) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    await client.create(daemonset("surge", strategy=strategy))
    first = await eventually(lambda: settled_on(client, "surge", NODES3), timeout=30)
    old_hash = next(iter(first.values()))["metadata"]["labels"][HASH_LABEL]
    serving: dict[str, set[str]] = {n: {name_of(p)} for n, p in first.items()}
    worst, most = [3], [0]
    informer = Informer(client, "Pod", NS)

    def observe(_event: str, old: Obj | None, new: Obj | None) -> None:
        pod = new if new is not None else old
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        if pod is None or node is None or not name_of(pod).startswith("surge-"):
            return
        names = serving.setdefault(node, set())
        if new is not None and pod_is_ready(new) and not is_deleting(new):
            names.add(name_of(pod))
        else:
            names.discard(name_of(pod))
        worst[0] = min(worst[0], sum(1 for n in NODES3 if serving.get(n)))
        most[0] = max(most[0], sum(1 for n in NODES3 if len(serving.get(n, ())) > 1))

    informer.add_handler(observe)
    task = asyncio.create_task(informer.run())
    await informer.synced.wait()
    try:
        ds = await client.get("DaemonSet", "surge", NS)
        ds["spec"]["template"]["spec"]["containers"][0]["image"] = "agent:2"
        await client.update(ds)

        async def rolled() -> dict[str, Obj] | None:
            by_node = await settled_on(client, "surge", NODES3)
            if by_node is None or any(p["metadata"]["labels"][HASH_LABEL] == old_hash for p in by_node.values()):
                return None
            return by_node

        await eventually(rolled, timeout=60)
    finally:
        await cancel_and_wait(task)
    assert worst[0] == 3  # maxUnavailable 0: every node kept a serving pod throughout
    assert most[0] == 1  # maxSurge 1: one node at a time ran an old and a new pod side by side
