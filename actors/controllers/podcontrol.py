"""Deleting an owner's pods, as Kubernetes' ``PodControl`` does for every workload controller: the deletions are
expected before they are sent (so a stale cache never makes the controller delete twice), sent at once, and
each one's outcome recorded as an Event on the owner (``SuccessfulDelete`` / ``FailedDelete``)."""

from __future__ import annotations

import asyncio

from actors.controllers.expectations import Expectations
from protocol.errors import NotFound, ShoalError
from protocol.objects import Obj, namespace_of
from runtime.client import ApiClient
from runtime.events import EventRecorder


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
