"""A pod running the official Python client with ``config.load_incluster_config()`` reaches the API: the
``kubernetes`` Service kept by a gateway that listens on the node's bridge address (``--advertise-node``, as
``shoal up`` runs it), its cluster IP DNAT'ed by the proxy's
nftables table to the gateway on the node's bridge address, ``KUBERNETES_SERVICE_HOST``/``PORT`` from the
kubelet, and a ServiceAccount token Secret (with the cluster CA) mounted where the client looks.

The image is Debian's ``python3-kubernetes`` made with mmdebstrap (``deploy/images/build.sh python-k8s``,
built on first use); the test is skipped, with the reason, when it cannot be built. Until projected
``kube-api-access`` volumes exist, the token Secret is mounted by hand at
``/var/run/secrets/kubernetes.io/serviceaccount``.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from actors.gateway.server import GatewayActor, GatewaySettings
from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.podman_runtime import PodmanRuntime
from agents.kubelet.podman_service import PodmanService
from agents.kubelet.podnetwork import network_name
from agents.kubelet.volumes import unmount_all
from runtime.client import ApiClient
from runtime.host_subnets import free_block
from runtime.nats_server import free_port
from tests.agents.conftest import podman_service  # noqa: F401  (the session's Podman service)
from tests.agents.kubelet_helpers import debian_images
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually, start_manager
from tests.gateway.conftest import Gateway

pytestmark = [pytest.mark.podman, pytest.mark.slow]
IMAGE = "localhost/shoal/python-k8s:bookworm"  # deploy/images/build.sh python-k8s
CLUSTER = "h15ic"
SCRIPT = """
import json, time
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_incluster_config()
api = client.CoreV1Api()
refused = False
for attempt in range(240):  # the gateway binds the bridge address once the bridge exists (with this first pod)
    try:
        pods = api.list_namespaced_pod("default").items
        break
    except ApiException as exc:  # as in Kubernetes: a service account reads nothing until a binding allows it
        if exc.status == 403 and not refused:
            print("refused:", exc.status, json.loads(exc.body)["message"], flush=True)
            refused = True
        time.sleep(0.5)
    except Exception as exc:
        print("waiting:", type(exc).__name__, flush=True)
        time.sleep(1)
print("pods:", sorted(p.metadata.name for p in pods))
print("svc:", api.read_namespaced_service("kubernetes", "default").spec.cluster_ip)
"""


@pytest_asyncio.fixture
async def node(podman_service: PodmanService, runner: ActorRunner) -> AsyncIterator[tuple[str, str]]:  # noqa: F811
    debian_images(podman_service.env, "python-k8s")
    name = f"ic-{uuid.uuid4().hex[:8]}"
    runtime = PodmanRuntime(podman_service.socket_url)
    try:
        yield name, free_block("198.18.64.0/18", 24)  # a /24 no host route overlaps
    finally:
        await runner.stop_all()
        for sandbox in await runtime.list_sandboxes(name):
            await runtime.remove_sandbox(sandbox.id)
        for c in await runtime.list_containers(name):
            await runtime.remove_container(c.id)
        await runtime.remove_network(network_name(CLUSTER, name))
        await runtime.close()


async def test_a_pod_reaches_the_api_with_load_incluster_config(
        gateway: Gateway, api_client: ApiClient, runner: ActorRunner, podman_service: PodmanService,  # noqa: F811
        node: tuple[str, str], tmp_path: Path) -> None:
    from agents.proxy.agent import ProxyAgent
    from agents.proxy.nftables import NftablesDataPath, delete_table, nft_available

    if not nft_available():
        pytest.skip("nft is not usable here")
    name, cidr = node
    bridge = cidr.rsplit(".", 1)[0] + ".1"  # the node's address on its pod bridge: pods reach the gateway there
    table = f"shoal-test-{uuid.uuid4().hex[:10]}"
    try:
        await start_manager(runner, ["nodeipam"], cluster_cidr=cidr)
        config = KubeletConfig(node_name=name, state_dir=tmp_path / "kubelet", pod_network="bridge", pod_cidr=None,
                               cluster_name=CLUSTER, relist_interval=0.5, node_status_interval=1.0)
        kubelet = KubeletAgent(config, runtime=PodmanRuntime(podman_service.socket_url), runtime_version="podman://t")
        await runner.start(kubelet, lambda: kubelet.started.is_set())
        proxy = ProxyAgent(name, node_addresses=["0.0.0.0"],
                           datapath=NftablesDataPath(table, service_cidr="198.19.0.0/16"))
        await runner.start(proxy, ready=lambda: proxy.synced.is_set())
        # as shoal up runs it: on loopback, and on the node's bridge address once the pod network exists
        creds = gateway.credentials
        inside = GatewayActor(GatewaySettings(host="127.0.0.1", port=free_port(), cert_file=creds.cert,
                                              key_file=creds.key, admin_token_file=creds.token_file,
                                              advertise_node=name))
        await runner.start(inside, ready=lambda: inside.port is not None)

        async def kept() -> list[str]:
            try:
                endpoints = await api_client.get("Endpoints", "kubernetes", "default")
            except Exception:
                return []
            return [a["ip"] for s in endpoints.get("subsets") or [] for a in s.get("addresses") or []]


        async def service() -> bool:
            try:
                return bool(await api_client.get("Service", "kubernetes", "default"))
            except Exception:
                return False

        await eventually(service)  # before the pod, so that it gets KUBERNETES_SERVICE_HOST
        await api_client.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}})
        ca = base64.b64encode(creds.ca_cert.read_bytes()).decode()
        await api_client.create({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "reader-token", "annotations": {"kubernetes.io/service-account.name": "reader"}},
            "data": {"ca.crt": ca}})
        await api_client.create({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "incluster"},
            "spec": {"nodeName": name, "restartPolicy": "Never", "serviceAccountName": "reader",
                     "containers": [{"name": "py", "image": IMAGE, "command": ["python3", "-c", SCRIPT],
                                     "volumeMounts": [{"name": "token", "readOnly": True,
                                                       "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
                     "volumes": [{"name": "token", "secret": {"secretName": "reader-token"}}]}})

        async def refused() -> bool:
            result = await gateway.kubectl("logs", "incluster")
            return "refused: 403" in result.out

        await eventually(refused, timeout=120, interval=0.5)
        # Kubernetes' wording, then the binding the client needs for what it reads
        assert ('refused: 403 pods is forbidden: User "system:serviceaccount:default:reader" cannot list resource '
                '"pods" in API group "" in the namespace "default"') in await gateway.ok("logs", "incluster")
        await gateway.ok("create", "rolebinding", "reader-view", "--clusterrole=view",
                         "--serviceaccount=default:reader")

        async def finished() -> str | None:
            pod = await api_client.get("Pod", "incluster", "default")
            return str(pod["status"]["phase"]) if pod.get("status", {}).get("phase") in ("Succeeded", "Failed") \
                else None

        phase = await eventually(finished, timeout=120, interval=0.5)
        assert await kept() == [bridge]  # the bridge exists with the first pod: then the gateway listens there
        logs = await gateway.ok("logs", "incluster")
        assert phase == "Succeeded", logs
        assert "pods: ['incluster']" in logs and "svc: 198.19.0.1" in logs, logs
    finally:
        await delete_table(table)
        await runner.stop_all()
        unmount_all(tmp_path)  # the token Secret's tmpfs, which a stopped kubelet leaves mounted
