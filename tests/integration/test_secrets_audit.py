"""Secrets encrypted at rest, key rotation, and the audit stream (issue 18, item 6)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import DeliverPolicy

from actors.api import encryption
from actors.api.encryption import EncryptionConfigError, KeyRing, parse_config
from actors.api.store import STREAM
from protocol import codec, keys
from protocol.errors import Forbidden, Invalid, ShoalError, Unavailable
from runtime.client import ApiClient
from tests.conftest import ActorRunner, start_api

PLAINTEXT = b"hunter2-do-not-store-me"


def secret(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {"password": base64.b64encode(PLAINTEXT).decode()}, "stringData": {"token": "plain-token-xyz"}}


async def raw_values(nc: nats.NATS) -> list[tuple[str, bytes]]:
    """Every message of the datastore's stream, as stored."""
    js = nc.jetstream()
    info = await js.stream_info(STREAM)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(STREAM, seq)
        except Exception:
            continue
        out.append((str(msg.subject), bytes(msg.data or b"")))
    return out


async def answering(client: ApiClient) -> None:
    """Until an API actor answers (a restarted one's subscriptions reach the server a moment later)."""
    for _ in range(200):
        try:
            await client.info()
            return
        except Unavailable:
            await asyncio.sleep(0.05)
    raise AssertionError("the restarted API actor never answered")


def config_with(*names_and_keys: tuple[str, str], identity: bool = True) -> dict[str, Any]:
    providers: list[dict[str, Any]] = [{"aesgcm": {"keys": [{"name": n, "secret": k} for n, k in names_and_keys]}}]
    if identity:
        providers.append({"identity": {}})
    return {"kind": "EncryptionConfiguration", "apiVersion": "apiserver.config.k8s.io/v1",
            "resources": [{"resources": ["secrets"], "providers": providers}]}


def test_keyring_binds_ciphertext_to_its_key_and_refuses_bad_configs() -> None:
    ring = parse_config(config_with(("k1", encryption.new_key())))
    sealed = ring.encrypt("secrets.default.a", b"value")
    assert sealed.startswith(b"k8s:enc:aesgcm:v1:k1:") and b"value" not in sealed
    assert ring.decrypt("secrets.default.a", sealed) == b"value"
    with pytest.raises(ShoalError):  # moved to another key: the associated data no longer matches
        ring.decrypt("secrets.default.b", sealed)
    assert ring.encrypt("configmaps.default.a", b"value") == b"value"  # only Secrets
    other = parse_config(config_with(("k2", encryption.new_key())))
    with pytest.raises(ShoalError, match="k1"):
        other.decrypt("secrets.default.a", sealed)
    for bad in ({}, {"kind": "EncryptionConfiguration", "resources": []},
                config_with(("k:1", encryption.new_key())), config_with(("k1", "not base64!")),
                config_with(("k1", base64.b64encode(b"short").decode()))):
        with pytest.raises(EncryptionConfigError):
            parse_config(bad)
    assert not KeyRing.plaintext().encrypts


async def test_secrets_are_encrypted_at_rest_and_keys_rotate(runner: ActorRunner, nats_server: Any,
                                                           tmp_path: Path) -> None:
    path = tmp_path / "encryption.yaml"
    key1 = encryption.new_key()
    encryption.write_config(path, config_with(("key1", key1)))
    assert path.stat().st_mode & 0o777 == 0o600
    await start_api(runner, encryption_config=str(path))
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        await answering(client)
        await client.create(secret("db"))
        await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
                             "data": {"visible": "in-plaintext"}})
        stored = await raw_values(nc)
        blob = b"".join(v for _, v in stored)
        assert b"in-plaintext" in blob  # ConfigMaps are not encrypted
        for needle in (PLAINTEXT, base64.b64encode(PLAINTEXT), b"plain-token-xyz", b"password"):
            assert needle not in blob, needle
        secret_values = [v for s, v in stored if s == keys.KV_SUBJECT_PREFIX + "secrets.default.db"]
        assert secret_values and all(v.startswith(b"k8s:enc:aesgcm:v1:key1:") for v in secret_values)
        got = await client.get("secrets", "db")
        assert base64.b64decode(got["data"]["password"]) == PLAINTEXT
        listed = (await client.list("secrets")).items
        assert next(s for s in listed if s["metadata"]["name"] == "db")["data"] == got["data"]

        # rotation: the new key first, the old one still decrypts; rewrite; then the old key can go
        await runner.stop_all()
        key2 = encryption.new_key()
        encryption.write_config(path, config_with(("key2", key2), ("key1", key1)))
        await start_api(runner, encryption_config=str(path))
        await answering(client)
        assert (await client.get("secrets", "db"))["data"] == got["data"]
        result = codec.check_reply(codec.decode((await nc.request("shoal.api.admin.rewrite-secrets",
                                                                  codec.encode({}), timeout=10)).data))["result"]
        assert result["rewritten"] >= 1
        latest = [v for s, v in await raw_values(nc) if s == keys.KV_SUBJECT_PREFIX + "secrets.default.db"][-1]
        assert latest.startswith(b"k8s:enc:aesgcm:v1:key2:")
        await runner.stop_all()
        encryption.write_config(path, config_with(("key2", key2)))
        await start_api(runner, encryption_config=str(path))
        await answering(client)
        assert (await client.get("secrets", "db"))["data"] == got["data"]
    finally:
        await nc.close()


async def test_every_mutation_and_every_refusal_is_audited(runner: ActorRunner, nats_server: Any) -> None:
    await start_api(runner)
    nc = await nats.connect(nats_server.url)
    try:
        client = ApiClient(nc)
        js = nc.jetstream()
        records: list[dict[str, Any]] = []
        got = asyncio.Event()

        async def on_record(msg: Any) -> None:
            records.extend(r | {"subject": msg.subject} for r in codec.decode(msg.data)["records"])
            if len(records) >= 5:
                got.set()

        sub = await js.subscribe("shoal.audit.>", cb=on_record, ordered_consumer=True,
                                 deliver_policy=DeliverPolicy.ALL)
        await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "audited"}})
        await client.get("configmaps", "audited")  # a read that succeeds is not audited
        with pytest.raises(Invalid):
            await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}})
        node = ApiClient(nc, node_scope="n1")
        with pytest.raises(Forbidden):
            await node.update({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "audited"}})
        robot = ApiClient(nc, impersonate=lambda: {"user": "robot", "groups": ["system:authenticated"]})
        with pytest.raises(Forbidden):  # impersonated (as the gateway sends its users): RBAC refuses it
            await robot.delete("configmaps", "audited")
        await client.delete("configmaps", "audited")
        await asyncio.wait_for(got.wait(), 10)
        await sub.unsubscribe()
        summary = [(r["verb"], r["resource"], r["name"], r["outcome"], r["user"]) for r in records]
        assert summary == [
            ("create", "configmaps", None, "allowed", "unknown"),
            ("create", "configmaps", None, "refused", "unknown"),
            ("update", "configmaps", "audited", "refused", "system:node:n1"),
            ("delete", "configmaps", "audited", "refused", "robot"),
            ("delete", "configmaps", "audited", "allowed", "unknown"),
        ], summary
        assert records[1]["reason"] == "Invalid" and records[1]["code"] == 422
        assert records[2]["reason"] == "Forbidden" and records[2]["subject"] == "shoal.audit.refused.update.configmaps"
        assert all(r["connection"].startswith("_INBOX.") for r in records)
    finally:
        await nc.close()
