"""The workload kinds as a user runs them on one machine: ``shoal up`` with real Podman, driven by the tool.

One ``shoal up`` for the module, started as ``tests/cli/test_up.py`` starts it (a subprocess with its own
``--state-dir``, ``--port`` and ``--gateway``, its output read until "Press Ctrl-C", stopped with SIGINT):
API, scheduler, controller manager (node IPAM, the ``local-path`` storage class of the cloud controller
manager), a Podman kubelet on its bridge pod network, the nftables proxy and cluster DNS. The tests use
only what a user has: the ``shoal`` tool with the environment ``shoal up`` tells to export, and the real
``kubectl`` (when installed) with the kubeconfig it wrote. Manifests are kubernetes.io's, the images
replaced by the local busybox:

- a StatefulSet ``web`` of 2 with its headless Service and a claim template: web-0 then web-1, each claim
  Bound; web-0 deleted comes back with the same claim and finds what its predecessor wrote; another pod
  resolves ``web-0.web.<ns>.svc.cluster.local`` to web-0's address and talks to it there;
- a Job of 3 completions, 2 at a time: Complete, ``3/3``, its pods' logs readable;
- a DaemonSet: its pod on the node, re-created when deleted.

Each test has its own namespace, so any one runs alone (``-k``). On failure the message carries ``shoal
get``/``describe``/``events`` of the namespace and the components' last log lines. Afterwards what the
cluster left in Podman (pods labelled with its cluster id, its pod network), its nftables table and the
kubelet's tmpfs mounts are removed.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from agents.kubelet.podnetwork_nat import table_name as pods_table_name
from agents.kubelet.volumes import unmount_all
from agents.proxy.nftables import table_name
from runtime.nats_server import free_port
from shoal.up import cluster_identity
from tests.e2e.cluster import REPO, podman_env

pytestmark = [
    pytest.mark.slow, pytest.mark.podman,
    pytest.mark.skipif(shutil.which("podman") is None,
                       reason="podman is not installed (apt-get install podman runc busybox-static)"),
    pytest.mark.skipif(shutil.which("busybox") is None,
                       reason="busybox is not installed: needed to build the local test image (busybox-static)"),
]

IMAGE = "localhost/shoal/busybox:latest"
T = TypeVar("T")


@dataclass
class Up:
    """A running ``shoal up`` and what a user takes from its output."""

    proc: subprocess.Popen[bytes]
    state: Path
    output: Path
    env: dict[str, str]
    """The caller's environment without SHOAL_*, plus every ``export X=Y`` ``shoal up`` printed and the
    KUBECONFIG it merged its context into."""
    node: str = ""
    cluster_uid: str = ""

    def run(self, *argv: str, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=self.env, cwd=REPO,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"`{' '.join(argv)}` did not finish within {timeout}s\n{self.tails()}") from None

    def shoal(self, *args: str, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, "-m", "shoal", *args, timeout=timeout, stdin=stdin)

    def must(self, *args: str, timeout: float = 60, stdin: str | None = None, ns: str | None = None) -> str:
        done = self.shoal(*args, timeout=timeout, stdin=stdin)
        assert done.returncode == 0, (f"`shoal {' '.join(args)}` exited {done.returncode}\n--- stdout\n{done.stdout}"
                                      f"--- stderr\n{done.stderr}{self.diagnose(ns) if ns else self.tails()}")
        return done.stdout

    def json(self, *args: str, ns: str | None = None) -> Any:
        return json.loads(self.must("get", *args, "-o", "json", ns=ns))

    def diagnose(self, ns: str) -> str:
        """What a user looks at when something does not come up: objects, descriptions, events, logs."""
        parts = []
        for args in (("get", "all", "-n", ns, "-o", "wide"), ("get", "pvc", "-n", ns),
                     ("describe", "pods", "-n", ns), ("events", "-n", ns)):
            done = self.shoal(*args, timeout=30)
            parts.append(f"--- shoal {' '.join(args)} (exit {done.returncode})\n{done.stdout}{done.stderr}")
        return "\n" + "\n".join(parts) + self.tails()

    def tails(self, lines: int = 12) -> str:
        out = []
        for name in ("controllers", "scheduler", "kubelet", "cloud", "dns"):
            try:
                text = (self.state / "logs" / f"{name}.log").read_text(errors="replace")
            except OSError:
                continue
            out.append(f"--- {name}.log (last {lines} lines)\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n" + "\n".join(out)


def eventually(probe: Callable[[], T | None], *, timeout: float, what: str, up: Up, ns: str | None = None,
               interval: float = 0.5) -> T:
    """Until ``probe()`` returns something truthy; on time-out fail saying ``what``, with diagnostics."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}"
                                 f"{up.diagnose(ns) if ns else up.tails()}")
        time.sleep(interval)


def _read_until(output: Path, proc: subprocess.Popen[bytes], needle: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        seen = output.read_text(errors="replace")
        if needle in seen:
            return seen
        if proc.poll() is not None:
            raise AssertionError(f"shoal up exited {proc.returncode} before {needle!r}:\n{seen}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {needle!r} from shoal up within {timeout}s:\n{seen}")
        time.sleep(0.1)


def _exports(seen: str) -> dict[str, str]:
    return dict(re.findall(r"^\s*export (\w+)=(\S+)\s*$", seen, flags=re.MULTILINE))


def _remove_leftovers(up: Up) -> None:
    """What the stopped cluster left on this machine: its pods in Podman (by cluster id, never another
    cluster's), its pod network, its nftables table, the kubelet's tmpfs volume mounts."""
    env = podman_env(up.state / "kubelet")
    name, _ = cluster_identity(up.state)

    def podman(*args: str) -> list[str]:
        done = subprocess.run(["podman", *args], capture_output=True, text=True, env=env, check=False, timeout=120)
        return done.stdout.split()

    def remove_each(command: list[str], refs: list[str]) -> None:  # one podman per object, all at once
        procs = [subprocess.Popen(["podman", *command, ref], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=env) for ref in refs]
        for proc in procs:
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    if up.cluster_uid:
        label = f"label=io.shoal.cluster={up.cluster_uid}"
        remove_each(["pod", "rm", "-f", "-t", "0"], podman("pod", "ls", "-q", "--filter", label))
        remove_each(["rm", "-f", "-t", "0"], podman("ps", "-aq", "--filter", label))
    networks = podman("network", "ls", "-q", "--filter", f"label=io.shoal.cluster={name}")
    if networks:
        podman("network", "rm", "-f", *networks)
    if shutil.which("nft"):
        # the proxy removes its table when it stops (this is for a proxy that was killed); the kubelet keeps its
        # pods' no-NAT table when it stops with pods left (for the next kubelet to adopt them): gone with them
        for table in (table_name(name), pods_table_name(name, up.node)):
            subprocess.run(["nft", f"table ip {table} {{}}; delete table ip {table}"], capture_output=True,
                           check=False, timeout=30)
    unmount_all(up.state)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    root = tmp_path_factory.mktemp("workloads")
    state, output = root / "state", root / "up.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    env.update(PYTHONUNBUFFERED="1", KUBECONFIG=str(root / "kubeconfig"))
    argv = [sys.executable, "-m", "shoal", "up", "--state-dir", str(state), "--port", str(free_port()),
            "--gateway", f"127.0.0.1:{free_port()}"]
    started = time.monotonic()
    with output.open("wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=REPO)
    cluster = Up(proc, state, output, env)
    try:
        seen = _read_until(output, proc, "Press Ctrl-C", timeout=120)
        cluster.env.update(_exports(seen))
        assert "SHOAL_SERVER" in cluster.env, seen
        nodes = eventually(lambda: cluster.must("get", "nodes", "-o", "name").split(), timeout=60,
                           what="the kubelet to register its node", up=cluster)
        cluster.node = nodes[0].split("/")[-1]
        cluster.cluster_uid = cluster.json("namespace", "kube-system")["metadata"]["uid"]
        cluster.must("wait", "--for=condition=Ready", f"node/{cluster.node}", "--timeout=120s", timeout=150)
        print(f"\nshoal up: node {cluster.node} Ready after {time.monotonic() - started:.1f}s")
        yield cluster
    finally:
        stopping = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)  # a second Ctrl-C kills what is left at once
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        print(f"\nshoal up: stopped (exit {proc.returncode}) in {time.monotonic() - stopping:.1f}s")
        removing = time.monotonic()
        _remove_leftovers(cluster)
        print(f"leftovers removed in {time.monotonic() - removing:.1f}s")


@pytest.fixture
def ns(up: Up) -> str:
    name = f"wl-{uuid.uuid4().hex[:6]}"
    up.must("create", "namespace", name)
    return name


def apply(up: Up, ns: str, manifest: str) -> str:
    return up.must("apply", "-n", ns, "-f", "-", stdin=manifest, ns=ns)


def pods(up: Up, ns: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ("pods", "-n", ns, *(("-l", selector) if selector else ()))
    return list(up.json(*args, ns=ns)["items"])


def get_or_none(up: Up, ns: str, kind: str, name: str) -> dict[str, Any] | None:
    done = up.shoal("get", kind, name, "-n", ns, "-o", "json", timeout=30)
    if done.returncode != 0:
        assert "NotFound" in done.stderr or "not found" in done.stderr, done.stderr
        return None
    return dict(json.loads(done.stdout))


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def running_ready(pod: dict[str, Any] | None) -> bool:
    ready = condition(pod, "Ready")
    return bool(pod and pod["status"].get("phase") == "Running" and ready and ready["status"] == "True"
                and not pod["metadata"].get("deletionTimestamp"))


def exec_in(up: Up, ns: str, pod: str, *command: str) -> str:
    return up.must("exec", "-n", ns, pod, "--", *command, ns=ns)


# -- 1. StatefulSet ------------------------------------------------------------------------------------
STATEFULSET = f"""apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    app: nginx
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector:
    app: nginx
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: nginx
  serviceName: "web"
  replicas: 2
  podManagementPolicy: OrderedReady
  template:
    metadata:
      labels:
        app: nginx
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: {IMAGE}
        command: ["sh", "-c", "cd /usr/share/nginx/html && [ -f index.html ] || hostname > index.html;
          echo $POD_UID >> boots; touch /tmp/ready; exec httpd -f -p 80 -h /usr/share/nginx/html"]
        env:
        - name: POD_UID
          valueFrom:
            fieldRef:
              fieldPath: metadata.uid
        ports:
        - containerPort: 80
          name: web
        readinessProbe:
          exec:
            command: ["test", "-f", "/tmp/ready"]
          periodSeconds: 1
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ "ReadWriteOnce" ]
      storageClassName: "local-path"
      resources:
        requests:
          storage: 1Gi
"""

CLIENT = f"""apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: client
    image: {IMAGE}
    command: ["sleep", "3600"]
"""


def test_statefulset_pods_keep_their_claims_data_and_dns_name(up: Up, ns: str) -> None:
    started = time.monotonic()
    assert apply(up, ns, STATEFULSET).split() == ["service/web", "created", "statefulset.apps/web", "created"]
    apply(up, ns, CLIENT)

    def both_ready() -> list[dict[str, Any]] | None:
        found = {p["metadata"]["name"]: p for p in pods(up, ns, "app=nginx")}
        if "web-1" in found:  # OrderedReady: web-1 is created only once web-0 is Running and Ready
            web0 = condition(found.get("web-0"), "Ready")
            assert web0 is not None and web0["status"] == "True", f"web-1 exists before web-0 is Ready: {found}"
        if set(found) == {"web-0", "web-1"} and all(running_ready(p) for p in found.values()):
            return [found["web-0"], found["web-1"]]
        assert set(found) <= {"web-0", "web-1"}, f"unexpected pods: {sorted(found)}"
        return None

    web0, web1 = eventually(both_ready, timeout=120, what="web-0 then web-1 Running and Ready", up=up, ns=ns)
    ready0 = condition(web0, "Ready")
    assert ready0 is not None
    assert web1["metadata"]["creationTimestamp"][:19] >= ready0["lastTransitionTime"][:19], (web1["metadata"], ready0)
    _, cidr = cluster_identity(up.state)  # on the node's bridge pod network, from this cluster's range
    assert all(ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(cidr) for p in (web0, web1))

    claims = {c["metadata"]["name"]: c for c in up.json("pvc", "-n", ns, ns=ns)["items"]}
    assert sorted(claims) == ["www-web-0", "www-web-1"]
    for claim in claims.values():
        assert claim["status"]["phase"] == "Bound", claim
        assert claim["spec"]["storageClassName"] == "local-path"
    for pod in (web0, web1):
        claim_names = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
                       if "persistentVolumeClaim" in v]
        assert claim_names == [f"www-{pod['metadata']['name']}"]
        name = pod["metadata"]["name"]
        assert exec_in(up, ns, name, "cat", "/usr/share/nginx/html/index.html").strip() == name
    print(f"\nstatefulset: web-0, web-1 Ready, claims Bound after {time.monotonic() - started:.1f}s")

    # web-0 deleted comes back under its name with its claim, and finds what its predecessor wrote
    old_uid, volume = web0["metadata"]["uid"], claims["www-web-0"]["spec"]["volumeName"]
    deleting = time.monotonic()
    assert up.must("delete", "pod", "web-0", "-n", ns, ns=ns).strip() == 'pod "web-0" deleted'

    def replaced() -> dict[str, Any] | None:
        pod = get_or_none(up, ns, "pod", "web-0")
        return pod if pod and pod["metadata"]["uid"] != old_uid and running_ready(pod) else None

    new0 = eventually(replaced, timeout=90, what="web-0 re-created, Running and Ready", up=up, ns=ns)
    print(f"statefulset: web-0 back in {time.monotonic() - deleting:.1f}s")
    assert [v["persistentVolumeClaim"]["claimName"] for v in new0["spec"]["volumes"]
            if "persistentVolumeClaim" in v] == ["www-web-0"]
    assert up.json("pvc", "www-web-0", "-n", ns, ns=ns)["spec"]["volumeName"] == volume
    assert exec_in(up, ns, "web-0", "cat", "/usr/share/nginx/html/index.html").strip() == "web-0"
    boots = exec_in(up, ns, "web-0", "cat", "/usr/share/nginx/html/boots").split()
    assert boots == [old_uid, new0["metadata"]["uid"]]  # the predecessor's line, then its own

    # from another pod: web-0's stable name resolves to its current address, and it answers there
    eventually(lambda: running_ready(get_or_none(up, ns, "pod", "client")), timeout=60, what="the client pod",
               up=up, ns=ns)
    ip = new0["status"]["podIP"]
    fqdn = f"web-0.web.{ns}.svc.cluster.local"

    def resolves() -> bool:
        done = up.shoal("exec", "-n", ns, "client", "--", "nslookup", fqdn, timeout=30)
        answers = re.findall(r"Address:\s*(\S+)", done.stdout.split(f"Name:\t{fqdn}", 1)[-1])
        return done.returncode == 0 and answers == [ip]

    eventually(resolves, timeout=30, interval=1, what=f"{fqdn} to resolve to web-0's address {ip}", up=up, ns=ns)
    answer = exec_in(up, ns, "client", "sh", "-c", f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 5 {fqdn} 80')
    assert answer.startswith("HTTP/1.") and answer.rstrip().endswith("web-0"), answer
    if shutil.which("kubectl"):  # the real kubectl sees the same through the gateway
        done = up.run("kubectl", "get", "statefulset", "web", "-n", ns, "-o",
                      "jsonpath={.status.readyReplicas}/{.spec.replicas}")
        assert done.stdout == "2/2", done.stderr
        done = up.run("kubectl", "get", "pod", "web-0", "-n", ns, "-o", "jsonpath={.status.podIP}")
        assert done.stdout == ip, done.stderr
    print(f"statefulset: whole test {time.monotonic() - started:.1f}s")


# -- 2. Job ------------------------------------------------------------------------------------------
JOB = f"""apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      containers:
      - name: pi
        image: {IMAGE}
        command: ["sh", "-c", "echo computed by $(hostname); sleep 2"]
      restartPolicy: Never
  backoffLimit: 4
"""


def test_job_with_completions_runs_to_complete(up: Up, ns: str) -> None:
    started = time.monotonic()
    assert apply(up, ns, JOB).strip() == "job.batch/pi created"
    done = up.shoal("wait", "-n", ns, "--for=condition=complete", "job/pi", "--timeout=120s", timeout=150)
    assert done.returncode == 0, f"{done.stdout}{done.stderr}{up.diagnose(ns)}"
    assert done.stdout.strip() == "job.batch/pi condition met"
    print(f"\njob: Complete after {time.monotonic() - started:.1f}s")

    table = up.must("get", "jobs", "-n", ns, ns=ns).splitlines()
    header, row = table[0].split(), table[1].split()
    assert dict(zip(header, row, strict=False))["COMPLETIONS"] == "3/3", table
    job = up.json("job", "pi", "-n", ns, ns=ns)
    assert job["status"]["succeeded"] == 3 and not job["status"].get("failed"), job["status"]

    ran = pods(up, ns, "job-name=pi")
    assert len(ran) == 3, [p["metadata"]["name"] for p in ran]
    spans = []
    for pod in ran:
        name = pod["metadata"]["name"]
        assert pod["status"]["phase"] == "Succeeded", pod["status"]
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        spans.append((terminated["startedAt"], terminated["finishedAt"]))
        assert up.must("logs", "-n", ns, name, ns=ns).strip() == f"computed by {name}"
    for start, _ in spans:  # parallelism 2: never three at once
        assert sum(1 for s, f in spans if s <= start < f) <= 2, spans
    if shutil.which("kubectl"):
        logs = up.run("kubectl", "logs", "-n", ns, "-l", "job-name=pi")
        assert sorted(logs.stdout.split("\n")[:-1]) == sorted(f"computed by {p['metadata']['name']}" for p in ran), \
            logs.stderr


# -- 3. DaemonSet ------------------------------------------------------------------------------------
DAEMONSET = f"""apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: fluentd-elasticsearch
  labels:
    k8s-app: fluentd-logging
spec:
  selector:
    matchLabels:
      name: fluentd-elasticsearch
  template:
    metadata:
      labels:
        name: fluentd-elasticsearch
    spec:
      tolerations:
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      - key: node-role.kubernetes.io/master
        operator: Exists
        effect: NoSchedule
      containers:
      - name: fluentd-elasticsearch
        image: {IMAGE}
        command: ["sleep", "3600"]
        resources:
          limits:
            memory: 200Mi
          requests:
            cpu: 100m
            memory: 200Mi
      terminationGracePeriodSeconds: 1
"""


def test_daemonset_runs_one_pod_on_the_node_and_replaces_it(up: Up, ns: str) -> None:
    started = time.monotonic()
    selector = "name=fluentd-elasticsearch"
    assert apply(up, ns, DAEMONSET).strip() == "daemonset.apps/fluentd-elasticsearch created"

    def one_running(not_named: str = "") -> dict[str, Any] | None:
        live = [p for p in pods(up, ns, selector) if not p["metadata"].get("deletionTimestamp")]
        assert len(live) <= 1, f"more than one daemon pod on one node: {[p['metadata']['name'] for p in live]}"
        if live and running_ready(live[0]) and live[0]["metadata"]["name"] != not_named:
            return live[0]
        return None

    first = eventually(one_running, timeout=90, what="the daemon pod Running", up=up, ns=ns)
    assert first["spec"]["nodeName"] == up.node
    ds = up.json("daemonset", "fluentd-elasticsearch", "-n", ns, ns=ns)["status"]
    assert (ds["desiredNumberScheduled"], ds["currentNumberScheduled"]) == (1, 1), ds
    print(f"\ndaemonset: pod Running after {time.monotonic() - started:.1f}s")

    deleting = time.monotonic()
    name = first["metadata"]["name"]
    assert up.must("delete", "pod", name, "-n", ns, ns=ns).strip() == f'pod "{name}" deleted'
    second = eventually(lambda: one_running(not_named=name), timeout=90, what="the daemon pod re-created",
                        up=up, ns=ns)
    assert second["spec"]["nodeName"] == up.node
    assert second["metadata"]["uid"] != first["metadata"]["uid"]
    print(f"daemonset: re-created in {time.monotonic() - deleting:.1f}s")
    if shutil.which("kubectl"):
        done = up.run("kubectl", "rollout", "status", "daemonset/fluentd-elasticsearch", "-n", ns, "--timeout=60s",
                      timeout=90)
        assert done.returncode == 0 and "successfully rolled out" in done.stdout, f"{done.stdout}{done.stderr}"
