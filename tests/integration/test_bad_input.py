"""Bad input gets a typed error and leaves stored data untouched."""

from __future__ import annotations

import msgpack
import nats
import pytest

from protocol import codec
from protocol.errors import BadRequest, Invalid, TooLarge
from runtime.client import ApiClient


async def raw_request(nc: nats.NATS, subject: str, data: bytes) -> dict:
    msg = await nc.request(subject, data, timeout=5)
    return codec.decode(msg.data)


async def test_garbage_wrong_types_unknown_kinds_and_oversize(nats_server, client: ApiClient) -> None:
    original = await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"},
                                    "data": {"k": "v"}})
    nc = client.nc
    subject = "shoal.api.update.configmaps.default.keep"
    cases = {
        b"\xc1\xff garbage": "BadRequest",  # not msgpack
        msgpack.packb([1, 2, 3]): "BadRequest",  # not a map
        msgpack.packb({"v": 99, "object": {}}): "BadRequest",  # wrong protocol version
        codec.encode({"object": "a string"}): "Invalid",
        codec.encode({"object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "keep"},
                                 "data": {"k": 5}}}): "Invalid",
        codec.encode({"object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "keep"},
                                 "data": {"k": "x" * (2 * 1024 * 1024)}}}): "RequestEntityTooLarge",
        codec.encode({"object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "keep"}}}): "Invalid",
    }
    for payload, code in cases.items():
        reply = await raw_request(nc, subject, payload)
        assert reply["ok"] is False and reply["error"]["code"] == code, (payload[:40], reply)
        assert reply["error"]["message"]
    for subj, code in [("shoal.api.create.gizmos.default", "BadRequest"),
                       ("shoal.api.frobnicate.pods.default.x", "BadRequest"),
                       ("shoal.api.get.pods", "BadRequest")]:
        reply = await raw_request(nc, subj, codec.encode({}))
        assert reply["error"]["code"] == code
    after = await client.get("cm", "keep")
    assert after == original


async def test_client_raises_typed_errors(client: ApiClient) -> None:
    with pytest.raises(TooLarge):
        await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                             "data": {"k": "x" * (1024 * 1024 + 10)}})
    with pytest.raises(Invalid):
        await client.create({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "v"}})
    with pytest.raises(BadRequest):
        await client.list("pods", label_selector="a in (b")
    names = [c["metadata"]["name"] for c in (await client.list("cm")).items]
    assert "big" not in names and "v" not in names
