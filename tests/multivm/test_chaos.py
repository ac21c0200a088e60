"""The chaos suite's CI variant (issue 19): CAS clients, watchers and pod creators on the three-VM
cluster while a NATS server is killed, an API actor is killed, one VM is partitioned away, then one VM is
partitioned away while an API actor is killed (two faults at once), then one NATS server's store is full;
then every checker of ``tests.chaos.checkers`` (one leader at a time included): zero violations, and the
figures printed."""

from __future__ import annotations

import os
import random

import pytest

from tests.chaos.faults import Combined, DiskFull, Fault, Kill, Partition, restart_proc
from tests.chaos.run import Schedule, chaos_run
from tests.multivm.cluster import Cluster

pytestmark = pytest.mark.slow
MULTIVM_STORE_LIMIT_MB = 1024
"""The NATS stores on tmpfs mounts (the streams reserve ~600 MB; a tmpfs only takes what it holds), so that
``DiskFull`` can fill one."""


async def test_chaos_ci_variant(multivm: Cluster) -> None:
    seed = int(os.environ.get("SHOAL_CHAOS_SEED") or random.randrange(1, 1_000_000))
    print(f"\nchaos seed {seed} (SHOAL_CHAOS_SEED={seed} replays the same draws)")
    rng = random.Random(seed)
    victim_nats = rng.choice((1, 2, 3))
    victim_vm = rng.choice((1, 2, 3))
    api_name = f"api-{rng.choice((1, 2))}"  # drawn once (drawn per process before: no match now and then)
    api = next(p for p in multivm.procs if p.name == api_name)
    # drawn after the three above, so that their seeds draw the same first three faults as before
    combined_vm = rng.choice((1, 2, 3))
    combined_name = f"api-{rng.choice((1, 2))}"  # drawn once: inside the generator it was drawn per process
    combined_api = next(p for p in multivm.procs if p.name == combined_name)
    full_nats = rng.choice((1, 2, 3))

    def next_fault(n: int) -> Fault | None:
        if n == 0:
            return Kill(f"kill -9 nats-{victim_nats}", proc=multivm.nats[victim_nats],
                        restart=restart_proc(multivm))
        if n == 1:
            return Kill(f"kill -9 {api.name}", proc=api, restart=restart_proc(multivm))
        if n == 2:
            return Partition(f"partition vm{victim_vm} (minority)", cluster=multivm, vm=victim_vm)
        if n == 3:
            partition = Partition(f"partition vm{combined_vm}", cluster=multivm, vm=combined_vm)
            kill = Kill(f"kill -9 {combined_api.name}", proc=combined_api, restart=restart_proc(multivm))
            return Combined(f"{partition.name} + {kill.name}", faults=(partition, kill))
        if n == 4:
            return DiskFull(f"disk full nats-{full_nats}", cluster=multivm, vm=full_nats)
        return None

    report = await chaos_run(multivm, seed=seed, duration=96, rate=40, epoch_s=24,  # keys rotate as the soak's:
                             # with five faults a key's whole history (~1,500 ops) outgrew the search's budget
                             schedule=Schedule(next_fault, every=18, hold=lambda n: 8.0),
                             dump=multivm.root / f"chaos-history-{seed}.json")
    print(report.summary())
    assert len(report.faults) == 5
    assert report.operations["total"] > 500
    assert set(report.leaders) == {"shoal-scheduler", "shoal-controller-manager"}, report.leaders
    assert not report.unknown_keys, report.summary()
    # Shoal's promises: every violation but a gap of the raw KV observer (the test's own nats-py ordered
    # consumer on the datastore's stream, there to tell a feed loss from an API loss): nats-py's ordered
    # consumer now and then skips revisions across a server kill (docs/RELIABILITY.md, finding 8) while the
    # API's watchers see every change; such a gap is printed, not failed on
    raw_gaps = [v for v in report.violations if v.startswith("[watch-gap] kv-raw")]
    if raw_gaps:
        print("raw KV observer gaps (finding 8, not Shoal's watch):", *raw_gaps, sep="\n  ")
    assert not [v for v in report.violations if v not in raw_gaps], report.summary()  # a skip ends with Expired


def _unannounced(seen: list[tuple[int, int | None]], acked: list[int]) -> list[int]:
    """The acknowledged revisions the feed skipped without its next record showing it: each record names
    the revision it replaced, so a skip shows as a record whose replaced revision is not the last one seen
    (what the API actor checks, ending the watches that may have missed it with ``Expired``)."""
    announced: set[int] = set()
    last: int | None = None
    for rev, replaced in seen:
        if last is not None and replaced is not None and replaced != last:
            announced.update(range(last + 1, rev))
        last = rev
    return sorted(set(acked) - {rev for rev, _ in seen} - announced)


async def test_watch_cache_feed_misses_no_revision_when_its_nats_server_dies(multivm: Cluster) -> None:
    """The watch cache's own feed (``Store.follow``, as the API actor runs it) while the NATS server that
    hosts its consumer is killed -9 and restarted: every acknowledged write must reach it."""
    import asyncio
    import signal
    import time

    from actors.api.store import Record, Store
    from runtime.client import ApiClient
    from tests.chaos.workloads import configmap

    follower_nc = await multivm.connect("admin", name="chaos/follower")
    writer_nc = await multivm.connect("admin", name="chaos/writer")
    key = f"follow-{int(time.time()) % 100000}"
    seen: list[tuple[int, int | None]] = []
    acked: list[int] = []
    victim = 0

    async def on_record(record: Record, pending: int) -> None:
        if record.key.endswith(f".{key}"):
            seen.append((record.revision, record.expected))

    try:
        client = ApiClient(writer_nc, timeout=3)
        await client.create(configmap(key, "follow", "0"))
        sub = await Store(follower_nc).follow(on_record)
        info = await sub.consumer_info()
        assert info.cluster is not None and info.cluster.leader
        victim = int(str(info.cluster.leader).rsplit("-", 1)[1])

        async def write(n: int) -> None:
            try:
                obj = await client.update(configmap(key, "follow", str(n)))
                acked.append(int(obj["metadata"]["resourceVersion"]))
            except Exception:
                await asyncio.sleep(0.2)

        for n in range(10):
            await write(n)
        multivm.nats[victim].kill(signal.SIGKILL)
        until = time.monotonic() + 8
        n = 10
        while time.monotonic() < until:
            await write(n)
            n += 1
            await asyncio.sleep(0.05)
        multivm.start_nats(victim)
        multivm.wait_nats((1, 2, 3), 60)
        until = time.monotonic() + 20  # past two missed idle heartbeats: the consumer is recreated
        while time.monotonic() < until:
            await write(n)
            n += 1
            await asyncio.sleep(0.2)
        deadline = time.monotonic() + 20
        while (not seen or seen[-1][0] < acked[-1]) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        missing = sorted(set(acked) - {rev for rev, _ in seen})
        silent = _unannounced(seen, acked)
        print(f"\nconsumer on nats-{victim}: {len(acked)} writes acknowledged, {len(seen)} revisions followed, "
              f"{len(missing)} skipped ({len(silent)} silently), e.g. {missing[:8]}")
        assert not silent, f"the feed skipped {len(silent)} acknowledged revisions silently: {silent[:10]}"
    finally:
        if victim and not multivm.nats[victim].alive():
            multivm.start_nats(victim)
            multivm.wait_nats((1, 2, 3), 60)
        await follower_nc.close()
        await writer_nc.close()


async def test_watch_cache_feed_misses_no_superseded_revision_under_load(multivm: Cluster) -> None:
    """No fault: eight writers update one object as fast as they can for 10 s while the watch cache's own
    feed (``Store.follow``, with 2 ms of work per record as an API actor has) runs in this process; every
    acknowledged revision must reach it."""
    import asyncio
    import time

    from actors.api.store import Record, Store
    from protocol.errors import ShoalError
    from runtime.client import ApiClient
    from tests.chaos.workloads import configmap

    follower_nc = await multivm.connect("admin", name="chaos/follower")
    writer_ncs = [await multivm.connect("admin", name=f"chaos/writer-{i}") for i in range(4)]
    key = f"hot-{int(time.time()) % 100000}"
    seen: list[tuple[int, int | None]] = []
    acked: list[int] = []

    async def on_record(record: Record, pending: int) -> None:
        if record.key.endswith(f".{key}"):
            seen.append((record.revision, record.expected))
        await asyncio.sleep(0.002)  # an API actor applies and dispatches each record: a little work

    try:
        clients = [ApiClient(nc, timeout=3) for nc in writer_ncs]
        await clients[0].create(configmap(key, "hot", "0"))
        await Store(follower_nc).follow(on_record)
        deadline = time.monotonic() + 20
        while not seen and time.monotonic() < deadline:  # caught up: the writes start on a live feed
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        until = time.monotonic() + 10

        async def writer(w: int) -> None:
            i = 0
            while time.monotonic() < until:
                i += 1
                try:
                    obj = await clients[w % len(clients)].update(configmap(key, "hot", f"{w}-{i}"))
                except ShoalError:
                    continue
                acked.append(int(obj["metadata"]["resourceVersion"]))

        await asyncio.gather(*(writer(w) for w in range(8)))
        deadline = time.monotonic() + 20
        while (not seen or max(r for r, _ in seen) < max(acked)) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        missing = sorted(set(acked) - {rev for rev, _ in seen})
        silent = _unannounced(seen, acked)
        print(f"\n{len(acked)} writes acknowledged, {len(seen)} revisions followed, {len(missing)} skipped "
              f"({len(silent)} silently), e.g. {missing[:8]}")
        assert not silent, f"the feed skipped {len(silent)} acknowledged revisions silently: {silent[:10]}"
    finally:
        await follower_nc.close()
        for nc in writer_ncs:
            await nc.close()
