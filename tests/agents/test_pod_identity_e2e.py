"""Pod identity end to end on real Podman (issue 13 item 4): with the serviceaccount and rootca controllers
running, a pod's container reads its token, CA bundle and namespace at
/var/run/secrets/kubernetes.io/serviceaccount, and the API's token review says who the token stands for."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest

from actors.api.server import ApiActor
from actors.api.tokens import TokenSettings
from agents.kubelet.podman_service import PodmanService
from protocol.errors import Forbidden
from runtime.client import ApiClient
from runtime.nats_server import NatsServer
from tests.agents.kubelet_helpers import create_bound, eventually, pod_manifest
from tests.agents.test_kubelet_e2e import sh
from tests.agents.test_kubelet_volumes_e2e import logs_with, node, start_kubelet, unmount_volumes, value
from tests.conftest import ActorRunner, start_api
from tests.controllers.conftest import start_manager

pytestmark = [pytest.mark.podman, pytest.mark.slow]
__all__ = ["node", "unmount_volumes"]  # fixtures

SA = "/var/run/secrets/kubernetes.io/serviceaccount"
READ = f"""
echo token=$(cat {SA}/token)
echo namespace=$(cat {SA}/namespace)
[ -f {SA}/ca.crt ] && echo ca=present || echo ca=absent
echo files=$(ls {SA} | tr '\\n' ',')
echo done-read
sleep 1000
"""


async def start_identity_controllers(runner: ActorRunner, client: ApiClient) -> None:
    """The serviceaccount and rootca controllers, once the default account and the root CA exist."""
    await start_manager(runner, ["serviceaccount", "rootca"])

    async def ready() -> bool:
        try:
            await client.get("ServiceAccount", "default")
            await client.get("ConfigMap", "kube-root-ca.crt")
        except Exception:
            return False
        return True
    await eventually(ready, timeout=30, what="the default account and the root CA")


async def test_the_pod_reads_its_token_and_the_api_knows_it(runner: ActorRunner, api: ApiActor, client: ApiClient,
                                                            podman_service: PodmanService, node: str,
                                                            tmp_path: Path) -> None:
    await start_identity_controllers(runner, client)
    await start_kubelet(runner, podman_service, node, tmp_path)
    created = await create_bound(client, pod_manifest("whoami", [sh("c", READ)]), node)
    assert any(v["name"].startswith("kube-api-access-") for v in created["spec"]["volumes"])
    lines = await logs_with(client, "whoami", "c", "done-read")
    assert value(lines, "namespace") == "default"
    assert value(lines, "ca") == "present"
    assert value(lines, "files") == "ca.crt,namespace,token,"
    review = await client.review_token(value(lines, "token"))
    assert review["user"]["username"] == "system:serviceaccount:default:default"
    assert review["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["whoami"]

    off = pod_manifest("anonymous", [sh("c", f"ls {SA} 2>/dev/null && echo mounted=yes || echo mounted=no; "
                                             "sleep 1000")])
    off["spec"]["automountServiceAccountToken"] = False
    await create_bound(client, off, node)
    assert value(await logs_with(client, "anonymous", "c", "mounted="), "mounted") == "no"

    await client.delete("pods", "whoami", grace_period=0)
    await eventually(lambda: _revoked(client, value(lines, "token")), timeout=30, what="the token revoked with its pod")


async def _revoked(client: ApiClient, token: str) -> bool:
    try:
        await client.review_token(token)
    except Forbidden:
        return True
    return False


ROTATING = f"""
while true; do echo token=$(cat {SA}/token); sleep 1; done
"""


async def test_the_kubelet_rotates_the_mounted_token_before_it_expires(
        runner: ActorRunner, nats_server: NatsServer, podman_service: PodmanService, node: str, tmp_path: Path) -> None:
    """Tokens capped at 6 s by the API (``max_expiration``, Kubernetes' --service-account-max-token-expiration):
    the kubelet asks again at 80% of their life, so the file in the container changes and always holds a valid
    token; the older one expires."""
    await start_api(runner, tokens=TokenSettings(max_expiration=6))
    nc = await nats.connect(nats_server.url)
    client = ApiClient(nc)
    try:
        await start_identity_controllers(runner, client)
        await start_kubelet(runner, podman_service, node, tmp_path)
        await create_bound(client, pod_manifest("rotating", [sh("c", ROTATING)]), node)

        async def two_tokens() -> list[str] | None:
            lines = await logs_with(client, "rotating", "c", "token=ey")
            seen = list(dict.fromkeys(line.split("=", 1)[1] for line in lines if line.startswith("token=ey")))
            return seen if len(seen) >= 3 else None
        tokens = await eventually(two_tokens, timeout=60, what="the mounted token rotated twice")
        latest = tokens[-1]
        review = await client.review_token(latest)
        assert review["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["rotating"]

        async def expired(token: str) -> bool:
            try:
                await client.review_token(token)
            except Forbidden as exc:
                return "expired" in exc.message
            return False
        assert await eventually(lambda: expired(tokens[0]), timeout=30, what="the first token expired")
    finally:
        await nc.close()
