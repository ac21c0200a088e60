"""``shoal up``: a whole single-machine cluster in the foreground, stopped cleanly by Ctrl-C or SIGTERM.

It takes the state directory (``--state-dir``, ``$SHOAL_STATE_DIR``, else ``~/.local/share/shoal``), starts
the embedded nats-server with its JetStream store there, then every component of ``COMPONENTS`` as a
child process (``python -m <module> --server <url>``), waits until the API answers and says how to use
the cluster. A component that exits is restarted with back-off (1 s doubling to 30 s; reset after a
minute of running), and so is nats-server.

Logs: each component's output goes to ``<state>/logs/<component>.log`` (nats-server's to
``<state>/logs/nats-server.log``); ``--attach`` also prints it here prefixed by the component's name.
When a component exits, the last lines of its log are printed with the notice.

Shutdown: components in reverse order of the table (SIGTERM, up to ``STOP_TIMEOUT`` seconds, then
SIGKILL), then nats-server; exit status 0. A second Ctrl-C kills what is left at once. Children run
in their own sessions (the terminal's Ctrl-C reaches only this process, which orders the shutdown) and,
on Linux, get SIGTERM should this process die without stopping them.

Authentication (``shoal.up_auth``): nats-server admits no anonymous client; every component connects as
its own NATS user with the multi-VM deployment's permissions, the ``shoal`` tool as ``cli`` through
``<state>/context.json`` (``runtime.context``). Credentials are 0600 in ``<state>/auth``, the state
directory 0700.

Safety: a lock file keeps two ``shoal up`` off one state directory; a nats-server left running from this
state directory by a killed ``shoal up`` is stopped; a port held by anything else is refused.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import fcntl
import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from runtime.bus import connect
from runtime.client import ApiClient
from runtime.context import CONTEXT_FILE
from runtime.context import default_state_dir as default_state_dir
from runtime.nats_server import NatsServer, NatsServerConfig, NatsServerError
from runtime.pids import pid_alive
from shoal import kubeconfig
from shoal.up_auth import UpAuth, user_of

CREDENTIAL_VARIABLES = ("SHOAL_USER", "SHOAL_PASSWORD", "SHOAL_CREDS", "SHOAL_TOKEN", "SHOAL_TLS_CA",
                        "SHOAL_CONTEXT", "SHOAL_INBOX_PREFIX")
"""Not passed on to components: each gets its own identity instead."""
STOP_TIMEOUT = 10.0
BACKOFF_START, BACKOFF_MAX, STABLE_AFTER = 1.0, 30.0, 60.0
TAIL_LINES = 15


@dataclass
class UpOptions:
    state_dir: str | None = None
    host: str = "127.0.0.1"
    port: int = 4222
    log_format: str = "console"
    log_level: str = "info"
    attach: bool = False
    gateway: str = "127.0.0.1:6443"
    """HOST:PORT of the Kubernetes API gateway (HTTPS); empty for none."""
    kubeconfig: str | None = None
    """The kubeconfig to merge the ``shoal`` context into (default ``$KUBECONFIG`` or ``~/.kube/config``);
    empty for none."""

    @property
    def gateway_url(self) -> str:
        host, _, port = self.gateway.rpartition(":")
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"https://{'[' + host + ']' if ':' in host else host}:{port}"


def always(options: UpOptions) -> bool:
    return True


@dataclass(frozen=True)
class Component:
    name: str
    module: str
    args: tuple[str, ...] = ()
    enabled: Callable[[UpOptions], bool] = always


def podman_available(options: UpOptions) -> bool:
    return shutil.which("podman") is not None


def gateway_enabled(options: UpOptions) -> bool:
    return bool(options.gateway)


NODE_NAME = socket.gethostname().split(".")[0].lower() or "local"

COMPONENTS: tuple[Component, ...] = (
    Component("api", "actors.api", ("--encryption-config", "{state}/encryption-config.yaml")),
    Component("scheduler", "actors.scheduler"),
    Component("controllers", "actors.controllers", ("--cluster-cidr", "{cluster_cidr}")),
    Component("cloud", "actors.cloud", ("--cloud-provider", "local", "--state-dir", "{state}/cloud")),
    Component("kubelet", "agents.kubelet", ("--node-name", NODE_NAME, "--state-dir", "{state}/kubelet",
                                            "--cluster-name", "{cluster}"),
              enabled=podman_available),
    Component("proxy", "agents.proxy", ("--node-name", NODE_NAME, "--cluster-name", "{cluster}")),  # as kube-proxy
    Component("dns", "agents.dns", ("--node-name", NODE_NAME)),  # cluster DNS on the pod network's gateway
    Component("gateway", "actors.gateway", ("--listen", "{gateway}", "--tls-cert", "{state}/gateway/server.crt",
                                            "--tls-key", "{state}/gateway/server.key",
                                            "--admin-token-file", "{state}/gateway/admin.token",
                                            "--client-ca", "{state}/gateway/ca.crt",
                                            "--advertise-node", NODE_NAME),  # pods reach it on their bridge
              enabled=gateway_enabled),
)
"""Everything ``shoal up`` runs, in start order (stopped in reverse). Entries whose module is not there
yet are skipped with a notice, so a line may be added before its module lands. ``{state}`` in an
argument is the state directory, ``{gateway}`` the gateway's HOST:PORT, ``{cluster}`` and ``{cluster_cidr}``
this cluster's name and pod range (see ``cluster_identity``)."""


def cluster_identity(state: Path) -> tuple[str, str]:
    """(cluster name, cluster CIDR) of a ``shoal up`` cluster: ``shoal`` and 198.18.0.0/16 for the default
    state directory; for any other, a name and a /24 of 198.18.128-253 derived from its path, so that two
    clusters on one machine (tests) get their own Podman network, nftables table and pod range."""
    if state.resolve() == default_state_dir().resolve():
        return "shoal", "198.18.0.0/16"
    digest = hashlib.sha1(str(state.resolve()).encode()).hexdigest()
    return f"s{digest[:8]}", f"198.18.{128 + int(digest[8:12], 16) % 126}.0/24"


def importable(module: str) -> bool:
    """Whether ``python -m module`` can run: the module (or a package with ``__main__``) exists."""
    try:
        spec = importlib.util.find_spec(module)
        if spec is None:
            return False
        if spec.submodule_search_locations is not None:
            return importlib.util.find_spec(f"{module}.__main__") is not None
        return True
    except (ImportError, ValueError):
        return False


class UpError(Exception):
    """``shoal up`` cannot start: the message says why and what to do."""


class Console:
    """Progress lines with the time since start; flushed at once (the output is often a pipe)."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", flush=True)

    def raw(self, text: str) -> None:
        print(text, flush=True)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# -- state directory: lock, stale server, port ------------------------------------------------------
class StateLock:
    def __init__(self, state: Path) -> None:
        self.path = state / "up.lock"
        self.file: IO[str] | None = None

    def acquire(self) -> None:
        self.file = open(self.path, "a+")  # noqa: SIM115 - held for the lifetime of the cluster
        try:
            fcntl.flock(self.file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "?"
            self.file.close()
            self.file = None
            raise UpError(f"another `shoal up` (pid {holder}) is already running on {self.path.parent}: "
                          "use it (its output shows the server URL), or stop it first (Ctrl-C there, or "
                          f"kill -TERM {holder})") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(str(os.getpid()))
        self.file.flush()

    def release(self) -> None:
        if self.file is not None:
            self.file.seek(0)
            self.file.truncate()
            self.file.close()
            self.file = None


def stop_stale_server(state: Path, console: Console) -> None:
    """A nats-server of this state directory outliving its ``shoal up`` (killed -9) is ours: stop it."""
    pid_file = state / "nats-server.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    if not pid_alive(pid) or str(state / "nats-server.conf") not in _cmdline(pid):
        return
    console.say(f"stopping nats-server pid {pid}, left running by an earlier `shoal up` of this state "
                "directory")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


def check_port(host: str, port: int, state: Path) -> None:
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with socket.create_connection((probe_host, port), timeout=1.0) as sock:
            sock.settimeout(1.0)
            try:
                greeting = sock.recv(8)
            except OSError:
                greeting = b""
    except OSError:
        return  # nothing listens: free
    what = "another program"
    if greeting.startswith(b"INFO"):
        what = (f"another NATS server, not the one of {state} (perhaps a `shoal up` with another "
                "--state-dir)")
    raise UpError(f"port {port} on {probe_host} is in use by {what}: stop it, or choose another port with "
                  "--port (and point SHOAL_SERVER at it)")


def check_gateway_port(host: str, port: int) -> None:
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        socket.create_connection((probe_host, port), timeout=1.0).close()
    except OSError:
        return
    raise UpError(f"port {port} on {probe_host} (the Kubernetes API gateway's) is in use by another program: "
                  "stop it, or choose another address with --gateway HOST:PORT (or --gateway '' for none)")


def exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


# -- child processes ----------------------------------------------------------------------------------
@dataclass
class Child:
    component: Component
    argv: list[str]
    log_path: Path
    attach: bool
    console: Console
    name_width: int
    env: dict[str, str] = field(default_factory=dict)
    """Added to this process's environment: the component's NATS identity (``shoal.up_auth``)."""
    proc: asyncio.subprocess.Process | None = None
    tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    restarts: int = 0
    stopping: bool = False
    _pump: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.component.name

    async def spawn(self) -> None:
        inherited = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
        env = {**inherited, "PYTHONUNBUFFERED": "1", **self.env}
        self.tail.clear()
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True, limit=1 << 20,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self._pump = asyncio.create_task(self._copy_output(self.proc), name=f"output-{self.name}")

    def _open_log(self, pid: int) -> IO[bytes]:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed by the caller's with
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        log.write(f"--- {stamp} started pid {pid}: {' '.join(self.argv)}\n".encode())
        log.flush()
        return log

    async def _copy_output(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        with self._open_log(proc.pid) as log:
            while True:
                try:
                    line = await proc.stdout.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    line = await proc.stdout.read(1 << 16)
                if not line:
                    return
                log.write(line)
                log.flush()
                text = line.decode(errors="replace").rstrip("\n")
                self.tail.append(text)
                if self.attach:
                    print(f"{self.name.ljust(self.name_width)} | {text}", flush=True)

    async def wait(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        if self._pump is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pump, 5)
        return code

    async def supervise(self, stop: asyncio.Event) -> None:
        """Keep the component running until ``stop``; restart it with back-off when it exits."""
        backoff = BACKOFF_START
        while not stop.is_set():
            started = time.monotonic()
            await self.spawn()
            assert self.proc is not None
            self.console.say(f"{self.name} started (pid {self.proc.pid}): {' '.join(self.argv[1:3])}, "
                             f"log {self.log_path}")
            code = await self.wait()
            if stop.is_set() or self.stopping:
                return
            ran = time.monotonic() - started
            if ran > STABLE_AFTER:
                backoff = BACKOFF_START
            self.restarts += 1
            self.console.say(f"{self.name} {exit_text(code)} after {ran:.1f}s; restarting in "
                             f"{backoff:g}s (restart #{self.restarts}). Last lines of {self.log_path}:")
            for text in self.tail:
                self.console.raw(f"    {self.name} | {text}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    async def terminate(self, force: asyncio.Event) -> None:
        self.stopping = True
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        waiter = asyncio.ensure_future(self.wait())
        forced = asyncio.ensure_future(force.wait())
        await asyncio.wait({waiter, forced}, timeout=STOP_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        forced.cancel()
        if proc.returncode is None:
            self.console.say(f"{self.name} did not stop within {STOP_TIMEOUT:g}s: killing it"
                             if not force.is_set() else f"killing {self.name}")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        code = await waiter
        self.console.say(f"{self.name} stopped ({exit_text(code)})")


# -- the cluster --------------------------------------------------------------------------------------
class Cluster:
    def __init__(self, options: UpOptions, state: Path, console: Console) -> None:
        self.options = options
        self.state = state
        self.console = console
        self.logs = state / "logs"
        self.stop = asyncio.Event()
        self.force = asyncio.Event()
        self.auth = UpAuth.ensure(state, NODE_NAME, options.host)
        self.nats = NatsServer(
            NatsServerConfig(state_dir=state, host=options.host, port=options.port,
                             extra=f'pid_file: "{state / "nats-server.pid"}"\n{self.auth.server_config()}'),
            log_file=self.logs / "nats-server.log")
        host = "127.0.0.1" if options.host in ("0.0.0.0", "") else options.host
        self.url = f"nats://{host}:{options.port}"
        self.children: list[Child] = []
        self.tasks: list[asyncio.Task[None]] = []

    def on_signal(self) -> None:
        if self.stop.is_set():
            self.force.set()
        else:
            self.console.say("stopping the cluster (Ctrl-C again to kill at once)")
            self.stop.set()

    def plan(self) -> list[Component]:
        chosen = []
        for component in COMPONENTS:
            if not component.enabled(self.options):
                self.console.say(f"skipping {component.name}: not enabled on this machine")
            elif not importable(component.module):
                self.console.say(f"skipping {component.name}: module {component.module} is not available "
                                 "in this installation")
            else:
                chosen.append(component)
        return chosen

    async def start_nats(self) -> None:
        self.console.say(f"starting nats-server on {self.url} (JetStream store {self.state / 'jetstream'})")
        await self.nats.start()
        assert self.nats.proc is not None
        self.console.say(f"nats-server ready (pid {self.nats.proc.pid}), log {self.nats.log_file}")

    async def watch_nats(self) -> None:
        backoff = BACKOFF_START
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 1.0)
            proc = self.nats.proc
            if self.stop.is_set() or proc is None or proc.poll() is None:
                continue
            self.console.say(f"nats-server {exit_text(proc.returncode)}; restarting in {backoff:g}s "
                             f"(see {self.nats.log_file})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), backoff)
            if self.stop.is_set():
                return
            try:
                await self.start_nats()
                backoff = BACKOFF_START
            except NatsServerError as exc:
                self.console.say(f"nats-server did not start again: {str(exc).splitlines()[0]}")
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _expand(self, arg: str) -> str:
        cluster, cidr = cluster_identity(self.state)
        return (arg.replace("{state}", str(self.state)).replace("{gateway}", self.options.gateway)
                .replace("{cluster_cidr}", cidr).replace("{cluster}", cluster))

    def start_components(self, components: list[Component]) -> None:
        width = max((len(c.name) for c in components), default=4)
        for component in components:
            argv = [sys.executable, "-m", component.module, "--server", self.url,
                    "--log-format", self.options.log_format, "--log-level", self.options.log_level,
                    *(self._expand(arg) for arg in component.args)]
            child = Child(component, argv, self.logs / f"{component.name}.log", self.options.attach,
                          self.console, width, self.auth.env(user_of(component.name, NODE_NAME)))
            self.children.append(child)
            task = asyncio.create_task(child.supervise(self.stop), name=f"supervise-{component.name}")
            self.tasks.append(task)

    async def spawned(self, limit: float = 5.0) -> None:
        """Until every component has its first process (so progress lines come in order)."""
        deadline = time.monotonic() + limit
        while any(c.proc is None for c in self.children) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def wait_ready(self) -> bool:
        """Until the API answers (True) or a stop is asked for (False)."""
        self.console.say("waiting for the API to answer")
        nc = await connect(self.auth.context(self.url, cluster_identity(self.state)[0]).bus(), name="shoal-up",
                           reconnect=True)
        client = ApiClient(nc, timeout=2.0)
        started = last_note = time.monotonic()
        try:
            while not self.stop.is_set():
                try:
                    info: dict[str, Any] = await client.info()
                    if info.get("ready"):
                        self.console.say(f"API ready (resourceVersion {info.get('resourceVersion')})")
                        return True
                except Exception:
                    pass
                if time.monotonic() - last_note > 10:
                    last_note = time.monotonic()
                    self.console.say(f"still waiting for the API ({last_note - started:.0f}s); see "
                                     f"{self.logs / 'api.log'}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), 0.2)
            return False
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    def write_kubeconfig(self) -> str:
        """Merge the ``shoal`` cluster, user and context into the kubeconfig; the line saying so."""
        if not self.options.gateway:
            return ""
        if self.options.kubeconfig == "":
            return (f"  kubectl: shoal kubeconfig --state-dir {self.state} > kubeconfig "
                    f"(gateway {self.options.gateway_url})\n")
        path = Path(self.options.kubeconfig).expanduser() if self.options.kubeconfig else kubeconfig.default_path()
        try:
            kubeconfig.merge_into(path, kubeconfig.kubeconfig(self.options.gateway_url,
                                                              kubeconfig.Credentials(self.state / "gateway")))
        except (OSError, ValueError, yaml.YAMLError) as exc:  # a broken or unwritable kubeconfig: runs anyway
            return (f"  kubectl: could not write {path} ({str(exc).splitlines()[0]}); use `shoal kubeconfig "
                    f"--state-dir {self.state}`"
                    f" (gateway {self.options.gateway_url})\n")
        return (f"  kubectl get nodes      (context \"shoal\" in {path}, API {self.options.gateway_url})\n"
                f"  web console: {self.options.gateway_url}/ui/  (token: {self.state / 'gateway' / 'admin.token'})\n")

    def announce(self) -> None:
        kubectl = self.write_kubeconfig()
        context = self.state / CONTEXT_FILE
        found = (context.parent.resolve() == default_state_dir().resolve()
                 and not any(os.environ.get(v) for v in CREDENTIAL_VARIABLES))
        self.console.raw(
            f"\nShoal cluster ready at {self.url}\n"
            f"  state: {self.state}   logs: {self.logs}\n"
            f"  credentials: {context} (0600; every component has its own NATS user, see {self.state / 'auth'})\n"
            "Use it from another terminal:\n"
            f"  export SHOAL_SERVER={self.url}\n"
            + ("" if found else f"  export SHOAL_CONTEXT={context}\n")
            + "  shoal get nodes\n"
            f"{kubectl}"
            "Press Ctrl-C to stop the cluster.\n"
        )

    async def shutdown(self) -> None:
        self.stop.set()
        for child in reversed(self.children):
            await child.terminate(self.force)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.nats.proc is not None and self.nats.proc.poll() is None:
            self.console.say("stopping nats-server")
            if self.force.is_set():
                self.nats.kill()
            else:
                await self.nats.stop(timeout=STOP_TIMEOUT)
            self.console.say(f"nats-server stopped ({exit_text(self.nats.proc.returncode)})")

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.on_signal)
        try:
            components = self.plan()
            await self.start_nats()
            # before the API answers, so that `shoal` can look at a cluster that does not come up
            self.auth.write_context(self.url, cluster_identity(self.state)[0])
            self.tasks.append(asyncio.create_task(self.watch_nats(), name="watch-nats"))
            self.start_components(components)
            await self.spawned()
            if any(c.name == "api" for c in components):
                if await self.wait_ready():
                    self.announce()
            else:
                self.console.say("no API component to wait for")
                self.announce()
            await self.stop.wait()
            return 0
        finally:
            await self.shutdown()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            self.console.say("cluster stopped")


def resolve_state_dir(options: UpOptions) -> Path:
    return (Path(options.state_dir).expanduser() if options.state_dir else default_state_dir()).absolute()


def prepare(state: Path, options: UpOptions, lock: StateLock, console: Console) -> None:
    """Before starting anything: make the directories, own them, clear a stale server, check the port."""
    (state / "logs").mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)  # the JetStream store (the signing key, the datastore) and every credential are in it
    console.raw(f"Shoal state directory: {state}")
    lock.acquire()
    stop_stale_server(state, console)
    check_port(options.host, options.port, state)
    if options.gateway:
        host, _, port = options.gateway.rpartition(":")
        if not port.isdigit():
            raise UpError(f"--gateway {options.gateway!r}: use HOST:PORT, e.g. 127.0.0.1:6443")
        check_gateway_port(host, int(port))
        kubeconfig.ensure_credentials(state / "gateway", (host,))


async def run_cluster(options: UpOptions) -> int:
    """Run until Ctrl-C/SIGTERM: 0 after a clean stop, 1 (``error: ...`` on stderr) if it cannot start."""
    console = Console()
    state = resolve_state_dir(options)
    lock = StateLock(state)
    try:
        prepare(state, options, lock, console)
        return await Cluster(options, state, console).run()
    except (UpError, NatsServerError, OSError, ValueError) as exc:
        message = str(exc).strip().replace("\n", "\n  ")
        print(f"error: {message}", file=sys.stderr, flush=True)
        return 1
    finally:
        lock.release()
