"""``dryRun`` on the NATS API: create, update, patch and delete run defaults, validation and admission and
answer the object as it would be, and nothing is written (the datastore, the watch and allocations unchanged)."""

from __future__ import annotations

import pytest

from protocol.errors import AlreadyExists, Invalid, NotFound
from protocol.kinds import by_kind
from protocol.requests import Verb
from protocol.subjects import collection_subject, object_subject
from runtime.client import ApiClient

SVC = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
       "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}


async def test_dry_run_writes_nothing(client: ApiClient) -> None:
    svc = by_kind("Service")
    created = (await client.request(collection_subject(Verb.CREATE, svc, "default"),
                                    {"object": SVC, "dryRun": True}))["object"]
    assert created["metadata"]["uid"] and created["spec"]["sessionAffinity"] == "None"  # defaulted
    assert "resourceVersion" not in created["metadata"]
    with pytest.raises(NotFound):
        await client.get("Service", "web", "default")
    bad = {**SVC, "spec": {**SVC["spec"], "ports": [{"port": 0}]}}
    with pytest.raises(Invalid):
        await client.request(collection_subject(Verb.CREATE, svc, "default"), {"object": bad, "dryRun": True})
    real = await client.create(dict(SVC))
    rv = real["metadata"]["resourceVersion"]
    with pytest.raises(AlreadyExists):
        await client.request(collection_subject(Verb.CREATE, svc, "default"), {"object": SVC, "dryRun": True})
    changed = {**real, "spec": {**real["spec"], "ports": [{**real["spec"]["ports"][0], "port": 81}]}}
    updated = (await client.request(object_subject(Verb.UPDATE, svc, "default", "web"),
                                    {"object": changed, "dryRun": True}))["object"]
    assert updated["spec"]["ports"][0]["port"] == 81
    patched = (await client.request(object_subject(Verb.PATCH, svc, "default", "web"),
                                    {"patch": {"metadata": {"labels": {"a": "b"}}}, "dryRun": True}))["object"]
    assert patched["metadata"]["labels"] == {"a": "b"}
    deleted = (await client.request(object_subject(Verb.DELETE, svc, "default", "web"),
                                    {"options": {}, "dryRun": True}))["object"]
    assert deleted["metadata"]["name"] == "web"
    after = await client.get("Service", "web", "default")
    assert after["metadata"]["resourceVersion"] == rv and after["spec"]["ports"][0]["port"] == 80
    assert "labels" not in after["metadata"] and not after["metadata"].get("deletionTimestamp")
    with pytest.raises(Exception, match="dryRun must be a boolean"):
        await client.request(object_subject(Verb.PATCH, svc, "default", "web"), {"patch": {}, "dryRun": "yes"})
