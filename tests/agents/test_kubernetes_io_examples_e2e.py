"""kubernetes.io's task manifests, written by us in their shape with only the image changed to the Debian
images of ``deploy/images/build.sh`` (nginx, redis, a shell), run on real Podman; each test asserts what the
containers observe (their logs, or a command run in them as ``kubectl exec`` would).

Needs the images: built on first use (~1 minute each, from the Debian mirror); skipped with the reason
when they cannot be built (no mirror, no mmdebstrap)."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from actors.api.server import ApiActor
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService
from protocol.objects import Obj
from runtime.client import ApiClient
from tests.agents import kubelet_helpers
from tests.agents.kubelet_helpers import eventually, phase, pod_where
from tests.agents.test_kubelet_volumes_e2e import logs_with, node, start_kubelet, unmount_volumes
from tests.conftest import ActorRunner

pytestmark = [pytest.mark.podman, pytest.mark.slow]
__all__ = ["node", "unmount_volumes"]  # fixtures

NGINX, REDIS, SHELL = "localhost/shoal/nginx:bookworm", "localhost/shoal/redis:bookworm", \
    "localhost/shoal/debian:bookworm"


@pytest.fixture(scope="session")
def debian_images(podman_service: PodmanService) -> list[str]:
    return kubelet_helpers.debian_images(podman_service.env, "nginx", "redis", "debian")


@pytest_asyncio.fixture
async def runtime(podman_service: PodmanService) -> AsyncIterator[PodmanRuntime]:
    rt = PodmanRuntime(podman_service.socket_url)
    try:
        yield rt
    finally:
        await rt.close()


async def apply(client: ApiClient, text: str, node: str) -> list[Obj]:
    """Create every document of ``text`` (pods bound to ``node``, as the scheduler would)."""
    out = []
    for doc in yaml.safe_load_all(text):
        created = await client.create(doc)
        if doc["kind"] == "Pod":
            created = await client.bind(created["metadata"]["name"], created["metadata"]["namespace"], node)
        out.append(created)
    return out


async def running(client: ApiClient, name: str) -> Obj:
    pod: Obj = await eventually(lambda: pod_where(client, name, lambda p: phase(p) == "Running" and all(
        c.get("ready") for c in p["status"].get("containerStatuses") or [])), timeout=90, what=f"{name} running")
    return pod


async def kexec(runtime: PodmanRuntime, pod: Obj, container: str, *cmd: str) -> str:
    """``kubectl exec <pod> -c <container> -- cmd``: its output (must exit 0)."""
    [cid] = [c["containerID"].split("://", 1)[1] for c in pod["status"]["containerStatuses"] if c["name"] == container]
    for _ in range(50):
        code, output = await runtime.exec_in_container(cid, list(cmd), 10)
        if code == 0:
            return output
        await asyncio.sleep(0.2)  # a server still starting
    raise AssertionError(f"{cmd} exited {code}: {output}")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- Configure a Pod to Use a ConfigMap ----------------------------------------------------------------
CONFIGMAP_TASK = f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: special-config
  namespace: default
data:
  SPECIAL_LEVEL: very
  SPECIAL_TYPE: charm
---
apiVersion: v1
kind: Pod
metadata:
  name: dapi-test-pod
spec:
  containers:
    - name: test-container
      image: {SHELL}
      command: [ "/bin/sh", "-c", "echo $(SPECIAL_LEVEL_KEY) $(SPECIAL_TYPE_KEY); ls /etc/config/; env; sleep 3600" ]
      env:
        - name: SPECIAL_LEVEL_KEY
          valueFrom:
            configMapKeyRef:
              name: special-config
              key: SPECIAL_LEVEL
        - name: SPECIAL_TYPE_KEY
          valueFrom:
            configMapKeyRef:
              name: special-config
              key: SPECIAL_TYPE
      envFrom:
      - configMapRef:
          name: special-config
      volumeMounts:
      - name: config-volume
        mountPath: /etc/config
  volumes:
    - name: config-volume
      configMap:
        name: special-config
  restartPolicy: Never
"""


async def test_configmap_task(runner: ActorRunner, api: ApiActor, client: ApiClient, podman_service: PodmanService,
                              node: str, tmp_path: Path, debian_images: list[str]) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    await apply(client, CONFIGMAP_TASK, node)
    lines = await logs_with(client, "dapi-test-pod", "test-container", "SPECIAL_TYPE=")
    assert "very charm" in lines
    assert "SPECIAL_LEVEL" in lines and "SPECIAL_TYPE" in lines  # ls /etc/config
    assert "SPECIAL_LEVEL=very" in lines and "SPECIAL_TYPE=charm" in lines


# -- Distribute Credentials Securely Using Secrets; Configure a Pod to Use a Projected Volume ---------------
SECRET_TASK = f"""
apiVersion: v1
kind: Secret
metadata:
  name: test-secret
data:
  username: {b64("my-app")}
  password: {b64("39528$vdg7Jb")}
---
apiVersion: v1
kind: Pod
metadata:
  name: secret-test-pod
spec:
  containers:
    - name: test-container
      image: {NGINX}
      env:
      - name: SECRET_USERNAME
        valueFrom:
          secretKeyRef:
            name: test-secret
            key: username
      volumeMounts:
        - name: secret-volume
          mountPath: /etc/secret-volume
          readOnly: true
        - name: all-in-one
          mountPath: "/projected-volume"
          readOnly: true
  volumes:
    - name: secret-volume
      secret:
        secretName: test-secret
    - name: all-in-one
      projected:
        sources:
        - secret:
            name: test-secret
            items:
            - key: username
              path: user
        - downwardAPI:
            items:
              - path: "labels"
                fieldRef:
                  fieldPath: metadata.labels
"""


async def test_secret_and_projected_tasks(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                          podman_service: PodmanService, node: str, tmp_path: Path,
                                          debian_images: list[str], runtime: PodmanRuntime) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    await apply(client, SECRET_TASK, node)
    pod = await running(client, "secret-test-pod")
    assert (await kexec(runtime, pod, "test-container", "cat", "/etc/secret-volume/password")) == "39528$vdg7Jb"
    assert (await kexec(runtime, pod, "test-container", "sh", "-c", "echo $SECRET_USERNAME")).strip() == "my-app"
    assert (await kexec(runtime, pod, "test-container", "cat", "/projected-volume/user")) == "my-app"
    assert "Welcome to nginx" in await kexec(runtime, pod, "test-container", "curl", "-s", "http://localhost/")


# -- Configure Pod Initialization (an init container fills the web root) -----------------------------------
INIT_TASK = f"""
apiVersion: v1
kind: Pod
metadata:
  name: init-demo
spec:
  containers:
  - name: nginx
    image: {NGINX}
    ports:
    - containerPort: 80
    volumeMounts:
    - name: workdir
      mountPath: /usr/share/nginx/html
  initContainers:
  - name: install
    image: {SHELL}
    command:
    - sh
    - -c
    - echo '<h1>made by the init container</h1>' > /work-dir/index.html
    volumeMounts:
    - name: workdir
      mountPath: "/work-dir"
  dnsPolicy: Default
  volumes:
  - name: workdir
    emptyDir: {{}}
"""


async def test_init_container_task(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                   podman_service: PodmanService, node: str, tmp_path: Path,
                                   debian_images: list[str], runtime: PodmanRuntime) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    await apply(client, INIT_TASK, node)
    pod = await running(client, "init-demo")
    page = await kexec(runtime, pod, "nginx", "curl", "-s", "http://localhost/")
    assert "made by the init container" in page


# -- Configuring Redis using a ConfigMap; Configure a Pod to Use a Volume for Storage ------------------------
REDIS_TASK = f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: example-redis-config
data:
  redis-config: |
    maxmemory 2mb
    maxmemory-policy allkeys-lru
---
apiVersion: v1
kind: Pod
metadata:
  name: redis
spec:
  containers:
  - name: redis
    image: {REDIS}
    command:
      - redis-server
      - "/redis-master/redis.conf"
    env:
    - name: MASTER
      value: "true"
    ports:
    - containerPort: 6379
    resources:
      limits:
        cpu: "0.1"
    volumeMounts:
    - mountPath: /redis-master-data
      name: data
    - mountPath: /redis-master
      name: config
  volumes:
    - name: data
      emptyDir: {{}}
    - name: config
      configMap:
        name: example-redis-config
        items:
        - key: redis-config
          path: redis.conf
"""


async def test_redis_configmap_task(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                    podman_service: PodmanService, node: str, tmp_path: Path,
                                    debian_images: list[str], runtime: PodmanRuntime) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    await apply(client, REDIS_TASK, node)
    pod = await running(client, "redis")
    got = await kexec(runtime, pod, "redis", "redis-cli", "CONFIG", "GET", "maxmemory")
    assert got.split() == ["maxmemory", "2097152"]
    policy = await kexec(runtime, pod, "redis", "redis-cli", "CONFIG", "GET", "maxmemory-policy")
    assert policy.split() == ["maxmemory-policy", "allkeys-lru"]
    await kexec(runtime, pod, "redis", "sh", "-c", "echo Hello > /redis-master-data/test-file")
    assert (await kexec(runtime, pod, "redis", "cat", "/redis-master-data/test-file")).strip() == "Hello"


# -- Configure a Security Context for a Pod or Container ---------------------------------------------------
SECURITY_TASK = f"""
apiVersion: v1
kind: Pod
metadata:
  name: security-context-demo
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2000
  volumes:
  - name: sec-ctx-vol
    emptyDir: {{}}
  containers:
  - name: sec-ctx-demo
    image: {SHELL}
    command: [ "sh", "-c", "sleep 1h" ]
    volumeMounts:
    - name: sec-ctx-vol
      mountPath: /data/demo
    securityContext:
      allowPrivilegeEscalation: false
"""


async def test_security_context_task(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                     podman_service: PodmanService, node: str, tmp_path: Path,
                                     debian_images: list[str], runtime: PodmanRuntime) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    await apply(client, SECURITY_TASK, node)
    pod = await running(client, "security-context-demo")
    ident = (await kexec(runtime, pod, "sec-ctx-demo", "id")).strip()  # Podman names the ids: uid=1000(1000)
    assert re.fullmatch(r"uid=1000(\(1000\))? gid=3000(\(3000\))? groups=3000(\(3000\))?,2000", ident), ident
    assert (await kexec(runtime, pod, "sec-ctx-demo", "stat", "-c", "%g", "/data/demo")).strip() == "2000"
    await kexec(runtime, pod, "sec-ctx-demo", "sh", "-c", "echo hello > /data/demo/testfile")
    owner = await kexec(runtime, pod, "sec-ctx-demo", "stat", "-c", "%u %g", "/data/demo/testfile")
    assert owner.split() == ["1000", "2000"]  # the setgid directory gives new files the fsGroup
    assert (await kexec(runtime, pod, "sec-ctx-demo", "sh", "-c", "grep NoNewPrivs /proc/1/status")).split() == [
        "NoNewPrivs:", "1"]


# -- Share Process Namespace between Containers in a Pod; Attach Handlers to Container Lifecycle Events ------
SHARE_TASK = f"""
apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  shareProcessNamespace: true
  containers:
  - name: nginx
    image: {NGINX}
    lifecycle:
      postStart:
        exec:
          command: ["/bin/sh", "-c", "echo Hello from the postStart handler > /usr/share/message"]
      preStop:
        exec:
          command: ["/bin/sh","-c","nginx -s quit; while pgrep nginx; do sleep 1; done"]
  - name: shell
    image: {SHELL}
    securityContext:
      capabilities:
        add:
        - SYS_PTRACE
    stdin: true
    tty: true
"""


async def test_shared_process_namespace_and_lifecycle_tasks(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                            podman_service: PodmanService, node: str,
                                                            tmp_path: Path, debian_images: list[str],
                                                            runtime: PodmanRuntime) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    await apply(client, SHARE_TASK, node)
    pod = await running(client, "nginx")
    processes = await kexec(runtime, pod, "shell", "ps", "ax")
    assert "nginx: master process" in processes and "/pause" not in processes
    assert (await kexec(runtime, pod, "nginx", "cat", "/usr/share/message")).strip() == \
        "Hello from the postStart handler"


# -- Adding entries to Pod /etc/hosts with HostAliases; Define a Command and Arguments --------------------
HOSTS_TASK = f"""
apiVersion: v1
kind: Pod
metadata:
  name: hostaliases-pod
spec:
  restartPolicy: Never
  hostAliases:
  - ip: "198.51.100.1"
    hostnames:
    - "foo.local"
    - "bar.local"
  - ip: "198.51.100.2"
    hostnames:
    - "foo.remote"
    - "bar.remote"
  containers:
  - name: cat-hosts
    image: {SHELL}
    command:
    - cat
    args:
    - "/etc/hosts"
---
apiVersion: v1
kind: Pod
metadata:
  name: command-demo
  labels:
    purpose: demonstrate-command
spec:
  containers:
  - name: command-demo-container
    image: {SHELL}
    env:
    - name: MESSAGE
      value: "hello world"
    command: ["/bin/echo"]
    args: ["$(MESSAGE)", "from", "$(HOSTNAME)"]
  restartPolicy: OnFailure
"""


async def test_host_aliases_and_command_tasks(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                              podman_service: PodmanService, node: str, tmp_path: Path,
                                              debian_images: list[str]) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    await apply(client, HOSTS_TASK, node)
    hosts = [" ".join(line.split()) for line in await logs_with(client, "hostaliases-pod", "cat-hosts", "foo.remote")]
    assert "198.51.100.1 foo.local" in hosts and "198.51.100.1 bar.local" in hosts
    assert "198.51.100.2 foo.remote" in hosts
    assert any("hostaliases-pod" in line.split()[1:] for line in hosts), "\n".join(hosts)  # its own name
    assert "hello world from $(HOSTNAME)" in await logs_with(client, "command-demo", "command-demo-container",
                                                             "hello world")  # HOSTNAME is not a pod variable


# -- Determine the Reason for Pod Failure ------------------------------------------------------------------
TERMINATION_TASK = f"""
apiVersion: v1
kind: Pod
metadata:
  name: termination-demo
spec:
  restartPolicy: Never
  containers:
  - name: termination-demo-container
    image: {SHELL}
    command: ["/bin/sh"]
    args: ["-c", "sleep 1 && echo Sleep expired > /dev/termination-log"]
"""


async def test_termination_message_task(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                        podman_service: PodmanService, node: str, tmp_path: Path,
                                        debian_images: list[str]) -> None:
    await start_kubelet(runner, podman_service, node, tmp_path)
    await apply(client, TERMINATION_TASK, node)
    pod: Any = await eventually(lambda: pod_where(client, "termination-demo", lambda p: phase(p) == "Succeeded"),
                                timeout=90, what="termination-demo Succeeded")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["message"] == "Sleep expired\n" and terminated["reason"] == "Completed"
