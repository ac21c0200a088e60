"""Hypothesis fuzzing (issue 18, item 8): the codec, every kind's validation and every API subject.

Bounded in time for CI: ``SHOAL_FUZZ_EXAMPLES`` examples per test (default 40); a long run:
``SHOAL_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/fuzz``.

* codec: any bytes decode to a map or raise BadRequest/TooLarge, never anything else;
* validation: every kind's strategy, given objects with random fields (and random values spliced into
  realistic objects), accepts them or raises Invalid/BadRequest; an accepted object encodes and prints;
* API: random bodies (bytes, or envelopes with random fields) to every verb of every resource, on the
  shared, node-scoped and identity-scoped subjects, against a live API actor: every request is answered with a typed
  reply, the actor still serves, and an object stored beforehand is unchanged.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import nats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import codec
from protocol.errors import BadRequest, ErrorCode, Invalid, ShoalError, TooLarge
from protocol.kinds import STRATEGIES, Strategy
from protocol.subjects import Verb
from protocol.validation import validate
from runtime.client import ApiClient
from runtime.nats_server import NatsServer, NatsServerConfig, free_port
from tests.conftest import ActorRunner, start_api

EXAMPLES = int(os.environ.get("SHOAL_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
           | st.floats(allow_nan=True) | st.text(max_size=12) | st.binary(max_size=8))
keys = st.sampled_from(["metadata", "spec", "status", "name", "labels", "containers", "image", "replicas",
                        "selector", "template", "data", "ports", "x", "kind", "apiVersion"]) | st.text(max_size=8)
values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                      | st.dictionaries(keys, children, max_size=4), max_leaves=24)
maps = st.dictionaries(keys, values, max_size=6)


# -- codec -----------------------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_decode_to_a_map_or_a_typed_error(data: bytes) -> None:
    try:
        assert isinstance(codec.decode(data), dict)
    except (BadRequest, TooLarge):
        pass


@FUZZ
@given(values, st.integers(min_value=0, max_value=150))
def test_any_value_at_any_depth_round_trips_or_is_refused(value: Any, depth: int) -> None:
    for _ in range(depth):
        value = [value]
    envelope = {"v": 1, "x": value}
    data = msgpack.packb(envelope, use_bin_type=True)
    try:
        decoded = codec.decode(data)
    except BadRequest:
        assert nesting(envelope) > codec.MAX_DEPTH
        return
    assert nesting(envelope) <= codec.MAX_DEPTH
    assert decoded["v"] == 1 and "x" in decoded


def nesting(value: Any) -> int:
    """Levels of maps and arrays in ``value`` (a scalar: 0)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


# -- validation ------------------------------------------------------------------------------------
def realistic(strategy: Strategy) -> dict[str, Any]:
    base: dict[str, Any] = {"apiVersion": strategy.info.api_version, "kind": strategy.kind,
                            "metadata": {"name": "a", "labels": {"app": "a"}}}
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    shapes: dict[str, dict[str, Any]] = {
        "Pod": {"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}},
        "Deployment": {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}}, "template": template}},
        "ReplicaSet": {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}}, "template": template}},
        "ReplicationController": {"spec": {"replicas": 1, "selector": {"app": "a"}, "template": template}},
        "Service": {"spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}},
        "ConfigMap": {"data": {"k": "v"}},
        "Secret": {"data": {"k": "dg=="}},
    }
    return base | shapes.get(strategy.kind, {})


def splice(obj: Any, path: list[int], value: Any) -> Any:
    """``obj`` with the node that ``path`` picks (indices into maps' and lists' children) replaced."""
    if not path or not isinstance(obj, (dict, list)) or not obj:
        return value
    if isinstance(obj, dict):
        key = list(obj)[path[0] % len(obj)]
        return {**obj, key: splice(obj[key], path[1:], value)}
    index = path[0] % len(obj)
    return [*obj[:index], splice(obj[index], path[1:], value), *obj[index + 1:]]


def check_validation(obj: Any, kind: str) -> None:
    try:
        validate(obj, expect_kind=kind)
    except (Invalid, BadRequest):
        return
    codec.encode_object(obj)
    strategy = next(s for s in STRATEGIES if s.kind == kind)
    strategy.row(obj, time.time(), wide=True)  # an accepted object prints


@FUZZ
@given(st.sampled_from(STRATEGIES), maps, st.one_of(st.just(None), values))
def test_every_kind_validates_random_objects_with_typed_errors(strategy: Strategy, fields: dict[str, Any],
                                                               metadata: Any) -> None:
    obj = {**fields, "apiVersion": strategy.info.api_version, "kind": strategy.kind}
    obj["metadata"] = metadata if metadata is not None else {"name": "a"}
    check_validation(obj, strategy.kind)


@FUZZ
@given(st.sampled_from(STRATEGIES), st.lists(st.integers(min_value=0, max_value=50), max_size=6), values)
def test_every_kind_validates_realistic_objects_with_random_parts(strategy: Strategy, path: list[int],
                                                                  value: Any) -> None:
    obj = splice(realistic(strategy), path, value)
    if isinstance(obj, dict):
        obj["kind"] = strategy.kind
    check_validation(obj, strategy.kind)


# -- every API subject, on a live API actor --------------------------------------------------------
class Live:
    """A nats-server and an API actor on an event loop in a thread, so Hypothesis drives plain functions."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self._start(tmp))

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self, tmp: Path) -> None:
        self.server = NatsServer(NatsServerConfig(state_dir=tmp / "nats", port=free_port()))
        await self.server.start()
        self.runner = ActorRunner(self.server.url)
        await start_api(self.runner)
        self.nc = await nats.connect(self.server.url)
        self.client = ApiClient(self.nc)
        self.kept = await self.client.create({"apiVersion": "v1", "kind": "ConfigMap",
                                              "metadata": {"name": "keep"}, "data": {"k": "v"}})

    async def _stop(self) -> None:
        await self.nc.close()
        await self.runner.stop_all()
        await self.server.stop()

    def close(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    instance = Live(tmp_path_factory.mktemp("fuzz"))
    try:
        yield instance
    finally:
        instance.close()


TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_~", min_size=1, max_size=10).filter(
    lambda t: t != "keep")
VERBS = st.sampled_from([v.value for v in Verb]) | st.sampled_from(["admin", "frobnicate"])
PLURALS = st.sampled_from([s.info.plural for s in STRATEGIES]) | st.sampled_from(["info", "gizmos"])
NAMESPACES = st.sampled_from(["default", "_all", "_", "kube-system"]) | TOKEN
BODY_KEYS = st.sampled_from(["v", "object", "patch", "options", "inbox", "bookmarks", "resourceVersion",
                             "labelSelector", "fieldSelector", "acks", "node", "uid", "items", "subresource",
                             "token", "fieldValidation", "watches", "op"])
BODIES = (st.binary(max_size=64)
          | st.dictionaries(BODY_KEYS, values, max_size=5).map(lambda b: msgpack.packb(b, use_bin_type=True))
          | st.dictionaries(BODY_KEYS, values, max_size=5).map(lambda b: codec.encode(dict(b, v=1))))
KNOWN = {str(code) for code in ErrorCode}


@FUZZ
@given(st.sampled_from(["shoal.api", "shoal.node.fuzz-node.api", "shoal.user.system=3Akube-scheduler.api",
                        "shoal.user.system=3Akube-controller-manager.api", "shoal.user.fuzz=3Auser.api"]),
       VERBS, PLURALS, NAMESPACES, st.one_of(st.none(), TOKEN), BODIES)
def test_every_api_subject_answers_random_bodies_typed(live: Live, prefix: str, verb: str, plural: str,
                                                       namespace: str, name: str | None, body: bytes) -> None:
    subject = ".".join([prefix, verb, plural, namespace, *([name] if name else [])])

    async def ask() -> dict[str, Any]:
        msg = await live.nc.request(subject, body, timeout=10)
        return codec.decode(msg.data)

    reply = live.run(ask())
    assert reply.get("ok") is True or (reply.get("ok") is False and reply["error"]["code"] in KNOWN), reply
    if reply.get("ok") is False:
        assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]

    async def unchanged() -> None:
        assert await live.client.get("configmaps", "keep") == live.kept
        await live.client.info()

    live.run(unchanged())


def test_typed_errors_are_the_only_refusals() -> None:
    """The KNOWN set above is every code the API may answer with (a new code must be typed)."""
    assert {cls.code for cls in ShoalError.__subclasses__()} <= set(ErrorCode)
