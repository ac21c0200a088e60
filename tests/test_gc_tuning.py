"""The collector's upkeep in long-lived actors: survivors are frozen, and a sweep still frees dead cycles."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from runtime import gc_tuning


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


async def test_frozen_cycles_are_freed_by_the_next_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gc_tuning.ENV, "1")
    gc.collect()
    cycle = Node()
    alive = weakref.ref(cycle)
    task = asyncio.create_task(gc_tuning.maintain(freeze_every=0.05, sweep_every=0.3))
    try:
        await asyncio.sleep(0.12)
        assert gc.get_freeze_count() > 0
        del cycle
        gc.collect()
        assert alive() is not None  # frozen: collections no longer look at it
        for _ in range(40):
            await asyncio.sleep(0.05)
            if alive() is None:
                break
        assert alive() is None  # the sweep unfroze and collected it
    finally:
        task.cancel()
        gc.unfreeze()


async def test_the_clock_counts_collections() -> None:
    clock = gc_tuning.GcClock().install()
    try:
        gc.collect()
        stats = clock.stats()
        assert stats["collections"][2] >= 1 and stats["seconds"] >= 0
    finally:
        gc.callbacks.remove(clock)
