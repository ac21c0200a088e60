"""What workload controllers share about their pods (Kubernetes' ``PodControl`` and the pod event handlers of
its ReplicaSet and DaemonSet controllers): which owners a pod change concerns, with the expectations it
satisfies; and deleting an owner's pods, expected before they are sent (so a stale cache never makes the
controller delete twice), sent at once, each outcome recorded as an Event on the owner; and creating pods in
slow-start batches (1, 2, 4, ...: ``replication_plan.slow_start_batches``), stopping at the first failing
batch, the creations that will never be seen counted as observed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from actors.controllers.expectations import Expectations
from actors.controllers.replication_plan import slow_start_batches
from protocol.errors import NotFound, ShoalError
from protocol.objects import Obj, controller_of, is_deleting, labels_of, namespace_of, ref
from runtime.client import ApiClient
from runtime.events import EventRecorder

T = TypeVar("T")


async def create_in_batches(items: Sequence[T], create: Callable[[T], Awaitable[object]]
                            ) -> tuple[int, list[BaseException]]:
    """``create(item)`` for each of ``items``, concurrently within slow-start batches, stopping after the first
    batch with failures: how many items were not created (failed or skipped) and that batch's failures."""
    done = 0
    for size in slow_start_batches(len(items)):
        batch = items[done:done + size]
        done += size
        results = await asyncio.gather(*(create(item) for item in batch), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            return len(failures) + len(items) - done, failures
    return 0, []


async def create_expected(expectations: Expectations, key: str, items: Sequence[T],
                          create: Callable[[T], Awaitable[object]]) -> tuple[int, str | None]:
    """``create_in_batches`` with the creations expected for ``key`` first, and the ones that did not happen
    observed at once (they will never be seen): how many were not created, and the first error's message."""
    expectations.expect_creations(key, len(items))
    missed, failures = await create_in_batches(items, create)
    for _ in range(missed):
        expectations.creation_observed(key)
    return missed, str(failures[0]) if failures else None


async def delete_pods(client: ApiClient, recorder: EventRecorder, expectations: Expectations, owner: Obj, key: str,
                      names: list[str]) -> list[str]:
    """Delete the named pods of ``owner`` (whose expectations key is ``key``); returns the errors, one line
    each (a pod already gone is no error)."""
    namespace = namespace_of(owner)
    pod_keys = [f"{namespace}/{n}" for n in names]
    expectations.expect_deletions(key, pod_keys)

    async def delete(name: str, pod_key: str) -> str | None:
        try:
            await client.delete("Pod", name, namespace)
        except ShoalError as exc:
            expectations.deletion_observed(key, pod_key)  # it will never be seen going
            if isinstance(exc, NotFound):
                return None
            await recorder.record(owner, "Warning", "FailedDelete", f"Error deleting: {exc}")
            return str(exc)
        await recorder.record(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        return None

    results = await asyncio.gather(*(delete(n, k) for n, k in zip(names, pod_keys, strict=True)))
    return [r for r in results if r is not None]


def owners_of_pod_change(event: str, old: Obj | None, pod: Obj, expectations: Expectations, *,
                         owner_key: Callable[[Obj], str | None],
                         matching: Callable[[Obj], list[str]]) -> set[str]:
    """The owners to sync after a pod change, the expectations it satisfies recorded: its controller (a pod
    going counts as an observed deletion, a new one as an observed creation), or for an orphan every owner
    whose selector matches it (it may be adopted); and the former ones when its labels or controller changed.
    A pod deleted, or seen first while being deleted, concerns its controller only."""
    key = owner_key(pod)
    keys: set[str] = set()
    if event == "DELETED" or (is_deleting(pod) and (old is None or not is_deleting(old))):
        if key is not None:
            expectations.deletion_observed(key, ref(pod))
            keys.add(key)
        if event == "DELETED" or old is None:
            return keys
    if event == "ADDED" and key is not None:
        expectations.creation_observed(key)
    if key is not None:
        keys.add(key)
    elif controller_of(pod) is None:
        keys.update(matching(pod))
    if old is not None and (labels_of(old) != labels_of(pod) or controller_of(old) != controller_of(pod)):
        old_key = owner_key(old)
        if old_key is not None:
            keys.add(old_key)
        elif controller_of(old) is None:
            keys.update(matching(old))
    return keys
