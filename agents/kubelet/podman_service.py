"""Find or start the Podman API service the kubelet talks to, adapting Podman to the host.

``start_podman_service(state_dir=...)`` returns a ``PodmanService`` with ``socket_url`` (for
``PodmanRuntime``), ``env`` (the environment for ``podman`` CLI calls, e.g. ``podman build``) and
``close()``.

Order of choice:
1. An explicit ``socket_url`` argument, or the ``SHOAL_PODMAN_SOCKET`` env var, that answers a ping is
   used as is (whoever runs that service owns its configuration); nothing is started or stopped.
2. Otherwise ``podman system service --time=0 unix://<state_dir>/podman.sock`` is started as a child
   process and stopped by ``close()``. Containers survive it (conmon holds them), as on a real node.
   Its pid is kept in ``<state_dir>/podman-service.pid``: a service left running by a kubelet that was
   killed (SIGKILL, a crash: no ``close()``) is stopped by the next start instead of living on beside
   the new one.

Configuration of that service (``CONTAINERS_CONF``):
- ``SHOAL_CONTAINERS_CONF`` (a path) wins; else an inherited ``CONTAINERS_CONF`` is kept.
- Otherwise it is *detected*: a probe container (``podman run --rm --rootfs <dir> /bin/busybox true``,
  the rootfs being a copy of the host's static busybox, so no image is needed) runs with Podman's
  defaults. Real hosts pass and get no extra configuration. Two known failures are fixed, one at a time,
  by writing ``<state_dir>/containers.conf`` and probing again:
  * ``setrlimit ... operation not permitted`` (no CAP_SYS_RESOURCE, e.g. some VMs and nested
    containers): ``[containers] default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]``;
  * crun failing (``cgroups in hybrid mode not supported`` and other crun errors) while runc is
    installed: ``[engine] runtime = "runc"``.
  Note that a ``CONTAINERS_CONF`` file replaces the system ``containers.conf`` (it is not layered).
  If no busybox is available the probe is skipped and Podman's defaults are used.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from podman import PodmanClient

from agents.kubelet.cri import RuntimeUnavailable

log = structlog.get_logger("shoal.kubelet.podman_service")

ULIMITS_FIX = 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]'
RUNC_FIX = 'runtime = "runc"'


class PodmanNotInstalled(RuntimeUnavailable):
    """No ``podman`` executable on PATH."""

    retryable = False


@dataclass
class PodmanService:
    """A reachable Podman API service; ``close()`` stops it if this process started it."""

    socket_url: str
    env: dict[str, str]
    containers_conf: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    async def close(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)
        log.info("podman service stopped", pid=proc.pid)


def _ping(socket_url: str, timeout: float = 2.0) -> bool:
    try:
        with PodmanClient(base_url=socket_url, timeout=timeout) as client:
            return bool(client.ping())
    except Exception:  # any failure means "not usable"
        return False


def podman_env(containers_conf: Path | str | None) -> dict[str, str]:
    env = dict(os.environ)
    if containers_conf:
        env["CONTAINERS_CONF"] = str(containers_conf)
    return env


def _probe(state_dir: Path, env: dict[str, str]) -> tuple[bool, str]:
    """Run a throw-away container from a busybox rootfs; (True, "") or (False, error text)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        return True, "no busybox on this host: probe skipped"
    rootfs = state_dir / "probe-rootfs"
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    target = rootfs / "bin" / "busybox"
    if not target.exists():
        shutil.copy2(busybox, target)
    cmd = ["podman", "run", "--rm", "--network=none", "--rootfs", str(rootfs), "/bin/busybox", "true"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode == 0, (done.stderr or done.stdout).strip()


def _fix_for(error: str, applied: set[str]) -> str | None:
    low = error.lower()
    if "rlimit" in low and "operation not permitted" in low and ULIMITS_FIX not in applied:
        return ULIMITS_FIX
    if "crun" in low and RUNC_FIX not in applied and shutil.which("runc"):
        return RUNC_FIX
    return None


def _write_conf(path: Path, fixes: set[str]) -> None:
    containers = [f for f in (ULIMITS_FIX,) if f in fixes]
    engine = [f for f in (RUNC_FIX,) if f in fixes]
    text = "# Written by shoal's podman_service after probing this host.\n"
    text += "[containers]\n" + "".join(f"{line}\n" for line in containers)
    text += "[engine]\n" + "".join(f"{line}\n" for line in engine)
    path.write_text(text)


def detect_containers_conf(state_dir: Path) -> Path | None:
    """The ``CONTAINERS_CONF`` this host needs (None: Podman's defaults work). Blocking."""
    explicit = os.environ.get("SHOAL_CONTAINERS_CONF") or os.environ.get("CONTAINERS_CONF")
    if explicit:
        log.info("using configured containers.conf", path=explicit)
        return Path(explicit)
    conf = state_dir / "containers.conf"
    fixes: set[str] = set()
    for _ in range(3):
        ok, error = _probe(state_dir, podman_env(conf if fixes else None))
        if ok:
            if error:
                log.warning("podman probe skipped", reason=error)
            if fixes:
                log.info("podman needs host-specific configuration", path=str(conf), fixes=sorted(fixes))
                return conf
            return None
        fix = _fix_for(error, fixes)
        if fix is None:
            log.warning("podman probe failed; keeping defaults", error=error)
            return conf if fixes else None
        log.info("podman probe failed; applying fix", error=error, fix=fix)
        fixes.add(fix)
        _write_conf(conf, fixes)
    return conf


PID_FILE = "podman-service.pid"


def _stop_stale(state_dir: Path, url: str, timeout: float = 10.0) -> None:
    """Stop the service an earlier (killed) start left running on this state directory, if any."""
    pid_file = state_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = ""
    if "system service" not in cmdline or url not in cmdline:
        pid_file.unlink(missing_ok=True)  # gone, or the pid now belongs to something else
        return
    log.info("stopping podman service left running by an earlier kubelet", pid=pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _running(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its parent's wait is missing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _start_blocking(state_dir: Path, socket_url: str | None, ready_timeout: float) -> PodmanService:
    explicit = socket_url or os.environ.get("SHOAL_PODMAN_SOCKET")
    conf_override = os.environ.get("SHOAL_CONTAINERS_CONF") or os.environ.get("CONTAINERS_CONF")
    if explicit:
        if not explicit.startswith("unix://"):
            explicit = f"unix://{explicit}"
        if _ping(explicit):
            log.info("using running podman service", socket=explicit)
            return PodmanService(socket_url=explicit, env=podman_env(conf_override), containers_conf=None)
        log.warning("podman socket did not answer; starting our own service", socket=explicit)
    if shutil.which("podman") is None:
        raise PodmanNotInstalled("podman is not installed (apt-get install podman)")
    state_dir.mkdir(parents=True, exist_ok=True)
    conf = detect_containers_conf(state_dir)
    env = podman_env(conf)
    sock = state_dir / "podman.sock"
    url = f"unix://{sock}"
    _stop_stale(state_dir, url)
    sock.unlink(missing_ok=True)
    log_file = (state_dir / "podman-service.log").open("ab")
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", url],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # keep terminal signals (Ctrl-C) for us; close() stops it
    )
    log_file.close()
    (state_dir / PID_FILE).write_text(str(proc.pid))
    deadline = time.monotonic() + ready_timeout
    started = time.monotonic()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeUnavailable(f"podman system service exited with {proc.returncode}; see {state_dir}")
        if sock.exists() and _ping(url, timeout=1.0):
            seconds = round(time.monotonic() - started, 2)
            log.info("podman service started", socket=url, pid=proc.pid, seconds=seconds)
            return PodmanService(socket_url=url, env=env, containers_conf=conf, process=proc)
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeUnavailable(f"podman system service did not answer within {ready_timeout}s")


async def start_podman_service(
    *, state_dir: Path, socket_url: str | None = None, ready_timeout: float = 30.0
) -> PodmanService:
    """Use the Podman service at ``socket_url`` if it answers, else start one under ``state_dir``."""
    return await asyncio.to_thread(_start_blocking, Path(state_dir), socket_url, ready_timeout)
