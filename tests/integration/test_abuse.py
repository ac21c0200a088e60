"""Bounded abuse (issue 18, item 5): each finding of the issue as a test that failed before the fix.

Strict protocol typing, nesting depth, int32 counts, a watch inbox that is not the caller's own, watch
control with a bad body, per-connection limits on watches and requests in flight, slow watchers cut off.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import nats
import pytest

from actors.api.lanes import Admission, Lane, LaneSettings
from actors.api.server import ApiActor, connection_of, own_inbox
from protocol import codec
from protocol.errors import BadRequest, Invalid, ShoalError, TooManyRequests
from protocol.validation import validate
from runtime.client import ApiClient
from runtime.watch import own_inbox as client_inbox
from tests.conftest import ActorRunner, start_api
from tests.integration.test_secrets_audit import answering


async def raw(nc: nats.NATS, subject: str, data: bytes) -> dict[str, Any]:
    msg = await nc.request(subject, data, timeout=5)
    return codec.decode(msg.data)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "x"}
    for _ in range(depth):
        value = {"x": value}
    return value


def test_protocol_version_must_be_the_integer_one() -> None:
    for bad in (True, 1.0, "1", None, 2):
        with pytest.raises(BadRequest):
            codec.decode(msgpack.packb({"v": bad}))
    assert codec.decode(msgpack.packb({"v": 1})) == {"v": 1}


def test_nesting_deeper_than_the_limit_is_refused_at_decode_without_recursion() -> None:
    codec.decode(codec.encode({"object": nested(codec.MAX_DEPTH - 5)}))
    with pytest.raises(BadRequest, match="deeper than"):
        codec.decode(codec.encode({"object": nested(980)}))
    with pytest.raises(BadRequest):
        codec.check_depth([[[[]]]], limit=3)


def test_replies_skip_the_nesting_walk_but_not_msgpack_s_own_limit() -> None:
    """List chunks and watch messages carry stored objects (each checked when written): decoded without the
    walk; nesting beyond msgpack's own stack is still a BadRequest, never a crash."""
    deep = codec.encode({"object": nested(150)})
    assert codec.decode(deep, check_nesting=False)["object"]
    with pytest.raises(BadRequest, match="deeper than"):
        codec.decode(deep)
    with pytest.raises(BadRequest, match="not valid msgpack"):
        codec.decode(b"\x82\xa1v\x01\xa1x" + b"\x91" * 5000 + b"\xc0", check_nesting=False)


async def test_deep_unknown_field_is_refused_and_nothing_is_stored(client: ApiClient) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "deep"},
                  "spec": {"selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "c", "image": "i"}]}},
                           "x-unknown": nested(980)}}
    reply = await raw(client.nc, "shoal.api.create.deployments.default",
                      msgpack.packb({"v": 1, "object": deployment}))
    assert reply["ok"] is False and reply["error"]["code"] == "BadRequest"
    assert [d for d in (await client.list("deployments")).items if d["metadata"]["name"] == "deep"] == []
    reply = await raw(client.nc, "shoal.api.list.deployments._all", msgpack.packb({"v": True}))
    assert reply["ok"] is False and reply["error"]["code"] == "BadRequest"


async def test_replicas_beyond_int32_are_refused(client: ApiClient) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "huge"},
                  "spec": {"replicas": 2**63 - 1, "selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    with pytest.raises(Invalid, match=r"spec\.replicas"):
        await client.create(deployment)
    deployment["spec"]["replicas"] = 2**31 - 1  # the largest int32 is a valid count
    deployment["metadata"]["name"] = "big"
    await client.create(deployment)


@pytest.mark.parametrize(("reply", "connection"), [
    ("_INBOX.abc.tok", "_INBOX.abc"), ("_INBOX.user.abc.tok", "_INBOX.user.abc"),
    ("_INBOX.abc", None), ("other.subject.x", None), (None, None), ("_INBOX.a.*", None),
])
def test_connection_of_a_reply(reply: str | None, connection: str | None) -> None:
    assert connection_of(reply) == connection


def test_own_inbox_rule() -> None:
    assert own_inbox("_INBOX.abc.w.1", "_INBOX.abc")
    for bad in ("_INBOX.abcd.w.1", "_INBOX.other.w", "_INBOX.abc.>", "_INBOX.abc.", "_INBOX.abc", 5, None):
        assert not own_inbox(bad, "_INBOX.abc")


async def test_a_watch_inbox_must_be_the_callers_own(nats_server: Any, client: ApiClient) -> None:
    victim = await nats.connect(nats_server.url)
    try:
        victim_inbox = await client_inbox(victim, "w")
        for target in (victim_inbox, "_INBOX.someone", "shoal.api.create.pods.default"):
            with pytest.raises(BadRequest, match="own reply prefix"):
                await client.request("shoal.api.watch.configmaps._all", {"inbox": target})
        # a request without a reply prefix of a connection cannot open a watch either
        mine = await client_inbox(client.nc, "w")
        reply = await raw(client.nc, "shoal.api.admin.info", codec.encode({}))
        assert reply["ok"]
        sub = await client.nc.subscribe("_INBOX.flat")
        await client.nc.publish("shoal.api.watch.configmaps._all", codec.encode({"inbox": mine}), reply="_INBOX.flat")
        answer = codec.decode((await sub.next_msg(timeout=5)).data)
        assert answer["ok"] is False and answer["error"]["code"] == "BadRequest"
    finally:
        await victim.close()


async def test_watch_control_answers_every_malformed_body(api: ApiActor, client: ApiClient) -> None:
    control = (await client.request("shoal.api.watch.configmaps._all",
                                    {"inbox": await client_inbox(client.nc, "w")}))["control"]
    for body in (b"\xc1 not msgpack", msgpack.packb([1]), msgpack.packb({"v": True}),
                 codec.encode({"op": "keepalive", "watches": "abc"}), codec.encode({"op": "explode", "watches": []}),
                 codec.encode({"op": "keepalive", "watches": 5}),  # no reply at all before: TypeError
                 codec.encode({"op": "cancel", "watches": [{"a": 1}]}), codec.encode({"watches": [1, 2]})):
        reply = await raw(client.nc, control, body)
        assert reply["ok"] is False and reply["error"]["code"] == "BadRequest", (body, reply)
    alive = await raw(client.nc, control, codec.encode({"op": "keepalive", "watches": ["nope"]}))
    assert alive["unknown"] == ["nope"]


async def test_watches_per_connection_are_limited(runner: ActorRunner, nats_server: Any) -> None:
    await start_api(runner, max_watches_per_connection=3)
    nc, other = await nats.connect(nats_server.url), await nats.connect(nats_server.url)
    try:
        client, second = ApiClient(nc), ApiClient(other)
        await answering(client)
        for _ in range(3):
            await client.request("shoal.api.watch.configmaps._all", {"inbox": await client_inbox(nc, "w")})
        with pytest.raises(TooManyRequests):
            await client.request("shoal.api.watch.configmaps._all", {"inbox": await client_inbox(nc, "w")})
        # watches pinned to a node have their own (larger) budget; another connection has its own
        await client.request("shoal.api.watch.pods._all", {"inbox": await client_inbox(nc, "w"),
                                                            "fieldSelector": "spec.nodeName=n1"})
        await second.request("shoal.api.watch.configmaps._all", {"inbox": await client_inbox(other, "w")})
    finally:
        await nc.close()
        await other.close()


async def test_a_watcher_that_falls_behind_is_cut_off_with_expired(runner: ActorRunner, nats_server: Any) -> None:
    await start_api(runner, max_pending_bytes=4096)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        await answering(client)
        inbox = await client_inbox(nc, "w")
        sub = await nc.subscribe(inbox)
        reply = await client.request("shoal.api.watch.configmaps._all", {"inbox": inbox})
        first = codec.decode((await sub.next_msg(timeout=5)).data)
        assert first["ok"] is True and first["watch"] == reply["watch"]
        await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                             "data": {"k": "x" * 8192}})
        ended = codec.decode((await sub.next_msg(timeout=5)).data)
        assert ended["ok"] is False and ended["error"]["code"] == "Expired"
        assert ended["error"]["details"]["reason"] == "TooSlow"
        info = await client.info()
        assert info["watches"] == 0
    finally:
        await nc.close()


async def test_requests_in_flight_per_flow_are_limited() -> None:
    gate = asyncio.Event()
    refused: list[ShoalError] = []

    async def serve(msg: str) -> None:
        await gate.wait()

    async def refuse(msg: str, error: ShoalError) -> None:
        refused.append(error)

    admission: Admission[str] = Admission(serve, refuse, {Lane.USER: LaneSettings(100, 100)}, max_per_flow=2)
    for i in range(2):
        admission.submit(Lane.USER, f"a{i}", "conn-a")
    admission.submit(Lane.USER, "a2", "conn-a")
    admission.submit(Lane.USER, "b0", "conn-b")
    await asyncio.sleep(0)
    assert len(refused) == 1 and isinstance(refused[0], TooManyRequests)
    gate.set()
    await admission.drain(5)
    assert admission.flows == {}
    admission.submit(Lane.USER, "a3", "conn-a")  # served again once the flow's requests finished
    await admission.drain(5)
    assert len(refused) == 1


def test_a_container_name_that_is_no_string_is_invalid_not_a_crash() -> None:
    """Found by tests/fuzz: a list as a container's name raised TypeError (unhashable) in validation."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": ["a"], "image": "i"}, {"name": {"b": 1}, "image": "i"}]}}
    with pytest.raises(Invalid, match="containers"):
        validate(pod, expect_kind="Pod")


@pytest.mark.parametrize("quantity", ["1e999999999", "1e30", "99999999999Ei", float("inf"), float("nan"), -1])
def test_quantities_out_of_range_are_invalid(quantity: Any) -> None:
    """A request of 1e999999999 CPUs was accepted; the scheduler's int() of its millicores never returns."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": quantity}}}]}}
    with pytest.raises(Invalid, match="requests"):
        validate(pod, expect_kind="Pod")


def test_annotation_keys_and_generate_name_are_bounded() -> None:
    cm: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
                                                                                 "annotations": {"bad key!": "v"}}}
    with pytest.raises(Invalid, match="annotations"):
        validate(cm, expect_kind="ConfigMap")
    cm["metadata"] = {"generateName": "x" * 300}
    with pytest.raises(Invalid, match="generateName"):
        validate(cm, expect_kind="ConfigMap")


async def test_generated_names_stay_valid(client: ApiClient) -> None:
    created = await client.create({"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"generateName": "a" * 250}})
    assert len(created["metadata"]["name"]) == 63 and created["metadata"]["name"].startswith("a" * 58)
