"""Storage kinds and admission through a real API actor: PV/PVC/StorageClass round trips, the default class
given to claims, immutable ConfigMaps and Secrets, and pods naming a ServiceAccount that does not exist."""

from __future__ import annotations

from typing import cast

import pytest

from actors.api import service as service_module
from actors.api.cache import WatchCache
from actors.api.kindhooks import HookHost, hooks_for
from protocol import codec
from protocol.errors import Forbidden, Invalid
from protocol.keys import object_key
from protocol.kinds import by_kind
from runtime.client import ApiClient


def claim(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}}


def storage_class(name: str, default: bool = False) -> dict:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name, "annotations": annotations}, "provisioner": "shoal.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer"}


async def test_storage_kinds_round_trip(client: ApiClient) -> None:
    pv = await client.create({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
                              "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                                       "hostPath": {"path": "/srv/pv1"}}})
    assert pv["status"] == {"phase": "Pending"} and "namespace" not in pv["metadata"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    pvc = await client.create(claim("data"))
    assert pvc["status"] == {"phase": "Pending"} and pvc["metadata"]["namespace"] == "default"
    assert "storageClassName" not in pvc["spec"], "no default class yet"
    with pytest.raises(Invalid, match="immutable"):
        await client.patch("persistentvolumeclaims", "data", {"spec": {"accessModes": ["ReadWriteMany"]}}, "default")
    # the status subresource: a binder writes status through it, an update keeps it
    await client.patch("persistentvolumeclaims", "data", {"status": {"phase": "Bound"}}, "default", status=True)
    kept = await client.patch("persistentvolumeclaims", "data", {"metadata": {"labels": {"a": "b"}}}, "default")
    assert kept["status"]["phase"] == "Bound"
    assert [o["metadata"]["name"] for o in (await client.list("pv")).items] == ["pv1"]
    assert [o["metadata"]["name"] for o in (await client.list("pvc", "default")).items] == ["data"]


async def test_claims_naming_no_class_get_the_default_one(client: ApiClient) -> None:
    await client.create(storage_class("slow"))
    await client.create(storage_class("local-path", default=True))
    created = await client.create(claim("a"))
    assert created["spec"]["storageClassName"] == "local-path"
    explicit = await client.create(claim("b", storageClassName=""))
    assert explicit["spec"]["storageClassName"] == "", "\"\" asks for volumes without a class"
    other = await client.create(claim("c", storageClassName="slow"))
    assert other["spec"]["storageClassName"] == "slow"
    with pytest.raises(Invalid, match="forbidden"):
        await client.patch("storageclasses", "slow", {"volumeBindingMode": "Immediate"})


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
async def test_immutable_config_objects_refuse_changes(client: ApiClient, kind: str) -> None:
    plural = kind.lower() + "s"
    await client.create({"apiVersion": "v1", "kind": kind, "metadata": {"name": "frozen"}, "data": {"k": "dg=="},
                         "immutable": True})
    with pytest.raises(Invalid, match="immutable"):
        await client.patch(plural, "frozen", {"data": {"k": "dw=="}}, "default")
    with pytest.raises(Invalid, match="immutable"):
        await client.patch(plural, "frozen", {"immutable": False}, "default")
    if kind == "Secret":
        with pytest.raises(Invalid, match="immutable"):
            await client.patch(plural, "frozen", {"stringData": {"k": "x"}}, "default")
    labelled = await client.patch(plural, "frozen", {"metadata": {"labels": {"a": "b"}}}, "default")
    assert labelled["data"] == {"k": "dg=="}, "metadata still changes"
    await client.delete(plural, "frozen", "default")  # and it can be deleted (then re-created)


def pod(name: str, account: str | None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "img"}]}
    if account is not None:
        spec["serviceAccountName"] = account
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_pods_naming_a_missing_service_account_are_refused(client: ApiClient) -> None:
    with pytest.raises(Forbidden, match='error looking up service account default/robot: serviceaccount "robot" '
                                        "not found"):
        await client.create(pod("p1", "robot"))
    await client.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}})
    assert (await client.create(pod("p1", "robot")))["spec"]["serviceAccountName"] == "robot"
    await client.create(pod("p2", None))  # naming none: admitted
    with pytest.raises(Forbidden, match="default/default"):
        await client.create(pod("p3", "default"))  # no serviceaccount controller runs here


@pytest.mark.parametrize("with_account", [False, True])
async def test_a_taken_generated_name_is_tried_again_on_the_pod_as_sent(
        client: ApiClient, monkeypatch: pytest.MonkeyPatch, with_account: bool) -> None:
    """A generated name that is taken is tried again with another suffix, from the pod as it was sent: the
    first try's admission (the account, the token volume) must not count as the user's own spec."""
    if with_account:
        await client.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
    await client.create(pod("web-taken", None))
    suffixes = iter(["taken", "fresh"])
    monkeypatch.setattr(service_module, "random_suffix", lambda: next(suffixes))
    created = await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-"},
                                   "spec": {"containers": [{"name": "c", "image": "img"}]}})
    assert created["metadata"]["name"] == "web-fresh"
    assert created["spec"]["serviceAccountName"] == "default"
    tokens = [v for v in created["spec"].get("volumes", []) if "projected" in v]
    assert len(tokens) == (1 if with_account else 0), created["spec"].get("volumes")


async def test_the_default_class_admission_sees_a_class_its_cache_has_not_yet() -> None:
    """A class made default just before a claim is acknowledged in the datastore, and the API's watch cache may
    not hold it yet (CI, session 15: the claim got no class): the admission waits for the cache to catch up."""
    cache = WatchCache()
    default = storage_class("local-path", default=True)
    default["metadata"]["creationTimestamp"] = "2026-12-03T16:00:00Z"

    class LaggingHost:
        allocator = None
        token_keys = None

        def __init__(self) -> None:
            self.cache = cache

        async def caught_up(self) -> None:  # the class reaches the cache only now
            cache.apply(object_key(by_kind("StorageClass"), None, "local-path"), 7, codec.packb(default), False)

    admit = hooks_for(by_kind("PersistentVolumeClaim")).prepare_create
    assert admit is not None
    created = claim("a")
    await admit(cast(HookHost, LaggingHost()), created)
    assert created["spec"]["storageClassName"] == "local-path"
