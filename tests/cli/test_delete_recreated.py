"""``shoal delete`` waits for the object it deleted, not for its name: one re-created under the name (as a
StatefulSet re-creates ``web-0``) is another object, and the wait ends (as kubectl's, which compares UIDs)."""

from __future__ import annotations

import asyncio

from protocol.objects import meta
from runtime.client import ApiClient
from tests.cli.conftest import ShoalCli


async def test_delete_ends_when_the_name_holds_a_new_object(cli: ShoalCli, client: ApiClient) -> None:
    held = {"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default", "finalizers": ["example.com/hold"]}}
    first = await client.create(held)
    proc = await cli.start("delete", "cm", "a", "--timeout", "10")
    for _ in range(200):  # the deletion is accepted: the finalizer holds the object
        current = await client.get("ConfigMap", "a", "default")
        if meta(current).get("deletionTimestamp"):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the deletion was not accepted")
    current["metadata"]["finalizers"] = []
    await client.update(current)  # the old object goes ...
    second = await client.create({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}})
    assert meta(second)["uid"] != meta(first)["uid"]  # ... and a new one takes its name at once

    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == 'configmap "a" deleted'
    assert meta(await client.get("ConfigMap", "a", "default"))["uid"] == meta(second)["uid"]  # left alone
