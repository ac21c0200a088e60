"""Kubernetes' Node authorizer: a kubelet reads only the Secrets/ConfigMaps/ServiceAccounts that pods bound
to its node reference. Real nats-server with the cluster's users: two kubelets with their own credentials."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js import api

from actors.api.noderefs import NodeReferences
from actors.api.server import ApiActor, ApiSettings
from protocol import subjects
from protocol.errors import Forbidden, NotFound, ShoalError
from protocol.kinds import by_kind
from protocol.subjects import Verb
from runtime.actor import run_actor
from runtime.bus import BusConfig
from runtime.client import ApiClient
from runtime.nats_security import cluster_users, new_secrets, render_authorization
from runtime.nats_server import NatsServer, NatsServerConfig, free_port


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    secrets = new_secrets(["n1", "n2"])
    passwords = secrets["passwords"]
    users = cluster_users(passwords, ["n1", "n2"])
    server = NatsServer(NatsServerConfig(state_dir=tmp_path / "nats", port=free_port(),
                                         extra=render_authorization(users)))
    await server.start()
    stop = asyncio.Event()
    actor = ApiActor(ApiSettings())
    task = asyncio.create_task(run_actor(actor, BusConfig(servers=(server.url,), user="api", password=passwords["api"]),
                                         stop=stop, install_signals=False))
    conns: list[Any] = []
    try:
        for _ in range(1500):
            if actor.cache.ready.is_set() and actor.serving:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.02)

        async def connect(user: str) -> Any:
            nc = await nats.connect(server.url, user=user, password=passwords[user])
            conns.append(nc)
            return nc

        yield {"admin": ApiClient(await connect("admin")), "n1": await connect("kubelet-n1"),
               "n2": await connect("kubelet-n2")}
    finally:
        for nc in conns:
            with contextlib.suppress(Exception):
                await nc.close()
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
        await server.stop()


async def node_get(nc: Any, node: str, kind: str, name: str, namespace: str = "default") -> dict[str, Any]:
    """What the kubelet's ``volumes.node_fetch`` sends: a get on its node-scoped subjects."""
    client = ApiClient(nc, node_scope=node)
    reply = await client.request(subjects.node_api(node, Verb.GET, by_kind(kind), namespace, name), {})
    return reply["object"]  # type: ignore[no-any-return]


def pod(name: str, secret: str, config_map: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"volumes": [{"name": "s", "secret": {"secretName": secret}}],
                     "containers": [{"name": "c", "image": "i", "env": [
                         {"name": "X", "valueFrom": {"configMapKeyRef": {"name": config_map, "key": "k"}}}]}]}}


async def test_a_kubelet_reads_only_what_its_pods_reference(secured: dict[str, Any]) -> None:
    admin: ApiClient = secured["admin"]
    for name in ("s1", "s2", "unused"):
        await admin.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                            "data": {"k": base64.b64encode(name.encode()).decode()}})
    for name in ("c1", "c2"):
        await admin.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}})
    await admin.create(pod("p1", "s1", "c1"))
    await admin.create(pod("p2", "s2", "c2"))
    with pytest.raises(Forbidden):  # p1 not bound yet: n1 may not read its secret
        await node_get(secured["n1"], "n1", "Secret", "s1")
    await admin.bind("p1", "default", "n1")
    await admin.bind("p2", "default", "n2")

    async def eventually(call: Any) -> dict[str, Any]:
        for _ in range(100):
            try:
                return await call()  # type: ignore[no-any-return]
            except Forbidden:
                await asyncio.sleep(0.05)  # the API actor's cache sees the binding just after it
        return await call()  # type: ignore[no-any-return]

    assert (await eventually(lambda: node_get(secured["n1"], "n1", "Secret", "s1")))["metadata"]["name"] == "s1"
    assert (await node_get(secured["n1"], "n1", "ConfigMap", "c1"))["data"] == {"k": "c1"}
    assert (await eventually(lambda: node_get(secured["n2"], "n2", "Secret", "s2")))["metadata"]["name"] == "s2"
    for node, nc, name in (("n1", secured["n1"], "s2"), ("n2", secured["n2"], "s1"), ("n1", secured["n1"], "unused")):
        with pytest.raises(Forbidden, match="no pod bound to it references it"):
            await node_get(nc, node, "Secret", name)
    with pytest.raises(Forbidden):
        await node_get(secured["n1"], "n1", "ConfigMap", "c2")
    # n1 cannot speak for n2 on n2's subjects (NATS permissions), nor read secrets on the general subjects
    for attempt in (node_get(secured["n1"], "n2", "Secret", "s2"),
                    ApiClient(secured["n1"], timeout=1.0).get("Secret", "s2"),
                    ApiClient(secured["n1"], timeout=1.0).list("Secret", attempts=1)):
        with pytest.raises(ShoalError):
            await attempt
    # a referenced object that does not exist: NotFound (the kubelet then waits for it)
    await admin.create(pod("p3", "later", "c1"))
    await admin.bind("p3", "default", "n1")
    with pytest.raises(NotFound):
        await eventually(lambda: node_get(secured["n1"], "n1", "Secret", "later"))
    # the pod goes: the grant goes with it
    await admin.delete("pods", "p1", grace_period=0)
    for _ in range(100):
        try:
            await node_get(secured["n1"], "n1", "Secret", "s1")
        except Forbidden:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("n1 still reads s1 after its pod was deleted")


class _Entry:
    def __init__(self, rev: int, raw: bytes, namespace: str, name: str) -> None:
        self.rev, self.raw, self.namespace, self.name = rev, raw, namespace, name


def test_references_memoised_by_revision() -> None:
    from protocol import codec
    pods: dict[str, list[_Entry]] = {"n1": [_Entry(1, codec.packb(pod("a", "s", "c") | {"metadata": {
        "name": "a", "namespace": "ns"}}), "ns", "a")]}

    class Pods:
        def pods_on(self, node: str) -> list[_Entry]:
            return pods.get(node, [])

    refs = NodeReferences(Pods())
    assert refs.allowed("n1", "Secret", "ns", "s") and refs.allowed("n1", "ConfigMap", "ns", "c")
    assert not refs.allowed("n2", "Secret", "ns", "s") and not refs.allowed("n1", "Secret", "other", "s")
    pods["n1"] = [_Entry(2, codec.packb({"metadata": {"name": "a", "namespace": "ns"}, "spec": {}}), "ns", "a")]
    assert not refs.allowed("n1", "Secret", "ns", "s")  # a new revision is decoded again


@pytest.mark.parametrize(("kind", "verb", "referenced", "allowed"), [
    ("Secret", Verb.GET, True, True), ("Secret", Verb.GET, False, False),
    ("ConfigMap", Verb.GET, True, True), ("ServiceAccount", Verb.GET, True, True),
    ("Secret", Verb.UPDATE, True, False), ("Secret", Verb.DELETE, True, False),
    ("ConfigMap", Verb.PATCH, True, False),
])
def test_admit_referenced_kinds(kind: str, verb: Verb, referenced: bool, allowed: bool) -> None:
    from actors.api.noderestriction import admit
    calls: list[tuple[str, str, str | None, str]] = []

    def lookup(node: str, k: str, namespace: str | None, name: str) -> bool:
        calls.append((node, k, namespace, name))
        return referenced

    if allowed:
        assert admit("n1", verb, by_kind(kind), "ns", "x", lookup) is None
        assert calls == [("n1", kind, "ns", "x")]
    else:
        with pytest.raises(Forbidden):
            admit("n1", verb, by_kind(kind), "ns", "x", lookup)


async def test_the_admin_creates_no_stream_so_none_mirrors_the_signing_keys(secured: dict[str, Any]) -> None:
    js = secured["admin"].nc.jetstream(timeout=1.0)
    for name, origin in (("steal", "KV_shoal_system"), ("copy", "KV_shoal")):
        with pytest.raises((nats.errors.Error, nats.js.errors.Error)):
            await js.add_stream(api.StreamConfig(name=name, mirror=api.StreamSource(name=origin)))
    await secured["admin"].list("Pod")  # the control: the admin still uses the API
