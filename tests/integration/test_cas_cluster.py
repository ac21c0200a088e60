"""A compare-and-swap that loses a race is ``Conflict`` on a three-server JetStream cluster too.

A replicated stream refuses a write whose subject already has one in flight with err_code 10164 ("wrong
last sequence", no number) rather than 10071 ("wrong last sequence: N"). That refusal is not yet a lost
race (the other write may still fail, and reads return the old revision until it commits), so the store
sends the write again until the other settles: the loser gets Conflict (10071) once the key has moved, never
Unavailable (docs/RELIABILITY.md, finding 3). Eight writers race on one key's revision, twenty times, against three
real nats-servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.js.errors
import pytest

from actors.api.store import EXPECTED_LAST, STREAM, Store, StoreSettings
from protocol import keys
from protocol.errors import Conflict
from runtime.nats_server import NatsServer, NatsServerConfig, free_port
from tests.integration.test_store_stale_answer import check_stale_refusal


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[list[NatsServer]]:
    routes = [free_port() for _ in range(3)]
    servers = [NatsServer(NatsServerConfig(
        state_dir=tmp_path / f"n{i}", port=free_port(), server_name=f"cas-{i + 1}", cluster_name="cas",
        cluster_port=routes[i], routes=[f"nats://127.0.0.1:{p}" for j, p in enumerate(routes) if j != i]))
        for i in range(3)]
    await asyncio.gather(*(s.start() for s in servers))
    try:
        yield servers
    finally:
        await asyncio.gather(*(s.stop() for s in servers))


async def _open(store: Store) -> None:
    for _ in range(60):  # the cluster elects its meta leader first
        try:
            await store.open()
            return
        except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError, nats.js.errors.APIError):
            await asyncio.sleep(0.5)
    raise AssertionError("no JetStream quorum in 30 s")


async def test_a_lost_race_on_a_replicated_bucket_is_conflict(cluster: list[NatsServer]) -> None:
    ncs = [await nats.connect(s.url) for s in cluster]
    try:
        stores = [Store(nc, StoreSettings(replicas=3)) for nc in ncs]
        await _open(stores[0])
        key = "configmaps.default.raced"
        revision = await stores[0].create(key, b"0")
        codes: set[int] = set()
        for round_ in range(20):
            # The raw error codes of the same race, for the record: 10164 must be among them.
            js = ncs[round_ % 3].jetstream()
            raw = await asyncio.gather(*(js.publish(keys.KV_SUBJECT_PREFIX + key, b"raw", headers={
                EXPECTED_LAST: str(revision)}) for _ in range(4)), return_exceptions=True)
            codes |= {r.err_code for r in raw if isinstance(r, nats.js.errors.APIError) and r.err_code}
            assert not [r for r in raw if isinstance(r, BaseException) and not isinstance(r, nats.js.errors.APIError)]
            current = await stores[0].get(key)
            assert current is not None
            revision = current.revision
            results = await asyncio.gather(*(stores[i % 3].update(key, f"{round_}-{i}".encode(), revision)
                                             for i in range(8)), return_exceptions=True)
            won = [r for r in results if isinstance(r, int)]
            lost = [r for r in results if not isinstance(r, int)]
            assert len(won) == 1, results
            assert all(isinstance(r, Conflict) for r in lost), [repr(r) for r in lost]
            revision = won[0]
        assert 10164 in codes, codes  # the race took the replicated path this test is about
        info = await ncs[0].jetstream().stream_info(STREAM)
        assert info.state.last_seq == revision
    finally:
        for nc in ncs:
            await nc.close()


async def test_a_stale_refusal_of_a_committed_write_is_resolved_on_a_cluster(cluster: list[NatsServer]) -> None:
    """A cluster checks the write's id first: the second send is answered as a duplicate, at the revision the
    write got (finding 12)."""
    nc = await nats.connect(cluster[0].url)
    try:
        store = Store(nc, StoreSettings(replicas=3))
        await _open(store)
        await check_stale_refusal(nc, store, duplicates=[None, True])
    finally:
        await nc.close()
