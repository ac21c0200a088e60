"""The kubelet's Events, as Kubernetes' kubelet words them, with the in-memory runtime and a real API actor.

Read as any client would: a plain NATS subscription on the pod's event subjects (every version, live).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import nats

from actors.api.server import ApiActor
from agents.kubelet.fake_runtime import EXIT_AFTER_ENV, EXIT_CODE_ENV, FakeRuntime
from runtime.client import ApiClient
from tests.agents.kubelet_helpers import create_bound, eventually, pod_manifest, started
from tests.agents.test_kubelet_fake import container, fake_kubelet
from tests.conftest import ActorRunner


class Heard:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def on_msg(self, msg: Any) -> None:
        self.events.append(msgpack.unpackb(msg.data)["object"])

    def of(self, name: str, kind: str = "Pod") -> list[tuple[str, str]]:
        return [(e["reason"], e["message"]) for e in self.events
                if e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"] == name]


async def listen(url: str) -> tuple[Any, Heard]:
    nc = await nats.connect(url)
    heard = Heard()
    await nc.subscribe("shoal.events.default.>", cb=heard.on_msg)
    await nc.flush()
    return nc, heard


async def test_a_pods_life_in_events(runner: ActorRunner, api: ApiActor, client: ApiClient, tmp_path: Path,
                                     nats_server: Any) -> None:
    nc, heard = await listen(nats_server.url)
    try:
        agent = fake_kubelet("node-ev", FakeRuntime(), tmp_path)
        await runner.start(agent, started(agent))
        await create_bound(client, pod_manifest("web", [container()]), "node-ev")

        async def started_told() -> bool:
            return ("Started", "Started container app") in heard.of("web")
        await eventually(started_told, what="the Started event")
        assert heard.of("web") == [("Pulled", 'Container image "busybox" already present on machine'),
                                   ("Created", "Created container app"), ("Started", "Started container app")]
        web = next(e for e in heard.events if e["reason"] == "Started")
        assert web["source"] == {"component": "kubelet", "host": "node-ev"} and web["type"] == "Normal"

        await client.delete("Pod", "web", "default")

        async def killing_told() -> bool:
            return ("Killing", "Stopping container app") in heard.of("web")
        await eventually(killing_told, what="the Killing event")

        async def node_told() -> bool:
            return {r for r, _ in heard.of("node-ev", "Node")} >= {"Starting", "NodeReady"}
        await eventually(node_told, what="the node's events")
        assert ("NodeReady", "Node node-ev status is now: NodeReady") in heard.of("node-ev", "Node")
        assert ("Starting", "Starting kubelet.") in heard.of("node-ev", "Node")
    finally:
        await nc.close()


async def test_missing_image_and_crash_loop_events(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                   tmp_path: Path, nats_server: Any) -> None:
    nc, heard = await listen(nats_server.url)
    try:
        agent = fake_kubelet("node-ev2", FakeRuntime(), tmp_path)
        await runner.start(agent, started(agent))
        image = "registry.invalid/app:1"
        await create_bound(client, pod_manifest("noimg", [container(image=image)]), "node-ev2")
        crash = await create_bound(client, pod_manifest(
            "crash", [container(**{EXIT_AFTER_ENV: "0", EXIT_CODE_ENV: "1"})]), "node-ev2")

        async def told() -> bool:
            backing_off = [e for e in heard.events if e["involvedObject"]["name"] == "crash"
                           and e["reason"] == "BackOff"]
            return ("BackOff", f'Back-off pulling image "{image}"') in heard.of("noimg") and bool(
                backing_off) and max(e["count"] for e in backing_off) >= 2
        await eventually(told, timeout=20, what="ErrImagePull and crash-loop back-off events")
        noimg = heard.of("noimg")
        assert noimg[0] == ("Pulling", f'Pulling image "{image}"')
        assert noimg[1][0] == "Failed" and noimg[1][1].startswith(f'Failed to pull image "{image}": ')
        assert noimg[2] == ("Failed", "Error: ErrImagePull")
        assert ("Failed", "Error: ImagePullBackOff") in noimg
        backoffs = [e for e in heard.events if e["involvedObject"]["name"] == "crash" and e["reason"] == "BackOff"]
        uid = crash["metadata"]["uid"]
        assert {e["message"] for e in backoffs} == {
            f"Back-off restarting failed container app in pod crash_default({uid})"}
        assert len({e["metadata"]["name"] for e in backoffs}) == 1  # one Event, counted
        assert [e["count"] for e in backoffs] == list(range(1, len(backoffs) + 1))
        assert all(e["type"] == "Warning" for e in backoffs)
    finally:
        await nc.close()
