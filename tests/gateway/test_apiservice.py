"""The ``kubernetes`` Service in ``default``: kept by gateways with an advertised address (each adds itself to its
Endpoints and leaves on stop), and ``KUBERNETES_SERVICE_HOST``/``PORT`` in pods of every namespace."""

from __future__ import annotations

from pathlib import Path

from actors.gateway.apiservice import kubernetes_service_ip, with_address
from actors.gateway.server import GatewayActor, GatewaySettings
from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.fake_runtime import FakeRuntime
from agents.kubelet.node import StaticMetrics
from agents.kubelet.probes import AlwaysPassProber
from runtime.client import ApiClient
from shoal.kubeconfig import IN_CLUSTER_NAMES, ensure_credentials
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually
from tests.gateway.conftest import Gateway


def test_with_address_adds_removes_and_says_when_nothing_changes() -> None:
    added = with_address(None, "198.51.100.7", 6443, True)
    assert added is not None and added["subsets"] == [
        {"addresses": [{"ip": "198.51.100.7"}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    assert with_address(added, "198.51.100.7", 6443, True) is None
    both = with_address(added, "198.51.100.6", 6443, True)
    assert both is not None and [a["ip"] for a in both["subsets"][0]["addresses"]] == ["198.51.100.6", "198.51.100.7"]
    gone = with_address(both, "198.51.100.6", 6443, False)
    assert gone is not None and [a["ip"] for a in gone["subsets"][0]["addresses"]] == ["198.51.100.7"]
    assert with_address(gone, "198.51.100.6", 6443, False) is None
    assert with_address(gone, "198.51.100.7", 6443, False) == {**gone, "subsets": []}
    assert kubernetes_service_ip() == "198.19.0.1" and "198.19.0.1" in IN_CLUSTER_NAMES


async def test_gateways_keep_the_kubernetes_service_and_pods_see_it(gateway: Gateway, api_client: ApiClient,
                                                                     runner: ActorRunner, tmp_path: Path) -> None:
    creds = ensure_credentials(tmp_path / "keepers")
    actors = []
    for address in ("198.51.100.7", "198.51.100.8"):
        actor = GatewayActor(GatewaySettings(port=0, cert_file=creds.cert, key_file=creds.key,
                                             admin_token_file=creds.token_file, advertise_address=address))
        actors.append((actor, await runner.start(actor, ready=lambda a=actor: a.port is not None)))

    async def addresses() -> list[str]:
        try:
            endpoints = await api_client.get("Endpoints", "kubernetes", "default")
        except Exception:
            return []
        return sorted(a["ip"] for s in endpoints.get("subsets") or [] for a in s.get("addresses") or [])

    await eventually(lambda: _equal(addresses(), ["198.51.100.7", "198.51.100.8"]))
    svc = await api_client.get("Service", "kubernetes", "default")
    assert svc["spec"]["clusterIP"] == "198.19.0.1" and svc["spec"]["ports"][0]["port"] == 443
    assert "selector" not in svc["spec"]
    # kubectl sees it as in Kubernetes
    assert "198.19.0.1" in await gateway.ok("get", "svc", "kubernetes", "-n", "default")
    # a gateway that stops takes its address out
    _first, stop = actors[0]
    stop.set()
    await eventually(lambda: _equal(addresses(), ["198.51.100.8"]))
    # pods of every namespace get KUBERNETES_SERVICE_HOST/PORT, even without service links
    runtime = FakeRuntime()
    config = KubeletConfig(node_name="n1", state_dir=tmp_path / "kubelet", relist_interval=0.2, measure_host=False)
    agent = KubeletAgent(config, runtime=runtime, runtime_name="fake", runtime_version="fake://0.1",
                         prober=AlwaysPassProber(runtime), metrics=StaticMetrics(), close_runtime=False)
    await runner.start(agent, lambda: agent.started.is_set())
    await api_client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    await api_client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"},
                             "spec": {"nodeName": "n1", "enableServiceLinks": False,
                                      "containers": [{"name": "c", "image": "img:1"}]}})

    async def env() -> dict[str, str] | None:
        found = [c for c in runtime._containers.values() if c.name == "c"]
        return found[0].env if found else None

    seen = await eventually(env)
    assert seen["KUBERNETES_SERVICE_HOST"] == "198.19.0.1" and seen["KUBERNETES_SERVICE_PORT"] == "443", seen
    assert seen["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"


async def _equal(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]
