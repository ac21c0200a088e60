"""The real kubectl against Shoal through the gateway: apply (twice), get in every output, watch, describe,
scale, label, annotate, explain, delete, and the errors and authentication it meets."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path

import yaml

from runtime.client import ApiClient
from shoal.kubeconfig import ensure_credentials, issue_client_certificate
from tests.gateway.conftest import Gateway, read_until

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: localhost/shoal/busybox:latest
        command: ["httpd", "-f", "-p", "8080"]
        ports:
        - containerPort: 8080
        env:
        - {name: GREETING, value: hello}
        - {name: COLOR, value: blue}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
"""


async def test_apply_twice_is_idempotent_and_a_change_is_patched(gateway: Gateway, api_client: ApiClient,
                                                                  tmp_path: object) -> None:
    out = await gateway.ok("apply", "-f", "-", stdin=MANIFEST)
    assert "deployment.apps/web created" in out and "service/web created" in out and "configmap/settings created" in out
    first = await api_client.get("Deployment", "web", "default")
    out = await gateway.ok("apply", "-f", "-", stdin=MANIFEST)
    assert out.count("unchanged") == 3, out
    assert (await api_client.get("Deployment", "web", "default"))["metadata"]["resourceVersion"] == \
        first["metadata"]["resourceVersion"]
    # a changed manifest: strategic merge patch by container name and env name; a dropped env var goes
    changed = MANIFEST.replace("replicas: 2", "replicas: 3").replace("value: hello", "value: bonjour") \
        .replace("        - {name: COLOR, value: blue}\n", "")
    out = await gateway.ok("apply", "-f", "-", stdin=changed)
    assert "deployment.apps/web configured" in out and "service/web unchanged" in out
    dep = await api_client.get("Deployment", "web", "default")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert dep["spec"]["replicas"] == 3
    assert container["env"] == [{"name": "GREETING", "value": "bonjour"}]
    assert container["ports"][0]["containerPort"] == 8080 and container["image"].endswith("busybox:latest")
    out = await gateway.ok("apply", "-f", "-", stdin=changed)
    assert out.count("unchanged") == 3, out


async def test_get_in_every_output(gateway: Gateway) -> None:
    await gateway.ok("apply", "-f", "-", stdin=MANIFEST)
    table = await gateway.ok("get", "deployments")
    assert table.splitlines()[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table.splitlines()[1].split()[:2] == ["web", "0/2"]
    wide = await gateway.ok("get", "deploy", "-o", "wide")
    assert "IMAGES" in wide and "localhost/shoal/busybox:latest" in wide and "app=web" in wide
    svc = await gateway.ok("get", "svc", "web")
    assert svc.splitlines()[0].split()[:3] == ["NAME", "TYPE", "CLUSTER-IP"] and "80/TCP" in svc
    as_yaml = yaml.safe_load(await gateway.ok("get", "deployment", "web", "-o", "yaml"))
    assert as_yaml["kind"] == "Deployment" and as_yaml["spec"]["replicas"] == 2
    as_json = json.loads(await gateway.ok("get", "configmaps", "-o", "json"))
    assert as_json["kind"] == "List" and [i["metadata"]["name"] for i in as_json["items"]] == ["settings"]
    assert await gateway.ok("get", "cm", "settings", "-o", "jsonpath={.data.mode}") == "fast"
    every = await gateway.ok("get", "namespaces", "-o", "name")
    assert {"namespace/default", "namespace/kube-system"} <= set(every.split())
    labelled = await gateway.ok("get", "deploy", "-l", "app=web", "-o", "name")
    assert labelled.split() == ["deployment.apps/web"]
    assert (await gateway.ok("get", "deploy", "-l", "app=other", "-o", "name")).strip() == ""
    missing = await gateway.kubectl("get", "deploy", "nope")
    assert missing.rc == 1 and "Error from server (NotFound)" in missing.err and "nope" in missing.err


async def test_scale_label_annotate_describe_delete(gateway: Gateway, api_client: ApiClient) -> None:
    await gateway.ok("apply", "-f", "-", stdin=MANIFEST)
    assert "deployment.apps/web scaled" in await gateway.ok("scale", "deployment", "web", "--replicas=5")
    assert (await api_client.get("Deployment", "web", "default"))["spec"]["replicas"] == 5
    await gateway.ok("label", "deployment", "web", "tier=front")
    await gateway.ok("annotate", "deployment", "web", "note=hello")
    dep = await api_client.get("Deployment", "web", "default")
    assert dep["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert dep["metadata"]["annotations"]["note"] == "hello"
    await gateway.ok("label", "deployment", "web", "tier-")
    assert "tier" not in (await api_client.get("Deployment", "web", "default"))["metadata"]["labels"]
    described = await gateway.ok("describe", "deployment", "web")
    assert "5 desired" in described and "GREETING:" in described and "hello" in described
    assert "Selector:          app=web" in await gateway.ok("describe", "service", "web")
    assert 'deployment.apps "web" deleted' in await gateway.ok("delete", "deployment", "web")
    assert 'configmap "settings" deleted' in await gateway.ok("delete", "-f", "-", "--ignore-not-found",
                                                               stdin=MANIFEST.split("---")[2])
    assert (await gateway.ok("get", "deploy,cm", "-o", "name")).strip() == ""


async def test_get_watch_sees_changes(gateway: Gateway, api_client: ApiClient) -> None:
    await gateway.ok("apply", "-f", "-", stdin=MANIFEST)
    proc = await gateway.start("get", "deployments", "--watch")
    try:
        await read_until(proc.stdout, "web")
        await gateway.ok("scale", "deployment", "web", "--replicas=4")
        await read_until(proc.stdout, "0/4")
        json_proc = await gateway.start("get", "configmaps", "--watch", "-o", "json", "--output-watch-events")
        try:
            await read_until(json_proc.stdout, '"name":"settings"')
            await gateway.ok("delete", "configmap", "settings")
            await read_until(json_proc.stdout, '"type":"DELETED"')
        finally:
            json_proc.kill()
            await json_proc.wait()
    finally:
        proc.kill()
        await proc.wait()


async def test_explain_and_validation_without_validate_false(gateway: Gateway) -> None:
    explained = await gateway.ok("explain", "deployment")
    assert "KIND:       Deployment" in explained and "spec" in explained
    assert "map[string]string" in await gateway.ok("explain", "pods.metadata.labels")
    bad = MANIFEST.split("---")[2].replace("data:", "dataa:")
    result = await gateway.kubectl("apply", "-f", "-", stdin=bad)
    assert result.rc == 1 and 'unknown field "dataa"' in result.err, result


async def test_a_wrong_token_is_401_and_a_service_account_token_is_accepted(gateway: Gateway,
                                                                             api_client: ApiClient) -> None:
    result = await gateway.kubectl("get", "pods", "--token", "not-the-token")
    assert result.rc == 1 and "You must be logged in to the server" in result.err, result
    await api_client.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}})
    secret = await api_client.create({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}}})
    token = base64.b64decode(secret["data"]["token"]).decode()
    refused = await gateway.kubectl("get", "ns", "--token", token)  # authenticated, but no binding yet
    assert refused.rc == 1 and 'User "system:serviceaccount:default:robot" cannot list resource "namespaces"' \
        in refused.err, refused
    await gateway.ok("create", "clusterrolebinding", "robot-view", "--clusterrole=view",
                     "--serviceaccount=default:robot")
    assert "namespace/default" in await gateway.ok("get", "ns", "-o", "name", "--token", token)
    assert "system:serviceaccount:default:robot" in await gateway.ok("auth", "whoami", "--token", token)
    assert "shoal-admin" in await gateway.ok("auth", "whoami")
    await api_client.delete("Secret", "robot-token", "default")  # revoked: the review refuses it
    gateway.actor.auth._cache.clear()  # as the review cache does after its 10 s
    result = await gateway.kubectl("get", "pods", "--token", token)
    assert result.rc == 1 and "You must be logged in to the server" in result.err, result


async def test_server_side_apply_twice_then_changed(gateway: Gateway, api_client: ApiClient) -> None:
    out = await gateway.ok("apply", "--server-side", "-f", "-", stdin=MANIFEST)
    assert out.count("serverside-applied") == 3, out
    first = await api_client.get("Deployment", "web", "default")
    (entry,) = first["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl" and entry["operation"] == "Apply"
    assert 'k:{"name":"web"}' in entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    await gateway.ok("apply", "--server-side", "-f", "-", stdin=MANIFEST)
    assert (await api_client.get("Deployment", "web", "default"))["metadata"]["resourceVersion"] == \
        first["metadata"]["resourceVersion"]
    await gateway.ok("label", "deployment", "web", "owner=someone-else")  # another writer's field stays
    changed = MANIFEST.replace("value: hello", "value: bonjour").replace("        - {name: COLOR, value: blue}\n", "")
    await gateway.ok("apply", "--server-side", "-f", "-", stdin=changed)
    dep = await api_client.get("Deployment", "web", "default")
    assert dep["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "GREETING", "value": "bonjour"}]
    assert dep["metadata"]["labels"] == {"app": "web", "owner": "someone-else"}
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"  # a default the API filled in stays


async def test_create_generators_send_protobuf(gateway: Gateway, api_client: ApiClient) -> None:
    """kubectl's typed clients send protobuf bodies, which the gateway decodes for these kinds."""
    await gateway.ok("create", "configmap", "cm", "--from-literal=mode=fast")
    assert (await api_client.get("ConfigMap", "cm", "default"))["data"] == {"mode": "fast"}
    await gateway.ok("create", "secret", "generic", "s", "--from-literal=password=hunter2")
    assert (await api_client.get("Secret", "s", "default"))["data"] == {"password": "aHVudGVyMg=="}
    await gateway.ok("create", "deployment", "d", "--image=localhost/shoal/busybox:latest", "--replicas=0",
                     "--port=8080")
    dep = await api_client.get("Deployment", "d", "default")
    assert dep["spec"]["replicas"] == 0 and dep["spec"]["selector"] == {"matchLabels": {"app": "d"}}
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "localhost/shoal/busybox:latest" and container["ports"][0]["containerPort"] == 8080
    assert "creationTimestamp" not in dep["spec"]["template"]["metadata"]
    await gateway.ok("create", "service", "clusterip", "svc", "--tcp=80:8080")
    assert (await api_client.get("Service", "svc", "default"))["spec"]["ports"][0]["targetPort"] == 8080
    await gateway.ok("create", "namespace", "team")
    await gateway.ok("create", "serviceaccount", "robot", "-n", "team")
    await gateway.ok("create", "priorityclass", "high", "--value=1000")
    assert (await api_client.get("PriorityClass", "high"))["value"] == 1000


async def test_api_warnings_reach_kubectl_and_edit_with_a_scripted_editor(gateway: Gateway, api_client: ApiClient,
                                                                           tmp_path: object) -> None:
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: old-labels}\nspec:\n"
           "  nodeSelector: {beta.kubernetes.io/os: linux}\n"
           "  containers: [{name: c, image: localhost/shoal/busybox:latest}]\n")
    result = await gateway.kubectl("apply", "-f", "-", stdin=pod)
    assert result.rc == 0, result
    assert "Warning: spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14" in result.err, result
    await gateway.ok("apply", "-f", "-", stdin=MANIFEST.split("---")[2])
    editor = f"{tmp_path}/editor.sh"
    with open(editor, "w") as f:
        f.write('#!/bin/sh\nsed -i "s/mode: fast/mode: edited/" "$1"\n')
    os.chmod(editor, 0o755)
    proc = await asyncio.create_subprocess_exec(*gateway.kubectl_argv("edit", "configmap", "settings"),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env={**gateway.env(), "EDITOR": editor, "KUBE_EDITOR": editor})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and b"configmap/settings edited" in out, err
    assert (await api_client.get("ConfigMap", "settings", "default"))["data"] == {"mode": "edited"}


async def test_server_side_apply_conflict_and_force(gateway: Gateway, api_client: ApiClient) -> None:
    config = MANIFEST.split("---")[2]
    await gateway.ok("apply", "--server-side", "--field-manager=team-a", "-f", "-", stdin=config)
    changed = config.replace("mode: fast", "mode: slow")
    refused = await gateway.kubectl("apply", "--server-side", "--field-manager=team-b", "-f", "-", stdin=changed)
    assert refused.rc == 1 and 'conflict with "team-a"' in refused.err and ".data.mode" in refused.err, refused
    await gateway.ok("apply", "--server-side", "--field-manager=team-b", "--force-conflicts", "-f", "-", stdin=changed)
    cm = await api_client.get("ConfigMap", "settings", "default")
    assert cm["data"] == {"mode": "slow"}
    assert {m["manager"] for m in cm["metadata"]["managedFields"]} == {"team-b"}


async def test_fields_set_by_create_and_scale_have_managers_that_apply_conflicts_with(
        gateway: Gateway, api_client: ApiClient) -> None:
    await gateway.ok("create", "deployment", "owned", "--image=busybox", "--replicas=1")
    await gateway.ok("scale", "deployment", "owned", "--replicas=4")
    shown = yaml.safe_load(await gateway.ok("get", "deployment", "owned", "-o", "yaml", "--show-managed-fields"))
    managers = {(m["manager"], m["operation"]) for m in shown["metadata"]["managedFields"]}
    assert ("kubectl-create", "Update") in managers, managers
    scaler = next(m for m in shown["metadata"]["managedFields"] if "f:replicas" in m["fieldsV1"].get("f:spec", {}))
    assert scaler["manager"] != "kubectl-create"  # the write that changed replicas owns it now
    config = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: owned\nspec:\n  replicas: 2\n"
              "  selector:\n    matchLabels:\n      app: owned\n  template:\n    metadata:\n      labels:\n"
              "        app: owned\n    spec:\n      containers:\n      - name: busybox\n        image: busybox\n")
    refused = await gateway.kubectl("apply", "--server-side", "--field-manager=team", "-f", "-", stdin=config)
    assert refused.rc == 1 and f'conflict with "{scaler["manager"]}"' in refused.err, refused
    assert ".spec.replicas" in refused.err, refused
    assert (await api_client.get("Deployment", "owned", "default"))["spec"]["replicas"] == 4  # nothing written
    await gateway.ok("apply", "--server-side", "--field-manager=team", "--force-conflicts", "-f", "-", stdin=config)
    assert (await api_client.get("Deployment", "owned", "default"))["spec"]["replicas"] == 2


async def test_client_certificates_signed_by_the_cluster_ca(gateway: Gateway, tmp_path: Path) -> None:
    cert, key = issue_client_certificate(gateway.credentials, "alice", ("devs", "ops"))
    config = yaml.safe_load(gateway.kubeconfig.read_text())
    config["users"][0]["user"] = {"client-certificate-data": base64.b64encode(cert).decode(),
                                  "client-key-data": base64.b64encode(key).decode()}
    path = tmp_path / "alice.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    whoami = await gateway.kubectl("--kubeconfig", str(path), "auth", "whoami", "-o", "json")
    assert whoami.rc == 0, whoami
    user = json.loads(whoami.out)["status"]["userInfo"]
    assert user["username"] == "alice" and {"devs", "ops"} <= set(user["groups"])
    # a certificate from another CA is refused by TLS itself
    stranger = ensure_credentials(tmp_path / "other-ca")
    cert, key = issue_client_certificate(stranger, "mallory")
    config["users"][0]["user"] = {"client-certificate-data": base64.b64encode(cert).decode(),
                                  "client-key-data": base64.b64encode(key).decode()}
    path.write_text(yaml.safe_dump(config))
    refused = await gateway.kubectl("--kubeconfig", str(path), "get", "--raw", "/version")
    assert refused.rc == 1, refused


async def test_dry_run_server_and_diff_write_nothing(gateway: Gateway, api_client: ApiClient) -> None:
    out = await gateway.ok("apply", "--dry-run=server", "-f", "-", stdin=MANIFEST)
    assert "deployment.apps/web created (server dry run)" in out, out
    assert (await api_client.list("Deployment", "default")).items == []
    invalid = await gateway.kubectl("apply", "--dry-run=server", "-f", "-",
                                    stdin=MANIFEST.replace("replicas: 2", "replicas: -1"))
    assert invalid.rc != 0 and "replicas" in invalid.err, invalid  # validated, as a real apply would be
    diff = await gateway.kubectl("diff", "-f", "-", stdin=MANIFEST)
    assert diff.rc == 1 and "+  name: web" in diff.out, diff  # all new
    await gateway.ok("apply", "-f", "-", stdin=MANIFEST)
    before = await api_client.get("Deployment", "web", "default")
    same = await gateway.kubectl("diff", "-f", "-", stdin=MANIFEST)
    assert same.rc == 0 and same.out == "", same
    changed = await gateway.kubectl("diff", "-f", "-", stdin=MANIFEST.replace("replicas: 2", "replicas: 5"))
    assert changed.rc == 1 and "-  replicas: 2" in changed.out and "+  replicas: 5" in changed.out, changed
    for args in (("--server-side",), ()):
        out = await gateway.ok("apply", *args, "--dry-run=server", "-f", "-",
                               stdin=MANIFEST.replace("replicas: 2", "replicas: 4"))
        assert "(server dry run)" in out, out
    out = await gateway.ok("delete", "deployment", "web", "--dry-run=server")
    assert "(server dry run)" in out, out
    after = await api_client.get("Deployment", "web", "default")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"]["replicas"] == 2 and not after["metadata"].get("deletionTimestamp")


STATEFULSET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: db:1}]
"""


async def test_statefulset_scale_and_columns(gateway: Gateway, api_client: ApiClient) -> None:
    await gateway.ok("apply", "-f", "-", stdin=STATEFULSET)
    assert "statefulset.apps/db scaled" in await gateway.ok("scale", "statefulset", "db", "--replicas=3")
    sts = await api_client.get("StatefulSet", "db", "default")
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["podManagementPolicy"] == "OrderedReady"
    table = await gateway.ok("get", "sts")
    assert table.split()[:4] == ["NAME", "READY", "AGE", "db"], table
    refused = await gateway.kubectl("patch", "sts", "db", "--type=merge", "-p", '{"spec":{"serviceName":"x"}}')
    assert refused.rc == 1 and "Forbidden: updates to statefulset spec" in refused.err, refused
