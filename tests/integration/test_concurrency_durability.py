"""Two API actors on one store, concurrent conflicting writes, and durability across kill -9."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats

from protocol.errors import Conflict
from runtime.client import ApiClient
from runtime.nats_server import NatsServer, NatsServerConfig, free_port
from tests.conftest import ActorRunner, start_api


async def test_two_api_actors_exactly_one_conflicting_write_wins(runner: ActorRunner, nats_server) -> None:
    a = await start_api(runner)
    b = await start_api(runner)
    clients = []
    for _ in range(8):
        clients.append(ApiClient(await nats.connect(nats_server.url)))
    try:
        base = await clients[0].create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "race"},
                                        "data": {"winner": "none"}})
        for round_ in range(15):
            async def attempt(i: int, c: ApiClient, snapshot: dict, r: int = round_) -> str | None:
                obj = dict(snapshot, data={"winner": f"{r}-{i}"})
                try:
                    await c.update(obj)
                    return f"{r}-{i}"
                except Conflict:
                    return None

            results = await asyncio.gather(*(attempt(i, c, base) for i, c in enumerate(clients)))
            winners = [r for r in results if r is not None]
            assert len(winners) == 1, results
            base = await clients[0].get("cm", "race")
            assert base["data"]["winner"] == winners[0]
        assert a.requests > 0 and b.requests > 0, "the queue group spreads requests over both actors"
    finally:
        for c in clients:
            await c.nc.close()


async def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    config = NatsServerConfig(state_dir=tmp_path / "nats", port=free_port())
    server = NatsServer(config)
    await server.start()
    runner = ActorRunner(server.url)
    try:
        await start_api(runner)
        nc = await nats.connect(server.url)
        client = ApiClient(nc)
        acked = []
        for i in range(200):
            obj = await client.create({"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": f"d-{i}"}, "data": {"i": str(i)}})
            acked.append(obj["metadata"]["name"])
        await nc.close()
        server.kill()  # SIGKILL right after the last acknowledgement
        await runner.stop_all()
        server = NatsServer(config)
        await server.start()
        runner = ActorRunner(server.url)
        await start_api(runner)
        nc = await nats.connect(server.url)
        try:
            listing = await ApiClient(nc).list("cm")
            names = {o["metadata"]["name"] for o in listing.items}
            assert set(acked) <= names
        finally:
            await nc.close()
    finally:
        await runner.stop_all()
        await server.stop()
