"""The chaos suite's CI variant (issue 19): CAS clients, watchers and pod creators on the three-VM
cluster while a NATS server is killed, an API actor is killed and one VM is partitioned away, then every
checker of ``tests.chaos.checkers``: zero violations, and the figures printed."""

from __future__ import annotations

import os
import random

import pytest

from tests.chaos.faults import Fault, Kill, Partition, restart_proc
from tests.chaos.run import Schedule, chaos_run
from tests.multivm.cluster import Cluster

pytestmark = pytest.mark.slow


async def test_chaos_ci_variant(multivm: Cluster) -> None:
    seed = int(os.environ.get("SHOAL_CHAOS_SEED") or random.randrange(1, 1_000_000))
    print(f"\nchaos seed {seed} (SHOAL_CHAOS_SEED={seed} replays the same draws)")
    rng = random.Random(seed)
    victim_nats = rng.choice((1, 2, 3))
    victim_vm = rng.choice((1, 2, 3))
    api = next(p for p in multivm.procs if p.name == f"api-{rng.choice((1, 2))}")

    def next_fault(n: int) -> Fault | None:
        if n == 0:
            return Kill(f"kill -9 nats-{victim_nats}", proc=multivm.nats[victim_nats],
                        restart=restart_proc(multivm))
        if n == 1:
            return Kill(f"kill -9 {api.name}", proc=api, restart=restart_proc(multivm))
        if n == 2:
            return Partition(f"partition vm{victim_vm} (minority)", cluster=multivm, vm=victim_vm)
        return None

    report = await chaos_run(multivm, seed=seed, duration=60, rate=40,
                             schedule=Schedule(next_fault, every=18, hold=lambda n: 8.0),
                             dump=multivm.root / f"chaos-history-{seed}.json")
    print(report.summary())
    assert len(report.faults) == 3
    assert report.operations["total"] > 300
    assert not report.unknown_keys, report.summary()
    assert not report.violations, report.summary()
