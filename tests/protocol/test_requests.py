"""The typed request parser (protocol.requests), resourceVersion's one parser (protocol.resource_version)
and the API actor's authorization step (actors/api/authorize.py), as tables."""

from __future__ import annotations

from typing import Any

import pytest

from actors.api.authorize import authorize
from protocol.errors import BadRequest, Forbidden
from protocol.kinds import by_kind
from protocol.requests import AdminRequest, ApiRequest, parse_subject
from protocol.resource_version import ReadFrom, ReadVersion, read_version, write_precondition
from protocol.subjects import Verb, collection_subject, node_api, object_subject

POD, NODE, LEASE, EVENT = by_kind("Pod"), by_kind("Node"), by_kind("Lease"), by_kind("Event")


@pytest.mark.parametrize(("subject", "expected"), [
    ("shoal.api.get.pods.default.web", ApiRequest(Verb.GET, POD, "default", "web")),
    ("shoal.api.list.pods._all", ApiRequest(Verb.LIST, POD, None, None)),
    ("shoal.api.list.nodes._", ApiRequest(Verb.LIST, NODE, None, None)),
    ("shoal.api.watch.nodes.ignored", ApiRequest(Verb.WATCH, NODE, None, None)),
    ("shoal.api.create.pods.kube-system", ApiRequest(Verb.CREATE, POD, "kube-system", None)),
    ("shoal.api.bind.pods._all", ApiRequest(Verb.BIND, POD, None, None)),
    ("shoal.api.bind.pods.default.web", ApiRequest(Verb.BIND, POD, "default", "web")),
    ("shoal.api.delete.nodes._.n1", ApiRequest(Verb.DELETE, NODE, None, "n1")),
    ("shoal.node.n1.api.status.pods.default.web", ApiRequest(Verb.STATUS, POD, "default", "web", node="n1")),
    ("shoal.api.admin.info", AdminRequest("info")),
])
def test_parse(subject: str, expected: ApiRequest | AdminRequest) -> None:
    assert parse_subject(subject) == expected


def test_parse_round_trips_the_subject_builders() -> None:
    assert parse_subject(object_subject(Verb.PATCH, POD, "a.b", "x.y")) == ApiRequest(Verb.PATCH, POD, "a.b", "x.y")
    assert parse_subject(collection_subject(Verb.LIST, POD, None)) == ApiRequest(Verb.LIST, POD, None, None)
    assert parse_subject(node_api("n.1", Verb.CREATE, LEASE, "kube-node-lease")) == ApiRequest(
        Verb.CREATE, LEASE, "kube-node-lease", None, node="n.1")


@pytest.mark.parametrize(("subject", "message"), [
    ("shoal.api.get", "malformed"),
    ("shoal.api.frob.pods.default", "unknown verb"),
    ("shoal.api.get.widgets.default.x", "unknown resource"),
    ("shoal.api.get.pods", "no namespace token"),
    ("shoal.api.get.pods.default", "needs a subject ending"),
    ("shoal.api.get.pods.default.a.b", "needs a subject ending"),
    ("shoal.api.get.pods._.web", "namespaced"),
    ("shoal.api.list.pods.default.web", "not a name"),
    ("shoal.api.admin.info.more", "malformed admin"),
    ("shoal.node.n1.api.admin.info", "unknown verb"),
])
def test_parse_refuses(subject: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_subject(subject)


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), (0, None), ("0", None), ("17", 17), (17, 17),
])
def test_write_precondition(value: Any, expected: int | None) -> None:
    assert write_precondition(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (None, ReadVersion(ReadFrom.CONSISTENT)), ("", ReadVersion(ReadFrom.CONSISTENT)),
    ("0", ReadVersion(ReadFrom.ANY)), (0, ReadVersion(ReadFrom.ANY)),
    ("42", ReadVersion(ReadFrom.EXACT, 42)), (42, ReadVersion(ReadFrom.EXACT, 42)),
])
def test_read_version(value: Any, expected: ReadVersion) -> None:
    assert read_version(value) == expected


@pytest.mark.parametrize("value", ["abc", -1, "-3", True, 1.5j, [1]])
def test_bad_resource_versions(value: Any) -> None:
    for parse in (write_precondition, read_version):
        with pytest.raises(BadRequest):
            parse(value)


def _req(verb: Verb, info: Any, namespace: str | None, name: str | None, node: str | None = "n1") -> ApiRequest:
    return ApiRequest(verb, info, namespace, name, node)


@pytest.mark.parametrize(("request_", "body", "outcome"), [
    (_req(Verb.GET, POD, "default", "web", node=None), {}, None),
    (_req(Verb.LIST, POD, None, None, node=None), {}, None),
    (_req(Verb.STATUS, NODE, None, "n1"), {}, None),
    (_req(Verb.UPDATE, LEASE, "kube-node-lease", "n1"), {}, None),
    (_req(Verb.CREATE, NODE, None, None), {"object": {"metadata": {"name": "n1"}}}, None),
    (_req(Verb.CREATE, EVENT, "default", None), {"object": {"metadata": {"name": "e"}}}, None),
    (_req(Verb.STATUS, POD, "default", "web"), {}, "guard"),
    (_req(Verb.STATUS, NODE, None, "n2"), {}, Forbidden),
    (_req(Verb.CREATE, NODE, None, None), {"object": {"metadata": {"name": "n2"}}}, Forbidden),
    (_req(Verb.CREATE, POD, "default", None), {"object": {"metadata": {"name": "p"}}}, Forbidden),
    (_req(Verb.CREATE, NODE, None, None), {"object": {"metadata": {}}}, Forbidden),
    (_req(Verb.LIST, POD, None, None), {}, Forbidden),
    (_req(Verb.WATCH, POD, None, None), {}, Forbidden),
    (_req(Verb.BIND, POD, None, None), {}, Forbidden),
])
def test_authorize(request_: ApiRequest, body: dict[str, Any], outcome: Any) -> None:
    if outcome is Forbidden:
        with pytest.raises(Forbidden):
            authorize(request_, body)
        return
    guard = authorize(request_, body)
    if outcome is None:
        assert guard is None
        return
    assert guard is not None
    guard({"spec": {"nodeName": "n1"}})
    with pytest.raises(Forbidden):
        guard({"spec": {"nodeName": "n2"}})
