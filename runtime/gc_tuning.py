"""The cyclic garbage collector in long-lived actors: measured, and kept off the objects that stay.

An actor's heap is mostly long-lived: watch caches, informer stores, scheduler and kubelet state, tens or
hundreds of thousands of objects at scale. CPython's collector scans the whole old generation whenever
enough new objects survived, so its cost grows with the heap, not with the garbage: profiles of hollow
node processes at 150,000 pods showed more than a quarter of their time at allocation sites inside
collections. Shoal's objects hold no reference cycles on their hot paths (decoded msgpack is trees), so
reference counting frees them; the collector remains for the rare cycle, run less often:

- ``gc.freeze()`` once an actor has started moves everything allocated so far (modules, settings, the
  loaded caches) out of the collector's sight for good;
- every ``FREEZE_EVERY`` seconds what survived is frozen too, so a full collection scans only what is new
  since (at 150,000 pods a hollow process spent 43 of its 227 CPU seconds collecting: its heap grew by a
  quarter again and again, and each time the collector scanned all of it); every ``SWEEP_EVERY`` seconds
  everything is unfrozen and collected once, so a cycle that died while frozen is freed all the same;
- the youngest generation's threshold is raised from 700 to ``GEN0_THRESHOLD`` allocations, so short-lived
  request objects are freed by reference counting long before a collection looks at them.

``GcClock`` adds the time spent in collections to every actor's health reply.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any

FREEZE_EVERY = 60.0
SWEEP_EVERY = 900.0
GEN0_THRESHOLD = 50_000
GEN1_THRESHOLD = 10
GEN2_THRESHOLD = 10
ENV = "SHOAL_GC_TUNING"
"""``0`` keeps CPython's defaults (for before/after measurements)."""


class GcClock:
    """Seconds and count of collections per generation, from ``gc.callbacks``."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = int(info.get("generation", 0))
        self.seconds[generation] += time.perf_counter() - self._started
        self.collections[generation] += 1

    def install(self) -> GcClock:
        if self not in gc.callbacks:
            gc.callbacks.append(self)
        return self

    def stats(self) -> dict[str, Any]:
        return {"seconds": round(sum(self.seconds), 3), "collections": list(self.collections),
                "seconds_by_generation": [round(s, 3) for s in self.seconds], "frozen": gc.get_freeze_count()}


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


def tune() -> None:
    """Raise the thresholds (call at process start)."""
    if enabled():
        gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)


def freeze_started() -> None:
    """Move every object alive now into the permanent generation (call once the actor has started)."""
    if enabled():
        gc.collect()
        gc.freeze()


async def maintain(freeze_every: float = FREEZE_EVERY, sweep_every: float = SWEEP_EVERY) -> None:
    """Freeze the survivors every ``freeze_every`` seconds; unfreeze and collect everything every
    ``sweep_every`` seconds (run for the process's life)."""
    if not enabled():
        return
    last_sweep = time.monotonic()
    while True:
        await asyncio.sleep(freeze_every)
        if time.monotonic() - last_sweep >= sweep_every:
            gc.unfreeze()
            gc.collect()
            last_sweep = time.monotonic()
        gc.freeze()
