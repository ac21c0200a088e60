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

KUBECTL = shutil.which("kubectl")


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.rc}\n--- stdout\n{self.out}--- stderr\n{self.err}"


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
        proc = await asyncio.create_subprocess_exec(
            *self.kubectl_argv(*args), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env())
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"`kubectl {' '.join(args)}` did not finish within {timeout}s") from None
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

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


async def read_until(stream: asyncio.StreamReader | None, needle: str, timeout: float = 30) -> str:
    """Read lines until one contains ``needle``; return everything read."""
    assert stream is not None
    seen = ""

    async def reader() -> str:
        nonlocal seen
        while True:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"stream ended before {needle!r}; got:\n{seen}")
            seen += line.decode()
            if needle in line.decode():
                return seen

    try:
        return await asyncio.wait_for(reader(), timeout)
    except TimeoutError:
        raise AssertionError(f"no {needle!r} within {timeout}s; got:\n{seen}") from None
