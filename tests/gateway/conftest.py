"""A cluster the real kubectl and the official ``kubernetes`` Python client can use: nats-server, an API
actor and a Kubernetes API gateway (HTTPS, a CA and admin token from ``shoal.kubeconfig``) in this event
loop, and a kubeconfig for it in the test's tmp dir.

kubectl runs as an asyncio subprocess and the (blocking) Python client in a thread, so the loop keeps
serving the actors meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from actors.gateway.server import GatewayActor, GatewaySettings
from runtime.client import ApiClient
from runtime.nats_server import NatsServer
from shoal.kubeconfig import Credentials, ensure_credentials, kubeconfig
from tests.conftest import ActorRunner, start_api
from tests.subprocesses import Result, read_until, run_tool

__all__ = ["KUBECTL", "Gateway", "Result", "read_until", "start_gateway"]

KUBECTL = shutil.which("kubectl")


@dataclass
class Gateway:
    url: str
    kubeconfig: Path
    credentials: Credentials
    actor: GatewayActor

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "SHOAL_"))}
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["HOME"] = str(self.kubeconfig.parent)  # kubectl's discovery cache stays in the tmp dir
        return env

    def kubectl_argv(self, *args: str) -> list[str]:
        assert KUBECTL is not None
        return [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args]

    async def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> Result:
        return await run_tool(self.kubectl_argv(*args), what=f"kubectl {' '.join(args)}", env=self.env(),
                              stdin=stdin, timeout=timeout)

    async def ok(self, *args: str, stdin: str | None = None) -> str:
        result = await self.kubectl(*args, stdin=stdin)
        assert result.rc == 0, f"kubectl {' '.join(args)}: {result}"
        return result.out

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *self.kubectl_argv(*args), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env())


async def start_gateway(runner: ActorRunner, root: Path) -> Gateway:
    creds = ensure_credentials(root / "gateway")
    actor = GatewayActor(GatewaySettings(port=0, cert_file=creds.cert, key_file=creds.key,
                                         admin_token_file=creds.token_file, client_ca_file=creds.ca_cert))
    await runner.start(actor, ready=lambda: actor.port is not None)
    url = f"https://127.0.0.1:{actor.port}"
    path = root / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig(url, creds)))
    return Gateway(url, path, creds, actor)


@pytest.fixture
async def gateway(nats_server: NatsServer, runner: ActorRunner, tmp_path: Path) -> AsyncIterator[Gateway]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    await start_api(runner)
    yield await start_gateway(runner, tmp_path)


@pytest.fixture
async def api_client(nats_server: NatsServer, gateway: Gateway) -> AsyncIterator[ApiClient]:
    import nats
    nc = await nats.connect(nats_server.url)
    try:
        yield ApiClient(nc)
    finally:
        await nc.close()

