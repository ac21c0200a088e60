"""The tool end to end: real nats-server, real API actor, ``python -m shoal`` as a subprocess."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import yaml

from runtime.client import ApiClient
from tests.cli.conftest import ShoalCli, read_until

APP = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels: {app: web}
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web, tier: front}
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
        image: nginx:1.27
        ports:
        - containerPort: 80
"""


async def test_apply_creates_then_is_unchanged_then_configured(cli: ShoalCli, tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(APP)
    first = await cli("apply", "-f", str(path))
    assert first.rc == 0, first
    assert first.out.splitlines() == ["namespace/shop created", "configmap/settings created",
                                      "deployment.apps/web created"]

    again = await cli("apply", "-f", str(path))
    assert again.rc == 0, again
    assert again.out.splitlines() == ["namespace/shop unchanged", "configmap/settings unchanged",
                                      "deployment.apps/web unchanged"]

    path.write_text(APP.replace("replicas: 2", "replicas: 3"))
    changed = await cli("apply", "-f", str(path))
    assert changed.rc == 0, changed
    assert "deployment.apps/web configured" in changed.out
    assert "configmap/settings unchanged" in changed.out

    got = await cli("get", "deploy", "web", "-n", "shop", "-o", "json")
    assert got.rc == 0, got
    deployment = json.loads(got.out)
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


async def test_apply_from_stdin_continues_past_failures(cli: ShoalCli) -> None:
    manifests = ("kind: ConfigMap\nmetadata: {name: lost, namespace: nowhere}\n---\n"
                 "kind: ConfigMap\nmetadata: {name: kept}\ndata: {a: b}\n")
    result = await cli("apply", "-f", "-", stdin=manifests)
    assert result.rc == 1, result
    assert "configmap/kept created" in result.out
    assert result.err.startswith("Error from server (NotFound): error when applying configmap/lost")
    assert "shoal create namespace nowhere" in result.err
    assert "Traceback" not in result.err


async def test_get_formats_selectors_and_namespaces(cli: ShoalCli, tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(APP)
    assert (await cli("apply", "-f", str(tmp_path))).rc == 0

    table = await cli("get", "deployments", "-n", "shop")
    assert table.rc == 0, table
    assert table.out.split("\n")[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table.out.split("\n")[1].split()[:4] == ["web", "0/2", "0", "0"]

    wide = await cli("get", "deploy", "-n", "shop", "-o", "wide")
    assert wide.out.split("\n")[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert "nginx:1.27" in wide.out and "app=web" in wide.out

    every = await cli("get", "cm", "-A")
    assert every.rc == 0, every
    assert every.out.split("\n")[0].split() == ["NAMESPACE", "NAME", "DATA", "AGE"]
    assert any(line.split()[:2] == ["shop", "settings"] for line in every.out.splitlines())

    as_yaml = await cli("get", "configmaps", "-n", "shop", "-l", "app=web", "-o", "yaml")
    listed = yaml.safe_load(as_yaml.out)
    assert listed["kind"] == "List"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["settings"]

    nothing = await cli("get", "configmaps", "-n", "shop", "-l", "app=db")
    assert nothing.rc == 0 and nothing.out == ""
    assert "No resources found in shop namespace." in nothing.err

    names = await cli("get", "deploy,cm", "-n", "shop", "-o", "name")
    assert names.out.splitlines() == ["deployment.apps/web", "configmap/settings"]

    namespaces = await cli("get", "ns")
    assert [line.split()[0] for line in namespaces.out.splitlines()[1:]] == [
        "default", "kube-node-lease", "kube-system", "shop"]

    by_field = await cli("get", "cm", "-A", "--field-selector", "metadata.namespace=shop", "-o", "name")
    assert by_field.out.splitlines() == ["configmap/settings"]


async def test_get_errors_are_one_helpful_line(cli: ShoalCli, offline_cli: ShoalCli) -> None:
    unknown = await cli("get", "gizmos")
    assert unknown.rc == 1
    assert unknown.err.startswith("error: the server doesn't have a resource type 'gizmos'")
    assert "shoal api-resources" in unknown.err

    missing = await cli("get", "pod", "ghost")
    assert missing.rc == 1
    assert missing.err.strip() == 'Error from server (NotFound): pods "ghost" not found in namespace \'default\''

    usage = await cli("get")
    assert usage.rc == 2

    offline = await offline_cli("get", "pods")
    assert offline.rc == 1
    assert offline.err.startswith(f"error: cannot reach the cluster at {offline_cli.url}")
    assert "shoal up" in offline.err and "SHOAL_SERVER" in offline.err
    assert "Traceback" not in offline.err


async def test_bad_yaml_is_reported_with_file_and_line(cli: ShoalCli, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("kind: ConfigMap\nmetadata:\n  name: x\n data: [\n")
    result = await cli("apply", "-f", str(path))
    assert result.rc == 1
    assert result.err.startswith(f"error: cannot parse {path}: line 4")
    assert "fix the YAML" in result.err and "Traceback" not in result.err
    assert (await cli("get", "cm", "x")).rc == 1  # nothing was applied


async def test_describe_shows_sections_and_events(cli: ShoalCli, client: ApiClient, tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(APP)
    assert (await cli("apply", "-f", str(tmp_path / "app.yaml"))).rc == 0
    await client.create({"apiVersion": "v1", "kind": "Event",
                         "metadata": {"name": "web.1", "namespace": "shop"},
                         "involvedObject": {"kind": "Deployment", "name": "web", "namespace": "shop"},
                         "type": "Normal", "reason": "ScalingReplicaSet", "message": "Scaled up to 2",
                         "count": 1, "source": {"component": "deployment-controller"}})
    await client.create({"apiVersion": "v1", "kind": "Event",
                         "metadata": {"name": "web.2", "namespace": "shop"},
                         "involvedObject": {"kind": "Service", "name": "web", "namespace": "shop"},
                         "type": "Warning", "reason": "NotMine", "message": "another kind"})

    result = await cli("describe", "deployment", "web", "-n", "shop")
    assert result.rc == 0, result
    lines = result.out.splitlines()
    assert lines[0].split() == ["Name:", "web"]
    assert any(line.split() == ["Namespace:", "shop"] for line in lines)
    assert any(line.startswith("Labels:") and "app=web" in line for line in lines)
    assert any("tier=front" in line for line in lines)
    assert any(line.startswith("Replicas:") and "2 desired" in line for line in lines)
    assert "Pod Template:" in result.out and "nginx:1.27" in result.out
    assert "Events:" in result.out
    assert "ScalingReplicaSet" in result.out and "Scaled up to 2" in result.out
    assert "NotMine" not in result.out

    quiet = await cli("describe", "cm/settings", "-n", "shop")
    assert quiet.rc == 0, quiet
    assert "greeting:" in quiet.out and "hello" in quiet.out
    assert quiet.out.rstrip().splitlines()[-1].split() == ["Events:", "<none>"]


async def test_create_namespace_and_delete(cli: ShoalCli, client: ApiClient) -> None:
    created = await cli("create", "namespace", "dev")
    assert created.rc == 0, created
    assert created.out.strip() == "namespace/dev created"
    twice = await cli("create", "ns", "dev")
    assert twice.rc == 1
    assert twice.err.startswith("Error from server (AlreadyExists):")

    await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "dev"}})
    await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "dev"},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    deleted = await cli("delete", "cm", "a", "-n", "dev")
    assert deleted.rc == 0, deleted
    assert deleted.out.strip() == 'configmap "a" deleted'
    gone = await cli("get", "cm", "a", "-n", "dev")
    assert gone.rc == 1 and "NotFound" in gone.err

    pod = await cli("delete", "pod/p", "-n", "dev", "--grace-period", "0", "--cascade=background")
    assert pod.rc == 0, pod
    assert pod.out.strip() == 'pod "p" deleted'

    missing = await cli("delete", "cm", "a", "-n", "dev")
    assert missing.rc == 1 and missing.err.startswith("Error from server (NotFound)")
    assert (await cli("delete", "cm", "a", "-n", "dev", "--ignore-not-found")).rc == 0

    # no namespace controller runs here: the namespace keeps its finalizer, and the wait says so
    stuck = await cli("delete", "namespace", "dev", "--timeout", "1")
    assert stuck.rc == 1
    assert 'namespace "dev" deleted' in stuck.out
    assert "finalizers" in stuck.err and "--wait=false" in stuck.err
    terminating = await cli("get", "ns", "dev")
    assert "Terminating" in terminating.out


async def test_delete_from_file_without_waiting(cli: ShoalCli, tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("kind: ConfigMap\nmetadata: {name: one}\n---\nkind: ConfigMap\nmetadata: {name: two}\n")
    assert (await cli("create", "-f", str(path))).rc == 0
    result = await cli("delete", "-f", str(path), "--wait=false")
    assert result.rc == 0, result
    assert sorted(result.out.splitlines()) == ['configmap "one" deleted', 'configmap "two" deleted']


async def test_get_watch_prints_new_objects_until_interrupted(cli: ShoalCli, client: ApiClient) -> None:
    proc = await cli.start("get", "configmaps", "-w")
    try:
        await read_until(proc.stderr, "No resources found in default namespace.")
        await client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"},
                             "data": {"k": "v"}})
        seen = await read_until(proc.stdout, "watched")
        assert "NAME" in seen.splitlines()[0]
        assert seen.splitlines()[-1].split()[:2] == ["watched", "1"]
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_api_info_and_resources(cli: ShoalCli) -> None:
    info = await cli("api-info")
    assert info.rc == 0, info
    assert f"Shoal cluster at {cli.url}" in info.out and "ready" in info.out
    as_json = json.loads((await cli("cluster-info", "-o", "json")).out)
    assert as_json["ready"] is True and as_json["objects"]["namespaces"] == 3
    resources = await cli("api-resources")
    assert any(line.split()[:2] == ["deployments", "deploy"] for line in resources.out.splitlines())
