"""Kind strategies through a real API actor: warnings in replies, the PriorityClass kind end to end,
update checks, typed requests and resourceVersion semantics of lists."""

from __future__ import annotations

import pytest

from protocol import codec, subjects
from protocol.errors import BadRequest, Forbidden, Invalid
from protocol.kinds import by_kind
from protocol.subjects import Verb
from runtime.client import ApiClient


def _pod(name: str, node_selector: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeSelector": node_selector, "containers": [{"name": "c", "image": "img"}]}}


async def test_replies_carry_the_kinds_warnings(client: ApiClient) -> None:
    seen: list[str] = []
    warned = ApiClient(client.nc, on_warning=seen.append)
    created = await warned.create(_pod("old-label", {"beta.kubernetes.io/os": "linux"}))
    assert seen == ['spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use "kubernetes.io/os" '
                    "instead"]
    assert created["spec"]["nodeSelector"] == {"beta.kubernetes.io/os": "linux"}, "a warning never refuses"
    seen.clear()
    await warned.patch("pods", "old-label", {"metadata": {"labels": {"a": "b"}}}, "default")
    assert seen == [], "pods warn on create only, as in Kubernetes (machines update them often)"
    await warned.create(_pod("new-label", {"kubernetes.io/os": "linux"}))
    assert seen == []


async def test_a_deployment_template_warns_with_its_path(client: ApiClient) -> None:
    seen: list[str] = []
    warned = ApiClient(client.nc, on_warning=seen.append)
    await warned.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                         "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
                             "metadata": {"labels": {"app": "d"}},
                             "spec": {"nodeSelector": {"failure-domain.beta.kubernetes.io/zone": "a"},
                                      "containers": [{"name": "c", "image": "img"}]}}}})
    expected = ["spec.template.spec.nodeSelector[failure-domain.beta.kubernetes.io/zone]: deprecated since "
                'v1.14; use "topology.kubernetes.io/zone" instead']
    assert seen == expected
    seen.clear()
    await warned.patch("deployments", "d", {"metadata": {"labels": {"team": "a"}}}, "default")
    assert seen == [], "an update of metadata only does not warn again"
    await warned.patch("deployments", "d", {"spec": {"replicas": 2}}, "default")
    assert seen == expected, "an update of what the object asks for warns while the field is still there"
    seen.clear()
    await warned.patch("deployments", "d", {"spec": {"replicas": 3}}, "default", status=True)
    assert seen == [], "status writes never warn"


def _priority_class(name: str, value: object, **fields: object) -> dict:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
            "value": value, **fields}


async def test_priority_class_round_trip(client: ApiClient) -> None:
    created = await client.create(_priority_class("high", 1000, description="important"))
    assert "namespace" not in created["metadata"], "cluster-scoped"
    assert created["preemptionPolicy"] == "PreemptLowerPriority", "defaulted"
    assert created["metadata"]["generation"] == 1
    got = await client.get("pc", "high")
    assert got == created
    described = dict(got, description="very important")
    updated = await client.update(described)
    assert updated["description"] == "very important"
    with pytest.raises(Invalid) as immutable:
        await client.update(dict(updated, value=2000))
    assert {"field": "value", "message": "field is immutable"} in immutable.value.details["causes"]
    with pytest.raises(Invalid):
        await client.patch("priorityclasses", "high", {"preemptionPolicy": "Never"})
    listed = await client.list("priorityclasses")
    assert [i["metadata"]["name"] for i in listed.items] == ["high"]
    await client.delete("priorityclasses", "high")
    assert (await client.list("priorityclasses")).items == []


@pytest.mark.parametrize(("body", "field"), [
    (_priority_class("no-value", None), "value"),
    (_priority_class("text", "high"), "value"),
    (_priority_class("too-high", 2_000_000_000), "value"),
    (_priority_class("system-mine", 5), "metadata.name"),
    (_priority_class("bad-policy", 5, preemptionPolicy="Sometimes"), "preemptionPolicy"),
    (_priority_class("bad-default", 5, globalDefault="yes"), "globalDefault"),
])
async def test_priority_class_invalid(client: ApiClient, body: dict, field: str) -> None:
    with pytest.raises(Invalid) as err:
        await client.create(body)
    assert field in [c["field"] for c in err.value.details["causes"]]


async def test_priority_class_spec_is_an_unknown_field(client: ApiClient) -> None:
    """PriorityClass has no spec: as in Kubernetes, an unknown field refused with fieldValidation Strict,
    else dropped with a warning (issue 18)."""
    strict = ApiClient(client.nc, field_validation="Strict")
    with pytest.raises(BadRequest, match='unknown field "spec"'):
        await strict.create(_priority_class("with-spec", 5, spec={"value": 5}))
    warnings: list[str] = []
    client.on_warning = warnings.append
    created = await client.create(_priority_class("with-spec", 5, spec={"value": 5}))
    assert "spec" not in created and warnings == ['unknown field "spec"']


async def test_malformed_subjects_are_bad_requests(client: ApiClient) -> None:
    pods = by_kind("Pod")
    with pytest.raises(BadRequest, match="not a name"):
        await client.request(subjects.collection_subject(Verb.LIST, pods, "default") + ".extra", {})
    with pytest.raises(BadRequest, match="unknown verb"):
        await client.request("shoal.api.frobnicate.pods.default", {})
    with pytest.raises(BadRequest, match="cannot be bound"):
        await client.request(subjects.collection_subject(Verb.BIND, by_kind("ConfigMap"), "default"),
                             {"bindings": []})


async def test_node_scoped_list_is_forbidden(client: ApiClient) -> None:
    with pytest.raises(Forbidden):
        await client.request(subjects.node_api("n1", Verb.LIST, by_kind("Pod"), "default"), {})


async def test_list_resource_version_zero_is_any_and_n_is_at_least(client: ApiClient) -> None:
    created = await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rv"}})
    rv = int(created["metadata"]["resourceVersion"])
    any_version = await client.list("configmaps", "default", min_resource_version=None)
    assert any_version.resource_version >= rv
    at_least = await client.list("configmaps", "default", min_resource_version=rv)
    assert at_least.resource_version >= rv and [i["metadata"]["name"] for i in at_least.items] == ["rv"]
    reply = await _raw_list(client, "0")
    assert reply["ok"] and reply["resourceVersion"] >= rv
    with pytest.raises(BadRequest, match="negative"):
        codec.check_reply(await _raw_list(client, -1))
    with pytest.raises(BadRequest, match="integer"):
        codec.check_reply(await _raw_list(client, "abc"))


async def _raw_list(client: ApiClient, rv: object) -> dict:
    msg = await client.nc.request(subjects.collection_subject(Verb.LIST, by_kind("ConfigMap"), "default"),
                                  codec.encode({"resourceVersion": rv}), timeout=5)
    return codec.decode(msg.data)
