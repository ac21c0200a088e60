"""The gateway's pure parts, table-tested: patches, paging, URL parsing, Status bodies, Table negotiation,
the OpenAPI protobuf encoder, field validation, and the kubeconfig merge."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml

from actors.gateway import apply as server_apply
from actors.gateway import fieldvalidation, listing, openapi_proto, paths, status, table
from actors.gateway.patch import apply_json_patch, apply_patch, apply_strategic_patch
from protocol.errors import BadRequest, Conflict, Invalid, NotFound, Unavailable
from protocol.kinds import by_kind
from shoal import kubeconfig

POD = {"metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
       "spec": {"containers": [
           {"name": "web", "image": "i:1", "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "imagePullPolicy": "Always"},
           {"name": "side", "image": "s:1"}]}}


@pytest.mark.parametrize(("patch", "check"), [
    ({"metadata": {"labels": {"b": "2"}}}, lambda o: o["metadata"]["labels"] == {"a": "1", "b": "2"}),
    ({"metadata": {"labels": {"a": None}}}, lambda o: o["metadata"]["labels"] == {}),
    # containers merge by name: the untouched fields (imagePullPolicy, the sidecar) stay
    ({"spec": {"containers": [{"name": "web", "image": "i:2"}]}},
     lambda o: [c["image"] for c in o["spec"]["containers"]] == ["i:2", "s:1"]
     and o["spec"]["containers"][0]["imagePullPolicy"] == "Always"),
    ({"spec": {"containers": [{"name": "web", "env": [{"name": "A", "value": "9"}]}]}},
     lambda o: o["spec"]["containers"][0]["env"] == [{"name": "A", "value": "9"}, {"name": "B", "value": "2"}]),
    ({"spec": {"containers": [{"name": "web", "env": [{"name": "B", "$patch": "delete"}]}]}},
     lambda o: o["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]),
    ({"spec": {"containers": [{"name": "web", "ports": [{"containerPort": 80, "name": "http"}]}]}},
     lambda o: o["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP", "name": "http"}]),
    ({"spec": {"containers": [{"name": "new", "image": "n"}],
               "$setElementOrder/containers": [{"name": "new"}, {"name": "web"}, {"name": "side"}]}},
     lambda o: [c["name"] for c in o["spec"]["containers"]] == ["new", "web", "side"]),
    ({"spec": {"containers": [{"name": "only", "image": "o"}, {"$patch": "replace"}]}},
     lambda o: o["spec"]["containers"] == [{"name": "only", "image": "o"}]),
    ({"spec": {"$patch": "replace", "containers": []}}, lambda o: o["spec"] == {"containers": []}),
    ({"metadata": {"finalizers": ["y"]}}, lambda o: o["metadata"]["finalizers"] == ["x", "y"]),
    ({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}, lambda o: o["metadata"]["finalizers"] == []),
    ({"spec": {"$retainKeys": ["containers"], "hostNetwork": True}}, lambda o: set(o["spec"]) == {"containers"}),
])
def test_strategic_merge_patch(patch: dict[str, Any], check: Any) -> None:
    before = repr(POD)
    assert check(apply_strategic_patch(POD, patch))
    assert repr(POD) == before  # inputs untouched


def test_service_ports_merge_on_port() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    out = apply_strategic_patch(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]


def test_json_patch() -> None:
    ops = [{"op": "add", "path": "/metadata/labels/b", "value": "2"},
           {"op": "replace", "path": "/spec/containers/0/image", "value": "i:3"},
           {"op": "remove", "path": "/spec/containers/1"},
           {"op": "add", "path": "/spec/containers/-", "value": {"name": "z"}},
           {"op": "copy", "from": "/metadata/name", "path": "/metadata/annotations"},
           {"op": "move", "from": "/metadata/annotations", "path": "/metadata/generateName"},
           {"op": "test", "path": "/metadata/generateName", "value": "p"}]
    out = apply_json_patch(POD, ops)
    assert out["metadata"]["labels"] == {"a": "1", "b": "2"} and out["metadata"]["generateName"] == "p"
    assert [c["name"] for c in out["spec"]["containers"]] == ["web", "z"]
    assert out["spec"]["containers"][0]["image"] == "i:3"
    with pytest.raises(Invalid):
        apply_json_patch(POD, [{"op": "test", "path": "/metadata/name", "value": "q"}])
    with pytest.raises(Invalid):
        apply_json_patch(POD, [{"op": "replace", "path": "/nothing/here", "value": 1}])
    with pytest.raises(BadRequest):
        apply_json_patch(POD, {"op": "add"})
    with pytest.raises(BadRequest):
        apply_patch("application/yaml", POD, {})


def test_paging() -> None:
    items = [{"metadata": {"namespace": ns, "name": n}} for ns in ("b", "a") for n in ("y", "x")]
    first, token, remaining = listing.page(items, 7, 3, None)
    assert [listing.key(o) for o in first] == [("a", "x"), ("a", "y"), ("b", "x")] and remaining == 1
    cursor = listing.decode(token)
    assert cursor == listing.Cursor(7, ("b", "x"))
    rest, token2, _ = listing.page(items, 9, 3, cursor)
    assert [listing.key(o) for o in rest] == [("b", "y")] and token2 == ""
    with pytest.raises(BadRequest):
        listing.decode("garbage!")
    # with snapshots: the next pages are slices of the first page's sorted list, one item per page here
    snapshots = listing.Snapshots()
    _, token, _ = listing.page(items, 7, 1, None, snapshots)
    cursor = listing.decode(token)
    kept = snapshots.get(cursor.snapshot)
    assert kept is not None and len(kept) == 4
    seen = []
    while token:
        cursor = listing.decode(token)
        assert cursor.resource_version == 7
        chunk, token, _ = listing.page(snapshots.get(cursor.snapshot) or [], 7, 1, cursor, snapshots, ordered=True)
        seen += [listing.key(o) for o in chunk]
    assert seen == [("a", "y"), ("b", "x"), ("b", "y")]
    expiring = listing.Snapshots(seconds=-1)
    assert expiring.get(expiring.keep(items)) is None


def test_paths() -> None:
    t = paths.parse("v1", "namespaces/default/pods/web/log")
    assert (t.info.kind, t.namespace, t.name, t.subresource) == ("Pod", "default", "web", "log")
    t = paths.parse("v1", "namespaces/default")
    assert (t.info.kind, t.namespace, t.name) == ("Namespace", None, "default")
    t = paths.parse("apps/v1", "deployments")
    assert (t.info.kind, t.namespace, t.name) == ("Deployment", None, None)
    for api_version, tail in (("v1", "namespaces/default/deployments"), ("v1", "pods/x/proxy"),
                              ("v1", "namespaces/default/nodes"), ("apps/v1", "pods")):
        with pytest.raises(NotFound):
            paths.parse(api_version, tail)


def test_status_bodies() -> None:
    body = status.from_error(NotFound('pods "x" not found'), kind="pods", name="x")
    assert (body["code"], body["reason"], body["details"]) == (404, "NotFound", {"name": "x", "kind": "pods"})
    assert status.from_error(Conflict("stale"))["code"] == 409
    assert status.from_error(Unavailable("down"))["details"]["retryAfterSeconds"] == 1
    invalid = status.from_error(Invalid("bad", {"causes": [{"field": "spec.x", "message": "Required value"}]}))
    assert invalid["code"] == 422 and invalid["details"]["causes"][0]["field"] == "spec.x"


@pytest.mark.parametrize(("accept", "wanted"), [
    ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
     "application/json", True),
    ("application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json", False),
    ("application/json", False), ("", False), ("*/*", False),
])
def test_table_negotiation(accept: str, wanted: bool) -> None:
    assert table.wants_table(accept) is wanted


def test_protobuf_varints_and_document() -> None:
    assert openapi_proto._varint(1) == b"\x01" and openapi_proto._varint(300) == b"\xac\x02"
    encoded = openapi_proto.encode_document({"swagger": "2.0", "info": {"title": "t", "version": "v"},
                                             "paths": {}, "definitions": {"D": {"type": "object"}}})
    # Document.swagger (1), .info (2), .paths (8), .definitions (9) -> NamedSchema{name "D", Schema{type}}
    assert encoded.startswith(b"\x0a\x032.0\x12\x06\x0a\x01t\x12\x01v\x42\x00\x4a")
    assert b"\x0a\x01D" in encoded and b"\xb2\x01\x08\x0a\x06object" in encoded


def test_field_validation() -> None:
    cm = by_kind("ConfigMap")
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"x": "y"}, "bogus": 1},
           "data": {"k": "v"}, "extra": True}
    assert fieldvalidation.unknown_fields(obj, fieldvalidation.schemas.schema(cm)) == ["metadata.bogus", "extra"]
    with pytest.raises(BadRequest, match=r'unknown field "metadata\.bogus"'):
        fieldvalidation.check(cm, dict(obj), "Strict")
    warnings = fieldvalidation.check(cm, obj, None)
    assert warnings == ['unknown field "metadata.bogus"', 'unknown field "extra"'] and "extra" not in obj
    with pytest.raises(BadRequest):
        fieldvalidation.check(cm, obj, "Loose")
    deploy = {"spec": {"anything": {"goes": 1}}, "metadata": {"ownerReferences": [{"any": 1}]}}
    assert fieldvalidation.unknown_fields(deploy, fieldvalidation.schemas.schema(by_kind("Deployment"))) == []


def test_kubeconfig_merge_keeps_other_entries(tmp_path: Path) -> None:
    creds = kubeconfig.ensure_credentials(tmp_path / "gw", ("10.1.2.3",))
    assert kubeconfig.ensure_credentials(tmp_path / "gw").token() == creds.token()  # kept across restarts
    assert (tmp_path / "gw" / "server.key").stat().st_mode & 0o077 == 0
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kind-x",
        "clusters": [{"name": "kind-x", "cluster": {"server": "https://x"}}, {"name": "shoal", "cluster": {}}],
        "users": [{"name": "kind-x", "user": {}}], "contexts": [{"name": "kind-x", "context": {}}]}))
    kubeconfig.merge_into(path, kubeconfig.kubeconfig("https://127.0.0.1:6443", creds))
    merged = yaml.safe_load(path.read_text())
    assert merged["current-context"] == "shoal"
    assert [c["name"] for c in merged["clusters"]] == ["kind-x", "shoal"]
    assert merged["clusters"][1]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert merged["users"][1]["user"]["token"] == creds.token()


def test_server_side_apply_owns_and_releases_fields() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}},
              "data": {"x": "1", "y": "2"}}
    created = server_apply.apply(None, config, "mgr", "2026-01-01T00:00:00Z")
    (entry,) = created["metadata"]["managedFields"]
    assert entry["fieldsV1"] == {"f:data": {"f:x": {}, "f:y": {}},
                                 "f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}}}
    live = {**created, "data": {**created["data"], "z": "by-someone-else"},
            "metadata": {**created["metadata"], "uid": "u", "resourceVersion": "5"}}
    assert server_apply.apply(live, config, "mgr", "later") is live  # unchanged: no write
    smaller = {**config, "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"x": "9"}}
    after = server_apply.apply(live, smaller, "mgr", "later")
    assert after["data"] == {"x": "9", "z": "by-someone-else"} and after["metadata"]["labels"] == {"a": "1"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "a", "image": "i", "env": [{"name": "E", "value": "1"}]},
                                   {"name": "b", "image": "j"}]}}
    paths = server_apply.owned_paths(pod)
    assert ("f:spec", "f:containers", 'k:{"name":"a"}', "f:env", 'k:{"name":"E"}', "f:value") in paths
    assert server_apply.from_fields_v1(server_apply.to_fields_v1(paths)) == paths
    live_pod = server_apply.apply(None, pod, "mgr", "t")
    live_pod["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"  # a default
    one = {**pod, "spec": {"containers": [{"name": "a", "image": "i2"}]}}
    after_pod = server_apply.apply(live_pod, one, "mgr", "t")
    assert after_pod["spec"]["containers"] == [{"name": "a", "image": "i2", "imagePullPolicy": "IfNotPresent"}]
    with pytest.raises(BadRequest):
        server_apply.apply(None, config, "", "t")


def test_kubernetes_protobuf_bodies() -> None:
    from actors.gateway import k8sproto
    from actors.gateway.openapi_proto import _bytes, _str, _varint

    meta_ = _str(1, "c") + _bytes(11, _str(1, "app") + _str(2, "web")) + _bytes(8, b"")  # zero Time: absent
    configmap = _bytes(1, meta_) + _bytes(2, _str(1, "k") + _str(2, "v")) + _varint(4 << 3) + _varint(0)
    body = k8sproto.MAGIC + _bytes(1, _str(1, "v1") + _str(2, "ConfigMap")) + _bytes(2, configmap)
    assert k8sproto.decode(body) == {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "c", "labels": {"app": "web"}}, "data": {"k": "v"}}
    unknown_set = configmap + _str(99, "surprise")
    with pytest.raises(k8sproto.Unsupported, match="field 99 of ConfigMap"):
        k8sproto.decode(k8sproto.MAGIC + _bytes(1, _str(1, "v1") + _str(2, "ConfigMap")) + _bytes(2, unknown_set))
    with pytest.raises(k8sproto.Unsupported, match="not Pod"):
        k8sproto.decode(k8sproto.MAGIC + _bytes(1, _str(1, "v1") + _str(2, "Pod")) + _bytes(2, b""))
    with pytest.raises(BadRequest):
        k8sproto.decode(b"{}")


def test_server_side_apply_conflicts_between_appliers() -> None:
    config = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 2}}
    live = server_apply.apply(None, config, "a", "t")
    shared = server_apply.apply(live, config, "b", "t")  # the same value: owned by both
    assert [m["manager"] for m in shared["metadata"]["managedFields"]] == ["a", "b"]
    other = {**config, "spec": {"replicas": 3}}
    with pytest.raises(Conflict) as refused:
        server_apply.apply(shared, other, "c", "t")
    assert 'conflict with "a": .spec.replicas' in refused.value.message
    assert [c["field"] for c in refused.value.details["causes"]] == [".spec.replicas", ".spec.replicas"]
    forced = server_apply.apply(shared, other, "c", "t", force=True)
    assert forced["spec"]["replicas"] == 3
    owners = {m["manager"]: m["fieldsV1"] for m in forced["metadata"]["managedFields"]}
    assert owners == {"c": {"f:spec": {"f:replicas": {}}}}  # a and b own nothing any more


def test_updates_own_what_they_set_and_appliers_conflict_with_them() -> None:
    created = server_apply.record_update(None, {"apiVersion": "apps/v1", "kind": "Deployment",
                                                "metadata": {"name": "d", "labels": {"app": "d"}},
                                                "spec": {"replicas": 1, "paused": False}}, "kubectl-create", "t0")
    assert created["metadata"]["managedFields"] == [
        {"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": "t0",
         "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:paused": {}, "f:replicas": {}}}}]
    scaled = server_apply.record_update(created, {**created, "spec": {"replicas": 5, "paused": False}},
                                        "kubectl-scale", "t1")
    owners = {m["manager"]: m["fieldsV1"] for m in scaled["metadata"]["managedFields"]}
    assert owners == {"kubectl-create": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:paused": {}}},
                      "kubectl-scale": {"f:spec": {"f:replicas": {}}}}  # the changed field moved
    unchanged = server_apply.record_update(scaled, {**scaled, "metadata": {**scaled["metadata"]}}, "x", "t2")
    assert unchanged["metadata"]["managedFields"] == scaled["metadata"]["managedFields"]  # nothing set: no entry
    relabelled = server_apply.record_update(scaled, {**scaled, "metadata": {"name": "d"}}, "kubectl-label", "t3")
    assert {m["manager"] for m in relabelled["metadata"]["managedFields"]} == {"kubectl-create", "kubectl-scale"}
    assert "f:metadata" not in relabelled["metadata"]["managedFields"][0]["fieldsV1"]  # a removed field is no one's
    config = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 3}}
    with pytest.raises(Conflict) as refused:
        server_apply.apply(scaled, config, "team", "t4")
    assert 'conflict with "kubectl-scale": .spec.replicas' in refused.value.message
    same = server_apply.apply(scaled, {**config, "spec": {"replicas": 5}}, "team", "t4")  # the same value: shared
    assert same["spec"]["replicas"] == 5
    forced = server_apply.apply(scaled, config, "team", "t4", force=True)
    assert {m["manager"] for m in forced["metadata"]["managedFields"]} == {"kubectl-create", "team"}


def test_kubectl_takes_over_what_client_side_apply_set_and_nobody_changed() -> None:
    last = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}
    live = server_apply.record_update(None, {**last, "metadata": {"name": "c", "annotations": {
        server_apply.LAST_APPLIED: json.dumps(last)}}}, "kubectl-client-side-apply", "t")
    moved = server_apply.apply(live, {**last, "data": {"a": "9", "b": "2"}}, "kubectl", "t")
    assert moved["data"] == {"a": "9", "b": "2"}
    with pytest.raises(Conflict):  # another manager name gets the conflict
        server_apply.apply(live, {**last, "data": {"a": "9"}}, "team", "t")
    edited = server_apply.record_update(live, {**live, "data": {"a": "1", "b": "3"}}, "kubectl-edit", "t")
    with pytest.raises(Conflict, match="kubectl-edit"):  # changed since client-side apply: a real conflict
        server_apply.apply(edited, {**last, "data": {"a": "1", "b": "4"}}, "kubectl", "t")


def test_the_manager_of_a_write() -> None:
    assert server_apply.manager_of("mine", "kubectl/v1.32.0 (linux/amd64) kubernetes/abc") == "mine"
    assert server_apply.manager_of(None, "kubectl/v1.32.0 (linux/amd64) kubernetes/abc") == "kubectl"
    assert server_apply.manager_of("", None) == "unknown"


def test_spdy_frames_round_trip_and_the_dictionary() -> None:
    import zlib

    from actors.gateway import spdy

    assert len(spdy.DICTIONARY) == 1423 and spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options")
    server, client = spdy.Codec(), spdy.Codec()
    # a client SYN_STREAM as spdystream writes it (headers compressed with the dictionary)
    deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                               spdy.DICTIONARY)
    block = b"".join([struct.pack(">I", 3)] + [struct.pack(">I", len(x)) + x for pair in (
        (b"streamtype", b"data"), (b"port", b"8080"), (b"requestid", b"0")) for x in pair])
    compressed = deflate.compress(block) + deflate.flush(zlib.Z_SYNC_FLUSH)
    body = struct.pack(">IIBB", 3, 0, 0, 0) + compressed
    syn = struct.pack(">HHI", 0x8003, spdy.SYN_STREAM, len(body)) + body
    frames = server.feed(syn[:5]) + server.feed(syn[5:] + spdy.Codec.data(3, b"hello", fin=True))
    assert frames[0].type == spdy.SYN_STREAM and frames[0].stream_id == 3
    assert frames[0].headers == {"streamtype": "data", "port": "8080", "requestid": "0"}
    assert not frames[1].control and frames[1].data == b"hello" and frames[1].flags & spdy.FLAG_FIN
    reply = client.feed(server.syn_reply(3) + server.ping(7) + server.rst_stream(5))
    assert [(f.type, f.stream_id, f.value) for f in reply] == [(spdy.SYN_REPLY, 3, 0), (spdy.PING, 0, 7),
                                                               (spdy.RST_STREAM, 5, spdy.RST_CANCEL)]
    assert reply[0].headers == {}
