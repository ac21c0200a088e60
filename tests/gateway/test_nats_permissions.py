"""The gateway as a secured cluster runs it: its own NATS user (``runtime.nats_security.gateway_permissions``)
is enough for kubectl's reads, writes, watches and logs, with private inboxes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from actors.api.server import ApiActor, ApiSettings
from actors.gateway.server import GatewayActor, GatewaySettings
from protocol import codec, subjects
from runtime.actor import Actor, run_actor
from runtime.bus import BusConfig, connect
from runtime.client import ApiClient
from runtime.nats_security import cluster_users, inbox_prefix, new_secrets, render_authorization
from runtime.nats_server import NatsServer, NatsServerConfig, free_port
from shoal.kubeconfig import ensure_credentials, kubeconfig
from tests.gateway.conftest import KUBECTL, Gateway, read_until


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[tuple[Gateway, dict[str, str], str]]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    secrets = new_secrets(["stub"])
    users = cluster_users(secrets["passwords"], secrets["nodes"], private_inboxes=True)
    server = NatsServer(NatsServerConfig(state_dir=tmp_path / "nats", port=free_port(),
                                         extra=render_authorization(users)))
    await server.start()
    stops: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(actor: Actor, user: str, ready: Any) -> None:
        stop = asyncio.Event()
        bus = BusConfig(servers=(server.url,), user=user, password=secrets["passwords"][user])
        task = asyncio.create_task(run_actor(actor, bus, stop=stop, install_signals=False))
        stops.append((stop, task))
        for _ in range(1500):
            if ready():
                return
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{actor.name} did not start")

    try:
        api = ApiActor(ApiSettings())
        await start(api, "api", lambda: api.cache.ready.is_set() and api.serving)
        creds = ensure_credentials(tmp_path / "gateway")
        gateway = GatewayActor(GatewaySettings(port=0, cert_file=creds.cert, key_file=creds.key,
                                               admin_token_file=creds.token_file))
        await start(gateway, "gateway", lambda: gateway.port is not None)
        path = tmp_path / "kubeconfig"
        url = f"https://127.0.0.1:{gateway.port}"
        path.write_text(yaml.safe_dump(kubeconfig(url, creds)))
        yield Gateway(url, path, creds, gateway), secrets["passwords"], server.url
    finally:
        for stop, _ in stops:
            stop.set()
        for _, task in stops:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)
        await server.stop()


async def test_the_gateway_user_suffices(secured: tuple[Gateway, dict[str, str], str]) -> None:
    gateway, passwords, url = secured
    await gateway.ok("create", "configmap", "c", "--from-literal=a=b")
    assert await gateway.ok("get", "cm", "c", "-o", "jsonpath={.data.a}") == "b"
    watcher = await gateway.start("get", "cm", "--watch", "-o", "name")
    try:
        await read_until(watcher.stdout, "configmap/c")
    finally:
        watcher.kill()
        await watcher.wait()
    # a stub kubelet of node "stub", as its own NATS user, answers a logs request of the gateway
    nc = await connect(BusConfig(servers=(url,), user="kubelet-stub", password=passwords["kubelet-stub"]),
                       name="stub-kubelet", reconnect=False)
    try:
        async def serve(msg: Any) -> None:
            request = codec.decode(msg.data)
            if "inbox" in request:
                assert request["inbox"].startswith(inbox_prefix("gateway"))
                await nc.publish(request["inbox"], codec.ok(lines=["from the stub"], seq=1, more=False))

        await nc.subscribe(subjects.node_agent("stub", "logs"), cb=serve)
        admin = await connect(BusConfig(servers=(url,), user="admin", password=passwords["admin"]), name="admin",
                              reconnect=False)
        try:
            await ApiClient(admin).create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                           "spec": {"nodeName": "stub", "containers": [{"name": "c", "image": "i"}]}})
        finally:
            await admin.close()
        assert (await gateway.ok("logs", "p")).strip() == "from the stub"
    finally:
        await nc.close()
