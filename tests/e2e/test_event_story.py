"""A pod's whole story in Events, read by an outside client with nats-py and msgpack only (issue 21).

One cluster for the module, every component its own process (nats-server, API, scheduler, controller
manager, a Podman kubelet with a short back-off). The subscriber uses no Shoal code: a JetStream ordered
consumer on ``shoal.events.default.>`` and ``msgpack.unpackb``, as any NATS client in any language would.

- a Deployment of 3 rolls out: for each pod, in stream order, SuccessfulCreate (on its ReplicaSet) ->
  Scheduled -> Pulled -> Created -> Started (the first two may swap: nothing orders them, see the test);
- a crash-looping pod's BackOff and a failing liveness probe's Unhealthy arrive as one Event each whose
  ``count`` grows, not as one Event per occurrence.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import nats
import nats.js.api
import pytest
import pytest_asyncio

from runtime.client import ApiClient
from runtime.events import EventRecorder
from tests.e2e.cluster import (
    PODMAN_MARKS,
    REPO,
    ProcessCluster,
    podman_env,
    remove_podman_objects,
    start_podman_node,
)

pytestmark = PODMAN_MARKS

IMAGE = "localhost/shoal/busybox:latest"


@dataclass
class Stack:
    cluster: ProcessCluster
    node: str
    kubelet_state: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("e2e-events")
    node = f"ev-{uuid.uuid4().hex[:6]}"
    pod_cidr = f"127.95.{int(uuid.uuid4().hex[:2], 16)}.0/24"
    kubelet_state = root / "kubelet"
    cluster = ProcessCluster(root)
    try:
        start_podman_node(cluster, node, pod_cidr, kubelet_state)
        yield Stack(cluster, node, kubelet_state)
    finally:
        cluster.stop()
        remove_podman_objects(node, podman_env(kubelet_state))


@pytest_asyncio.fixture
async def client(stack: Stack) -> AsyncIterator[ApiClient]:
    async with stack.cluster.ready_client(stack.node) as api:
        yield api


@dataclass
class Outside:
    """Everything a plain nats-py subscriber received, in stream order."""

    events: list[dict[str, Any]] = field(default_factory=list)

    async def on_msg(self, msg: Any) -> None:
        envelope = msgpack.unpackb(msg.data)
        self.events.append({**envelope["object"], "_change": envelope["type"], "_subject": msg.subject})

    def about(self, kind: str, name: str, reason: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"] == name
                and (reason is None or e["reason"] == reason)]


@pytest_asyncio.fixture
async def outside(stack: Stack) -> AsyncIterator[Outside]:
    nc = await nats.connect(stack.cluster.url)  # nats-py and msgpack only
    seen = Outside()
    sub = await nc.jetstream().subscribe("shoal.events.default.>", ordered_consumer=True,
                                         deliver_policy=nats.js.api.DeliverPolicy.NEW, cb=seen.on_msg)
    try:
        yield seen
    finally:
        await sub.unsubscribe()
        await nc.close()


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                                      {"name": "web", "image": IMAGE, "command": ["httpd", "-f", "-p", "8080"]}]}}}}


def pod(name: str, container: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"image": IMAGE, **container}]}}


STORY = ["SuccessfulCreate", "Scheduled", "Pulled", "Created", "Started"]


async def test_rollout_tells_each_pods_story_in_order(stack: Stack, client: ApiClient, outside: Outside) -> None:
    await client.create(deployment("story", 3))

    def created_pods() -> list[str]:
        return [e["message"].removeprefix("Created pod: ") for e in outside.events
                if e["reason"] == "SuccessfulCreate" and e["involvedObject"]["kind"] == "ReplicaSet"]

    async def all_started() -> bool:
        pods = created_pods()
        return len(pods) == 3 and all(outside.about("Pod", p, "Started") for p in pods)

    await stack.cluster.eventually(all_started, timeout=120, what="Started events of the 3 pods")
    for name in created_pods():
        story = [e for e in outside.events
                 if (e["reason"] == "SuccessfulCreate" and e["message"] == f"Created pod: {name}")
                 or (e["involvedObject"]["kind"] == "Pod" and e["involvedObject"]["name"] == name)]
        reasons = [e["reason"] for e in story]
        # SuccessfulCreate (the controller, once its create is answered) and Scheduled (the scheduler, once
        # its bind is answered) have no causal order between them, in Kubernetes either: under load the
        # scheduler's may be published first. Everything else is caused by what comes before it.
        if reasons[:2] == ["Scheduled", "SuccessfulCreate"]:
            reasons[:2] = ["SuccessfulCreate", "Scheduled"]
        assert reasons == STORY, f"{name}: {[e['reason'] for e in story]}"
        by_reason = {e["reason"]: e for e in story}
        assert by_reason["Scheduled"]["message"] == f"Successfully assigned default/{name} to {stack.node}"
        assert by_reason["Scheduled"]["source"] == {"component": "default-scheduler"}
        assert by_reason["Pulled"]["message"] == f'Container image "{IMAGE}" already present on machine'
        assert by_reason["Created"]["message"] == "Created container web"
        assert by_reason["Started"]["message"] == "Started container web"
        assert all(by_reason[r]["source"] == {"component": "kubelet", "host": stack.node}
                   for r in ("Pulled", "Created", "Started"))
        assert by_reason["SuccessfulCreate"]["source"] == {"component": "replicaset-controller"}
        assert all(e["_subject"] == f"shoal.events.default.Pod.{name}.{e['metadata']['name'].replace('.', '=2E')}"
                   for e in story if e["involvedObject"]["kind"] == "Pod")
    scaled = outside.about("Deployment", "story", "ScalingReplicaSet")
    assert scaled and scaled[0]["message"].startswith("Scaled up replica set story-")
    assert scaled[0]["source"] == {"component": "deployment-controller"}


async def test_crash_loop_and_failing_probe_are_counted_not_repeated(stack: Stack, client: ApiClient,
                                                                     outside: Outside) -> None:
    await client.create(pod("crasher", {"name": "crash", "command": ["sh", "-c", "sleep 0.2; exit 3"]}))
    await client.create(pod("sick", {"name": "sick", "command": ["sleep", "3600"],
                                     "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1,
                                                       "failureThreshold": 2}}))

    def counted(name: str, reason: str) -> int:
        found = outside.about("Pod", name, reason)
        return max((int(e["count"]) for e in found), default=0)

    async def repeated() -> bool:
        return counted("crasher", "BackOff") >= 3 and counted("sick", "Unhealthy") >= 4

    await stack.cluster.eventually(repeated, timeout=120, what="BackOff and Unhealthy counted several times")
    for name, reason, container in (("crasher", "BackOff", "crash"), ("sick", "Unhealthy", "sick")):
        found = outside.about("Pod", name, reason)
        names = {e["metadata"]["name"] for e in found}
        assert len(names) == 1, f"{reason} of {name} written as {len(names)} Events, not one counted: {found}"
        counts = [int(e["count"]) for e in found]
        assert counts == list(range(1, len(counts) + 1)), counts  # one message per occurrence, count + 1 each
        assert [e["_change"] for e in found] == ["ADDED"] + ["MODIFIED"] * (len(found) - 1)
        last = found[-1]
        assert last["type"] == "Warning" and last["series"]["count"] == last["count"]
        assert last["firstTimestamp"] <= last["lastTimestamp"]
        if reason == "BackOff":
            uid = last["involvedObject"]["uid"]
            assert last["message"] == f"Back-off restarting failed container {container} in pod {name}_default({uid})"
        else:
            assert last["message"].startswith("Liveness probe failed: ")
    killing = outside.about("Pod", "sick", "Killing")
    assert killing and killing[0]["message"] == "Container sick failed liveness probe, will be restarted"
    stored = [e for e in (await client.list("Event", "default")).items
              if e["involvedObject"]["name"] == "crasher" and e["reason"] == "BackOff"]
    assert len(stored) == 1 and int(stored[0]["count"]) >= 3  # the API lists the same one Event


async def test_node_events(stack: Stack, client: ApiClient) -> None:
    async def told() -> list[dict[str, Any]]:
        events = [e for e in (await client.list("Event", "default")).items
                  if e["involvedObject"]["kind"] == "Node" and e["involvedObject"]["name"] == stack.node]
        reasons = {e["reason"] for e in events}
        return events if {"Starting", "NodeReady", "RegisteredNode"} <= reasons else []

    events = await stack.cluster.eventually(told, timeout=60, what="the node's events")
    by_reason = {e["reason"]: e for e in events}
    assert by_reason["Starting"]["message"] == "Starting kubelet."
    assert by_reason["NodeReady"]["message"] == f"Node {stack.node} status is now: NodeReady"
    assert by_reason["NodeReady"]["source"] == {"component": "kubelet", "host": stack.node}
    registered = f"Node {stack.node} event: Registered Node {stack.node} in Controller"
    assert by_reason["RegisteredNode"]["message"] == registered
    assert by_reason["RegisteredNode"]["source"] == {"component": "node-controller"}


async def test_no_scheduled_events_flag(stack: Stack) -> None:
    """``--no-scheduled-events`` is accepted and documented in ``--help`` (what it does: tests/scheduler)."""
    proc = await asyncio.create_subprocess_exec(*stack.cluster.cli_argv()[:1], "-m", "actors.scheduler", "--help",
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert b"--no-scheduled-events" in out


def documented_story(url: str) -> Any:
    """protocol/README.md's story follower, as written (only the server's address changed)."""
    text = (REPO / "protocol" / "README.md").read_text()
    code = re.search(r"```python\n(import asyncio, msgpack, nats\n\nasync def story.*?)```", text, re.S)
    assert code is not None, "the story example is not in protocol/README.md"
    source = code.group(1).replace("nats://127.0.0.1:4222", url).replace("asyncio.run(story())", "")
    scope: dict[str, Any] = {}
    exec(compile(source, "protocol/README.md", "exec"), scope)
    return scope["story"]


async def told_by(story: Any, deployment: str) -> list[str]:
    """The lines the follower prints about ``deployment`` within 5 s (it replays the retained story, then
    follows live: it is stopped)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(TimeoutError):
        await asyncio.wait_for(story(deployment), 5)
    return out.getvalue().splitlines()


async def test_the_documented_story_follower_works(stack: Stack, client: ApiClient) -> None:
    """The example follows one Deployment's whole story against this cluster, after a rollout of its own."""
    story = documented_story(stack.cluster.url)
    name = f"told-{uuid.uuid4().hex[:6]}"  # a rerun's Deployment is another one
    await client.create(deployment(name, 2))

    async def pods_started() -> list[str]:
        pods = [p for p in (await client.list("Pod", "default", label_selector=f"app={name}")).items
                if (p.get("status") or {}).get("phase") == "Running"]
        return [p["metadata"]["name"] for p in pods] if len(pods) == 2 else []

    names = await stack.cluster.eventually(pods_started, timeout=120, what=f"the {name} Deployment's 2 pods Running")
    lines = await told_by(story, name)
    assert any(f" Deployment/{name} ScalingReplicaSet Scaled up replica set {name}-" in line for line in lines), lines
    for pod_name in names:
        told = [line.split()[2] for line in lines if f" Pod/{pod_name} " in line]
        assert told == ["Scheduled", "Pulled", "Created", "Started"], (pod_name, lines)
    assert not any("Pod/story-" in line for line in lines)  # another Deployment's pods are not in this story


async def test_the_documented_follower_tells_what_came_before_it_knew(stack: Stack, client: ApiClient) -> None:
    """A pod's Scheduled may reach the stream before its ReplicaSet's SuccessfulCreate (two components, no
    order between them): the follower still tells it, after the SuccessfulCreate, in stream order."""
    name = f"early-{uuid.uuid4().hex[:6]}"
    rs, pod_name = f"{name}-5d4f8", f"{name}-5d4f8-x2k9q"
    recorder = EventRecorder(client, "test-recorder")

    def obj(kind: str, obj_name: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": kind, "metadata": {"name": obj_name, "namespace": "default",
                                                               "uid": str(uuid.uuid4())}}

    for about, reason, message in [
            (obj("Pod", pod_name), "Scheduled", f"Successfully assigned default/{pod_name} to n1"),
            (obj("Deployment", name), "ScalingReplicaSet", f"Scaled up replica set {rs} from 0 to 1"),
            (obj("Pod", "someone-else"), "Scheduled", "Successfully assigned default/someone-else to n1"),
            (obj("ReplicaSet", rs), "SuccessfulCreate", f"Created pod: {pod_name}"),
            (obj("Pod", pod_name), "Pulled", "Container image already present on machine")]:
        await recorder.record(about, "Normal", reason, message)
    lines = await told_by(documented_story(stack.cluster.url), name)
    assert [line.split()[1:3] for line in lines] == [
        [f"Deployment/{name}", "ScalingReplicaSet"], [f"ReplicaSet/{rs}", "SuccessfulCreate"],
        [f"Pod/{pod_name}", "Scheduled"], [f"Pod/{pod_name}", "Pulled"]], lines
