"""Making a pod's volumes on the node and the configuration of its containers (the I/O half of
``volumes_plan.py`` and ``envvars.py``).

``PodVolumes.prepare(pod, sandbox, config)`` is the one call the executor makes before creating a
container: it fetches the ConfigMaps/Secrets the pod references, computes the environment and the
``$(VAR)``-expanded command, sets up every volume of the pod (idempotent) and returns the container's
config with its env, command, args and mounts. ``refresh(pod)`` rewrites the file volumes of a running
pod whose objects changed; ``cleanup(uid)`` removes a pod's volumes once its containers are gone.

Reading objects: through the kubelet's node-scoped subjects (``shoal.node.<N>.api.get…``), where the API
actor allows only what pods bound to the node reference (Kubernetes' Node authorizer). Changes are
noticed by re-reading: an object is fetched at most once per ``ttl`` seconds (Kubernetes' TTL cache
strategy), and the agent asks for a refresh of running pods every ``ttl`` seconds, so a ConfigMap change
reaches mounted files within about ``2 * ttl``.

File volumes are written as Kubernetes' AtomicWriter does: the files go to a fresh timestamped directory
``..2026_12_01_00_20_00.123456``, a symlink ``..data_tmp`` to it is renamed over ``..data`` (one atomic
switch), and the user-visible names are symlinks into ``..data``. Secret and projected volumes (and
``emptyDir`` with ``medium: Memory``) sit on a tmpfs mounted by the kubelet; where mounting is not
permitted they fall back to disk, with a warning logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents.kubelet.config import KubeletConfig
from agents.kubelet.cri import ContainerConfig, Mount, SandboxConfig
from agents.kubelet.envvars import ConfigError, PodFacts, Sources, container_env, expand_command
from agents.kubelet.node import Measurements, Metrics
from agents.kubelet.volumes_plan import (
    CLAIM,
    FILE_VOLUMES,
    Claims,
    FileEntry,
    Found,
    Payload,
    Volume,
    VolumeError,
    claim_names,
    container_mounts,
    hostpath_check,
    payload,
    pod_dir,
    pod_volumes,
    token_ref,
    token_seconds,
    token_sources,
)
from protocol import subjects
from protocol.errors import Forbidden, NotFound
from protocol.kinds import by_kind
from protocol.objects import Obj, name_of, namespace_of, uid_of
from protocol.podrefs import CONFIG_MAP, PV, PVC, SECRET, Ref, pod_references
from protocol.subjects import Verb
from runtime.client import ApiClient

DATA = "..data"
OWNER = ".node"
"""A file in each pod directory naming the node that made it: orphans are removed only by their node."""
FORBIDDEN_RETRIES = 4
Fetch = Callable[[str, str, str], Awaitable[Obj | None]]
"""(kind, namespace, name) -> the object, None when it does not exist; raises ConfigError when refused."""
TokenFetch = Callable[[Obj, str, int], Awaitable[Obj]]
"""(pod, audience, expirationSeconds) -> ``{"token", "expirationSeconds"}``: a token of the pod's account bound to
the pod, from the API's TokenRequest (``expirationSeconds`` as issued, which the API may have capped)."""
TOKEN_RENEW_AT = 0.8
"""A token is asked for again once this share of its life has passed (as Kubernetes' kubelet)..."""
TOKEN_MAX_AGE = 24 * 3600.0
"""... or once it is a day old, however long it lives (as Kubernetes' kubelet)."""
MIN_TOKEN_WAIT = 0.2
"""The shortest wait before a pod's next token renewal is looked at (a failed renewal is retried this often at most)."""


# -- AtomicWriter -------------------------------------------------------------------------------------


def _timestamped(target: Path) -> Path:
    stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    path = target / stamp
    n = 0
    while path.exists():
        n += 1
        path = target / f"{stamp}{n}"
    return path


def current_payload(target: Path) -> Payload | None:
    """What ``..data`` holds now (None when nothing was written yet)."""
    data = target / DATA
    if not data.is_symlink():
        return None
    out: Payload = {}
    root = data.resolve()
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            full = Path(dirpath) / f
            out[str(full.relative_to(root))] = FileEntry(full.read_bytes(), stat.S_IMODE(full.stat().st_mode))
    return out


def atomic_write(target: Path, files: Payload) -> bool:
    """Make ``target`` hold exactly ``files`` (Kubernetes' AtomicWriter); False when it already did."""
    target.mkdir(parents=True, exist_ok=True)
    if current_payload(target) == files:
        return False
    old = (target / DATA).resolve() if (target / DATA).is_symlink() else None
    new = _timestamped(target)
    new.mkdir(mode=0o755)
    for rel, entry in files.items():
        path = new / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(entry.data)
        path.chmod(entry.mode)
    tmp = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(new.name)
    os.rename(tmp, target / DATA)  # the one atomic switch
    visible = {rel.split("/")[0] for rel in files}
    for name in visible:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA}/{name}")
    for entry_path in target.iterdir():
        if not entry_path.name.startswith("..") and entry_path.name not in visible and entry_path.is_symlink():
            entry_path.unlink()
    if old is not None and old != new and old.parent == target:
        shutil.rmtree(old, ignore_errors=True)
    return True


# -- fsGroup ------------------------------------------------------------------------------------------


def fs_group(pod: Obj) -> int | None:
    value = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def apply_fs_group(root: Path, group: int | None, *, setgid: bool) -> None:
    """Kubernetes' volume ownership for ``fsGroup``: the volume's files and directories belong to the group
    and are group-readable (directories setgid for an emptyDir, so new files inherit the group)."""
    if group is None:
        return
    for dirpath, dirs, files in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, f) for f in files + dirs)]:
            with contextlib.suppress(OSError):
                os.lchown(name, -1, group)
                if not os.path.islink(name):
                    mode = stat.S_IMODE(os.stat(name).st_mode) | stat.S_IRGRP
                    if os.path.isdir(name):
                        mode |= stat.S_IXGRP | (stat.S_ISGID if setgid else 0) | (stat.S_IWGRP if setgid else 0)
                    os.chmod(name, mode)


# -- host facts ---------------------------------------------------------------------------------------


def found_at(path: str) -> Found:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "char"
    if stat.S_ISBLK(mode):
        return "block"
    return "other"


def _is_mount(path: Path) -> bool:
    return os.path.ismount(path)


def _mount_tmpfs(path: Path, size: int | None) -> str | None:
    """Mount a tmpfs on ``path``; the error text when the platform refuses."""
    options = "mode=0755" + (f",size={size}" if size else "")
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exited {done.returncode}")


def mounts_under(root: Path) -> list[str]:
    """The mount points under ``root``, deepest first."""
    try:
        with open("/proc/self/mounts") as f:
            points = [line.split()[1] for line in f]
    except OSError:
        return []
    prefix = str(root).rstrip("/") + "/"
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


def unmount_all(root: Path) -> None:
    """Unmount every mount point under ``root`` (deepest first)."""
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=10, check=False)


# -- wiring -------------------------------------------------------------------------------------------


def node_fetch(client: ApiClient, node: str) -> Fetch:
    """Reads through the node-scoped subjects, where the API actor applies the Node authorizer."""
    async def fetch(kind: str, namespace: str, name: str) -> Obj | None:
        subject = subjects.node_api(node, Verb.GET, by_kind(kind), namespace, name)
        for attempt in range(FORBIDDEN_RETRIES + 1):
            try:
                reply = await client.request(subject, {})
            except NotFound:
                return None
            except Forbidden as exc:
                # the API actor answering may not have seen the pod bound here yet (its cache lags the
                # one our informer watched): ask again briefly, then fail the start (retried after back-off)
                if attempt == FORBIDDEN_RETRIES:
                    raise ConfigError(f"{kind.lower()} {namespace}/{name}: {exc}") from None
                await asyncio.sleep(0.1 * (attempt + 1))
                continue
            obj: Obj = reply["object"]
            return obj
        return None

    return fetch


def _renew_after(lifetime: float) -> float:
    """Seconds after it was fetched that a token of ``lifetime`` seconds is asked for again."""
    return min(TOKEN_RENEW_AT * lifetime, TOKEN_MAX_AGE)


def node_token(client: ApiClient, node: str) -> TokenFetch:
    """Tokens for pods bound to this node: Kubernetes' TokenRequest on the pod's ServiceAccount with the pod
    as bound object, through the node-scoped subjects (the API issues one only bound to a pod bound here, for
    that pod's own ServiceAccount)."""
    async def token(pod: Obj, audience: str, seconds: int) -> Obj:
        namespace = namespace_of(pod) or "default"
        account = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        subject = subjects.node_api(node, Verb.TOKEN, by_kind("ServiceAccount"), namespace, account)
        spec: Obj = {"expirationSeconds": seconds,
                     "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": name_of(pod), "uid": uid_of(pod)},
                     **({"audiences": [audience]} if audience else {})}
        reply = await client.request(subject, {"object": {"apiVersion": "authentication.k8s.io/v1",
                                                          "kind": "TokenRequest", "spec": spec}})
        issued: Obj = reply["object"]
        return {"token": issued["status"]["token"], "expirationSeconds": issued["spec"]["expirationSeconds"],
                "expirationTimestamp": issued["status"].get("expirationTimestamp")}

    return token


def pod_facts(config: KubeletConfig, metrics: Metrics) -> Callable[[Obj, SandboxConfig | None], PodFacts]:
    """The downward API's view of where a pod runs (node capacity measured once)."""
    measured: list[Measurements] = []

    def facts(pod: Obj, sandbox: SandboxConfig | None) -> PodFacts:
        if not measured:
            measured.append(metrics.measure())
        pod_ip = (sandbox.pod_ip if sandbox is not None else "") or str((pod.get("status") or {}).get("podIP") or "")
        return PodFacts(node_name=config.node_name, pod_ip=pod_ip, host_ip=config.address,
                        node_cpu_millis=measured[0].cpu_millis, node_memory_bytes=measured[0].memory_bytes)

    return facts


# -- the manager ----------------------------------------------------------------------------------------


@dataclass
class _Cached:
    obj: Obj | None
    at: float


class PodVolumes:
    def __init__(self, state_dir: Path, fetch: Fetch, *, node: str = "", ttl: float = 20.0, log: Any,
                 facts: Callable[[Obj, SandboxConfig | None], PodFacts],
                 clock: Callable[[], float] = time.monotonic, token: TokenFetch | None = None) -> None:
        self.state_dir = state_dir
        self.node = node
        self.fetch = fetch
        self.ttl = ttl
        self.log = log
        self.facts = facts
        self.clock = clock
        self._cache: dict[Ref, _Cached] = {}
        self.token = token
        self._tokens: dict[Ref, tuple[Obj, float, float]] = {}  # ref -> (token, fetched at, lifetime)
        self._tmpfs_error: str | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._sandboxes: dict[str, SandboxConfig | None] = {}
        """uid -> the sandbox of a pod with file volumes, as last prepared (its address is in their downward API
        files when refreshed); nothing is kept for other pods, and never the pod itself (a hollow process's
        75,000 pods would each keep an outdated copy)."""

    # -- objects ------------------------------------------------------------------------------------
    async def sources(self, pod: Obj) -> Sources:
        """The ConfigMaps and Secrets the pod references, each re-read at most once per ``ttl``."""
        out: dict[Ref, Obj | None] = {}
        now = self.clock()
        for ref in sorted(pod_references(pod)):
            if ref[0] not in (CONFIG_MAP, SECRET):
                continue
            cached = self._cache.get(ref)
            if cached is None or now - cached.at >= self.ttl:
                cached = _Cached(await self.fetch(*ref), now)
                self._cache[ref] = cached
            out[ref] = cached.obj
        await self._add_tokens(pod, out, now)
        return out

    async def claims(self, pod: Obj) -> Claims:
        """The claims the pod mounts and the volumes they are bound to (read fresh: the mount of a claim is
        decided once per container start, and a claim being provisioned is bound any moment)."""
        out: dict[str, tuple[Obj | None, Obj | None]] = {}
        namespace = namespace_of(pod) or "default"
        for name in claim_names(pod):
            claim = await self.fetch(PVC, namespace, name)
            volume_name = ((claim or {}).get("spec") or {}).get("volumeName")
            pv = await self.fetch(PV, "", str(volume_name)) if volume_name else None
            out[name] = (claim, pv)
        return out

    async def _add_tokens(self, pod: Obj, out: dict[Ref, Obj | None], now: float) -> None:
        """The pod's service-account tokens, asked of the API once 80% of their life has passed; a failed
        renewal keeps the current token (still valid), a first failure leaves it absent (FailedMount)."""
        for source in token_sources(pod):
            ref = token_ref(pod, source)
            held = self._tokens.get(ref)
            if self.token is not None and (held is None or now - held[1] >= _renew_after(held[2])):
                try:
                    got = await self.token(pod, str(source.get("audience") or ""), token_seconds(source))
                    held = (got, now, float(got.get("expirationSeconds") or token_seconds(source)))
                    self._tokens[ref] = held
                except Exception as exc:  # refused, unavailable: retried at the next prepare/refresh
                    self.log.warning("service account token request failed", pod=name_of(pod), error=str(exc))
            out[ref] = held[0] if held is not None else None

    def forget_objects(self, pod: Obj) -> None:
        """Read the pod's objects again next time (after a failure: the object may have appeared)."""
        for ref in pod_references(pod):
            self._cache.pop(ref, None)

    # -- prepare ----------------------------------------------------------------------------------
    async def prepare(self, pod: Obj, sandbox: SandboxConfig, config: ContainerConfig) -> ContainerConfig:
        """The container's config with its resolved env, expanded command/args and mounts, every volume of
        the pod set up. Raises ConfigError (CreateContainerConfigError) or VolumeError (FailedMount)."""
        uid = uid_of(pod)
        pod_spec = pod.get("spec") or {}
        spec = next((c for c in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or [])
                     if isinstance(c, dict) and c.get("name") == config.name), None)
        if spec is None:
            return config
        facts = self.facts(pod, sandbox)
        try:
            sources = await self.sources(pod)
            claims = await self.claims(pod) if claim_names(pod) else {}
            volumes = pod_volumes(pod, self.state_dir, uid, claims)
            if volumes:
                async with self._locks.setdefault(uid, asyncio.Lock()):
                    await asyncio.to_thread(self._set_up, pod, volumes, sources, facts)
            # the service variables (config.env: the pod spec's literal values over them) are Kubernetes'
            # lowest layer; container_env recomputes the spec's own values in order
            literal = {str(e.get("name")) for e in spec.get("env") or [] if isinstance(e, dict)}
            services = {k: v for k, v in config.env.items() if k not in literal}
            env = container_env(pod, spec, sources, facts, services)
            command, args = expand_command(spec, env)
            planned = container_mounts(spec, volumes, env)
            mounts = await asyncio.to_thread(self._resolve, planned) if planned else []
        except ConfigError:
            self.forget_objects(pod)
            raise
        if self.has_file_volumes(pod):
            self._sandboxes[uid] = sandbox
        return replace(config, env=env, command=command, args=args, mounts=tuple(mounts))

    def _set_up(self, pod: Obj, volumes: dict[str, Volume], sources: Sources, facts: PodFacts) -> None:
        owner = Path(pod_dir(self.state_dir, uid_of(pod))) / OWNER
        if not owner.exists():
            owner.parent.mkdir(parents=True, exist_ok=True)
            owner.write_text(self.node)
        raw = {str(v.get("name")): v for v in (pod.get("spec") or {}).get("volumes") or [] if isinstance(v, dict)}
        for volume in volumes.values():
            if volume.type in ("hostPath", CLAIM):
                action = hostpath_check(volume.path, volume.host_path_type, found_at(volume.path))
                if action == "create_directory":
                    os.makedirs(volume.path, mode=0o755, exist_ok=True)
                elif action == "create_file":
                    Path(volume.path).parent.mkdir(parents=True, exist_ok=True)
                    Path(volume.path).touch(mode=0o644)
                continue
            path = Path(volume.path)
            fresh = not path.exists()
            path.mkdir(parents=True, exist_ok=True)
            if volume.tmpfs and fresh and not _is_mount(path):
                self._tmpfs(path, volume.size_bytes)
            if volume.type == "emptyDir" and fresh:
                path.chmod(0o777)  # as Kubernetes: any container user may write its emptyDir
            if volume.type in FILE_VOLUMES:
                atomic_write(path, payload(pod, raw[volume.name], sources, facts))
            apply_fs_group(path, fs_group(pod), setgid=volume.type == "emptyDir")

    def _tmpfs(self, path: Path, size: int | None) -> None:
        if self._tmpfs_error is not None:
            return
        error = _mount_tmpfs(path, size)
        if error is not None:
            self._tmpfs_error = error
            self.log.warning("cannot mount tmpfs volumes here; secret and memory volumes stay on disk",
                             error=error)

    @staticmethod
    def _resolve(planned: list[Any]) -> list[Mount]:
        """Bind sources with their subPath resolved on the node, kept inside the volume (a subPath of an
        emptyDir/hostPath directory is created when missing, as Kubernetes does)."""
        out: list[Mount] = []
        for p in planned:
            source = p.mount.source
            if p.sub_path:
                root = os.path.realpath(p.volume.path)
                if p.volume.type in ("emptyDir", "hostPath", CLAIM) and not os.path.lexists(source):
                    os.makedirs(source, mode=0o755, exist_ok=True)
                source = os.path.realpath(source)
                if source != root and not source.startswith(root.rstrip("/") + "/"):
                    raise VolumeError(f"subPath {p.sub_path!r} of volume {p.volume.name!r} leaves the volume")
                if not os.path.exists(source):
                    raise VolumeError(f"subPath {p.sub_path!r} does not exist in volume {p.volume.name!r}")
            out.append(replace(p.mount, source=source))
        return out

    # -- refresh / cleanup ----------------------------------------------------------------------------
    def has_file_volumes(self, pod: Obj) -> bool:
        return any(isinstance(v, dict) and any(isinstance(v.get(t), dict) for t in FILE_VOLUMES)
                   for v in (pod.get("spec") or {}).get("volumes") or [])

    async def refresh(self, pod: Obj) -> float | None:
        """Rewrite the file volumes of a pod already set up whose objects changed; when to look again."""
        uid = uid_of(pod)
        if not self.has_file_volumes(pod):
            return None
        # a pod adopted after a kubelet restart was not prepared by this process: its volumes on disk are
        # refreshed all the same (the pod IP then comes from its status)
        sandbox = self._sandboxes.get(uid)
        try:
            sources = await self.sources(pod)
            async with self._locks.setdefault(uid, asyncio.Lock()):
                volumes = pod_volumes(pod, self.state_dir, uid)
                files = {n: v for n, v in volumes.items() if v.type in FILE_VOLUMES}
                await asyncio.to_thread(self._set_up_files, pod, files, sources, self.facts(pod, sandbox))
        except ConfigError as exc:
            # Kubernetes keeps the last good content when an object disappears or breaks
            self.log.info("volume refresh skipped", pod=uid, error=str(exc))
        return min(self.ttl, self._until_token_renewal(uid))

    def _until_token_renewal(self, uid: str) -> float:
        """Seconds until one of the pod's tokens is due for renewal (80% of its life): the pod's next refresh
        comes no later, however short its tokens live."""
        now = self.clock()
        due = [held[1] + _renew_after(held[2]) - now for ref, held in self._tokens.items() if ref[1] == uid]
        return max(MIN_TOKEN_WAIT, min(due)) if due else float("inf")

    def _set_up_files(self, pod: Obj, volumes: dict[str, Volume], sources: Sources, facts: PodFacts) -> None:
        raw = {str(v.get("name")): v for v in (pod.get("spec") or {}).get("volumes") or [] if isinstance(v, dict)}
        for volume in volumes.values():
            path = Path(volume.path)
            if path.is_dir() and atomic_write(path, payload(pod, raw[volume.name], sources, facts)):
                self.log.info("volume updated", volume=volume.name, path=str(path))

    async def cleanup(self, uid: str) -> None:
        """Remove a pod's volumes (its containers are gone): unmount tmpfs, delete the directory."""
        self._sandboxes.pop(uid, None)
        self._locks.pop(uid, None)
        for ref in [r for r in self._tokens if r[1] == uid]:
            del self._tokens[ref]
        await asyncio.to_thread(self.remove_tree, Path(pod_dir(self.state_dir, uid)))

    @staticmethod
    def remove_tree(root: Path) -> None:
        """Unmount what is mounted under ``root`` (tmpfs volumes), then delete it."""
        if not root.exists():
            return
        unmount_all(root)
        shutil.rmtree(root, ignore_errors=True)

    async def cleanup_orphans(self, live: set[str]) -> None:
        """Remove the volumes of pods this kubelet no longer runs (e.g. deleted while it was down)."""
        for name in await asyncio.to_thread(self.owned):
            if name not in live:
                await self.cleanup(name)

    def owned(self) -> list[str]:
        """The pod directories this node made (several kubelets may share a state dir)."""
        pods = Path(self.state_dir) / "pods"
        if not pods.is_dir():
            return []
        out = []
        for entry in pods.iterdir():
            try:
                if (entry / OWNER).read_text() == self.node:
                    out.append(entry.name)
            except OSError:
                continue
        return out
