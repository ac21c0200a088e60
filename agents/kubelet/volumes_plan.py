"""What a pod's volumes are and what its containers mount: computed from the Pod and the objects it
references, no I/O (``volumes.py`` carries it out).

Each volume lives under ``<state_dir>/pods/<uid>/volumes/<plugin>/<name>`` as in Kubernetes:
- ``emptyDir``: an empty directory shared by the pod's containers (``medium: Memory``: a tmpfs of at
  most ``sizeLimit``), removed with the pod;
- ``hostPath``: the node's path itself, checked against ``type`` (``hostpath_check``);
- ``configMap``, ``secret``, ``downwardAPI``, ``projected``: files (``payload``) written atomically by
  ``volumes.AtomicWriter``; secret and projected volumes on a tmpfs. They are always mounted read-only;
- ``persistentVolumeClaim``: the node directory of the PersistentVolume the claim is bound to (its
  ``hostPath`` or ``local`` path, ``claim_source``), created when the volume says DirectoryOrCreate; it
  outlives the pod (the data is the claim's, not the pod's).

``container_mounts`` turns a container's ``volumeMounts`` into runtime ``Mount``s (``subPath`` appended to
the volume's directory, which the I/O side resolves and keeps inside the volume).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agents.kubelet.cri import Mount
from agents.kubelet.envvars import (
    ConfigError,
    PodFacts,
    Sources,
    expand,
    field_ref,
    not_found,
    object_data,
    resource_field_ref,
)
from protocol.objects import Obj, namespace_of
from protocol.podrefs import CONFIG_MAP, SECRET
from protocol.quantity import QuantityError, memory_bytes

DEFAULT_MODE = 0o644
FILE_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")
PLUGINS = {
    "emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
}
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
                   "BlockDevice")


CLAIM = "persistentVolumeClaim"
Claims = Mapping[str, "tuple[Obj | None, Obj | None]"]
"""Claim name -> (the claim, the PersistentVolume it is bound to), as the kubelet read them."""


class VolumeError(ConfigError):
    """A volume cannot be set up (a missing ConfigMap/Secret, a hostPath of the wrong type, an unsupported
    volume type): the pod's containers wait in ContainerCreating, with a FailedMount event."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    data: bytes
    mode: int


Payload = dict[str, FileEntry]
"""Relative path -> content and mode: what a file volume holds."""


@dataclass(frozen=True, slots=True)
class Volume:
    """One pod volume: where it lives on the node and how it is made."""

    name: str
    type: str  # emptyDir | hostPath | configMap | secret | downwardAPI | projected | persistentVolumeClaim
    path: str
    tmpfs: bool = False
    size_bytes: int | None = None
    host_path_type: str = ""
    read_only: bool = False  # file volumes: always mounted read-only


def pod_dir(state_dir: Path | str, uid: str) -> str:
    return posixpath.join(str(state_dir), "pods", uid)


def _type_of(volume: Obj) -> str:
    known = [t for t in ("emptyDir", "hostPath", *FILE_VOLUMES, CLAIM) if isinstance(volume.get(t), dict)]
    if known:
        return known[0]
    others = [k for k in volume if k != "name"]
    raise VolumeError(f"volume {volume.get('name')!r}: unsupported volume type {others[0] if others else '(none)'}"
                      " (Shoal mounts emptyDir, hostPath, configMap, secret, downwardAPI, projected and "
                      "persistentVolumeClaim)")


def claim_names(pod: Obj) -> list[str]:
    """The claims the pod's volumes name, in order."""
    return [str(v[CLAIM]["claimName"]) for v in (pod.get("spec") or {}).get("volumes") or []
            if isinstance(v, dict) and isinstance(v.get(CLAIM), dict) and v[CLAIM].get("claimName")]


def claim_source(volume: str, claim_name: str, claim: Obj | None, pv: Obj | None) -> tuple[str, str]:
    """The node path and hostPath type of a claim's volume; VolumeError while the claim is missing or unbound
    (the pod waits in ContainerCreating and is retried), or when its volume is not a node directory."""
    if claim is None:
        raise VolumeError(f'volume "{volume}": persistentvolumeclaim "{claim_name}" not found')
    volume_name = (claim.get("spec") or {}).get("volumeName")
    if not volume_name or ((claim.get("status") or {}).get("phase") not in (None, "Bound")):
        raise VolumeError(f'volume "{volume}": persistentvolumeclaim "{claim_name}" is not bound')
    if pv is None:
        raise VolumeError(f'volume "{volume}": persistentvolume "{volume_name}" not found')
    spec = pv.get("spec") or {}
    for source, default_type in (("hostPath", ""), ("local", "Directory")):
        path = (spec.get(source) or {}).get("path") if isinstance(spec.get(source), dict) else None
        if isinstance(path, str) and posixpath.isabs(path):
            type_ = str(spec[source].get("type") or default_type)
            if type_ not in ("", "Directory", "DirectoryOrCreate"):
                raise VolumeError(f'volume "{volume}": persistentvolume "{volume_name}" is not a directory ({type_})')
            return posixpath.normpath(path), type_
    raise VolumeError(f'volume "{volume}": persistentvolume "{volume_name}" has no hostPath or local path')


def pod_volumes(pod: Obj, state_dir: Path | str, uid: str, claims: Claims | None = None) -> dict[str, Volume]:
    """The pod's volumes by name (``claims``: what its persistentVolumeClaim volumes are bound to; None leaves
    those volumes out, for callers that want the others only). Raises VolumeError for a volume Shoal cannot
    make."""
    out: dict[str, Volume] = {}
    base = pod_dir(state_dir, uid)
    for raw in (pod.get("spec") or {}).get("volumes") or []:
        if not isinstance(raw, dict) or not raw.get("name"):
            continue
        name = str(raw["name"])
        kind = _type_of(raw)
        source: Obj = raw[kind]
        if kind == "hostPath":
            path, type_ = str(source.get("path") or ""), str(source.get("type") or "")
            if not posixpath.isabs(path):
                raise VolumeError(f"volume {name!r}: hostPath.path must be absolute, not {path!r}")
            if type_ not in HOST_PATH_TYPES:
                raise VolumeError(f"volume {name!r}: unknown hostPath.type {type_!r}")
            out[name] = Volume(name, kind, posixpath.normpath(path), host_path_type=type_)
            continue
        if kind == CLAIM:
            if claims is None:
                continue
            claim_name = str(source.get("claimName") or "")
            claim, pv = claims.get(claim_name, (None, None))
            path, type_ = claim_source(name, claim_name, claim, pv)
            out[name] = Volume(name, kind, path, host_path_type=type_, read_only=bool(source.get("readOnly")))
            continue
        path = posixpath.join(base, "volumes", PLUGINS[kind], name)
        if kind == "emptyDir":
            memory = source.get("medium") == "Memory"
            if source.get("medium") not in (None, "", "Memory"):
                raise VolumeError(f"volume {name!r}: unsupported emptyDir.medium {source.get('medium')!r}")
            size = None
            if source.get("sizeLimit") is not None:
                try:
                    size = memory_bytes(source["sizeLimit"])
                except QuantityError as exc:
                    raise VolumeError(f"volume {name!r}: sizeLimit: {exc}") from None
            out[name] = Volume(name, kind, path, tmpfs=memory, size_bytes=size)
        else:
            out[name] = Volume(name, kind, path, tmpfs=kind in ("secret", "projected"), read_only=True)
    return out


# -- file volumes --------------------------------------------------------------------------------------


def _check_path(volume: str, path: str) -> str:
    """An item's ``path``: relative, no ``..`` element (Kubernetes' validation of key-to-path items)."""
    parts = path.split("/")
    if not path or posixpath.isabs(path) or ".." in parts or any(p.startswith("..") for p in parts):
        raise VolumeError(f"volume {volume!r}: invalid item path {path!r} (relative, without '..')")
    return posixpath.normpath(path)


def _mode(value: Any, default: int) -> int:
    return int(value) & 0o777 if isinstance(value, int) and not isinstance(value, bool) else default


def _object_files(volume: str, kind: str, source: Obj, namespace: str, sources: Sources,
                  default_mode: int) -> Payload:
    """A configMap/secret source (volume or projected): every key, or the listed ``items``."""
    name = str(source.get("name") or source.get("secretName") or "")
    optional = bool(source.get("optional"))
    data = object_data(kind, namespace, name, sources)
    if data is None:
        if optional:
            return {}
        raise VolumeError(f'MountVolume.SetUp failed for volume "{volume}" : {not_found(kind, name)}')
    items = [i for i in source.get("items") or [] if isinstance(i, dict)]
    if not items:
        return {_check_path(volume, k): FileEntry(v, default_mode) for k, v in data.items()}
    out: Payload = {}
    for item in items:
        key = str(item.get("key") or "")
        if key not in data:
            if optional:
                continue
            raise VolumeError(f'MountVolume.SetUp failed for volume "{volume}" : {kind.lower()} {namespace}/{name}'
                              f" has no key {key!r}")
        out[_check_path(volume, str(item.get("path") or key))] = FileEntry(data[key], _mode(item.get("mode"),
                                                                                              default_mode))
    return out


def _downward_files(volume: str, source: Obj, pod: Obj, facts: PodFacts, default_mode: int) -> Payload:
    out: Payload = {}
    containers = {str(c.get("name")): c for c in (pod.get("spec") or {}).get("containers") or []
                  if isinstance(c, dict)}
    for item in source.get("items") or []:
        if not isinstance(item, dict):
            continue
        path = _check_path(volume, str(item.get("path") or ""))
        if isinstance(item.get("fieldRef"), dict):
            value = field_ref(pod, str(item["fieldRef"].get("fieldPath") or ""), facts, whole_maps=True)
        elif isinstance(item.get("resourceFieldRef"), dict):
            ref = item["resourceFieldRef"]
            container = containers.get(str(ref.get("containerName") or ""))
            if container is None:
                raise VolumeError(f"volume {volume!r}: resourceFieldRef names no container of the pod "
                                  f"({ref.get('containerName')!r})")
            value = resource_field_ref(ref, container, facts)
        else:
            raise VolumeError(f"volume {volume!r}: item {path!r} needs fieldRef or resourceFieldRef")
        out[path] = FileEntry(value.encode(), _mode(item.get("mode"), default_mode))
    return out


def payload(pod: Obj, volume: Obj, sources: Sources, facts: PodFacts) -> Payload:
    """The files of a configMap/secret/downwardAPI/projected volume. Raises VolumeError (ConfigError for a
    bad downward API field) when a required object or key is missing."""
    name = str(volume.get("name"))
    kind = _type_of(volume)
    source: Obj = volume[kind]
    namespace = namespace_of(pod) or "default"
    default_mode = _mode(source.get("defaultMode"), DEFAULT_MODE)
    if kind == "configMap":
        return _object_files(name, CONFIG_MAP, source, namespace, sources, default_mode)
    if kind == "secret":
        return _object_files(name, SECRET, source, namespace, sources, default_mode)
    if kind == "downwardAPI":
        return _downward_files(name, source, pod, facts, default_mode)
    if kind != "projected":
        raise VolumeError(f"volume {name!r} is not a file volume")
    out: Payload = {}
    for item in source.get("sources") or []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("configMap"), dict):
            out.update(_object_files(name, CONFIG_MAP, item["configMap"], namespace, sources, default_mode))
        elif isinstance(item.get("secret"), dict):
            out.update(_object_files(name, SECRET, item["secret"], namespace, sources, default_mode))
        elif isinstance(item.get("downwardAPI"), dict):
            out.update(_downward_files(name, item["downwardAPI"], pod, facts, default_mode))
        else:
            raise VolumeError(f"volume {name!r}: unsupported projected source {sorted(item)} (configMap, secret "
                              "and downwardAPI are; serviceAccountToken is not yet)")
    return out


# -- hostPath ------------------------------------------------------------------------------------------

Found = Literal["missing", "directory", "file", "socket", "char", "block", "other"]
HostPathAction = Literal["ok", "create_directory", "create_file"]

_EXPECTED: Mapping[str, Found] = {"Directory": "directory", "DirectoryOrCreate": "directory", "File": "file",
                                  "FileOrCreate": "file", "Socket": "socket", "CharDevice": "char",
                                  "BlockDevice": "block"}
_NAMES: Mapping[str, str] = {"directory": "a directory", "file": "a file", "socket": "a socket",
                             "char": "a character device", "block": "a block device"}


def hostpath_check(path: str, type_: str, found: Found) -> HostPathAction:
    """What to do with a hostPath given what is at ``path`` now; VolumeError on a type mismatch
    (Kubernetes' hostPath type checker)."""
    if type_ == "":
        return "ok"
    expected = _EXPECTED[type_]
    if found == "missing":
        if type_ == "DirectoryOrCreate":
            return "create_directory"
        if type_ == "FileOrCreate":
            return "create_file"
        raise VolumeError(f"hostPath type check failed: {path} does not exist (type {type_})")
    if found != expected:
        raise VolumeError(f"hostPath type check failed: {path} is not {_NAMES[expected]} (type {type_})")
    return "ok"


# -- mounts --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedMount:
    mount: Mount
    volume: Volume
    sub_path: str = ""


def _sub_path(value: Any, volume: str) -> str:
    text = str(value or "")
    if not text:
        return ""
    parts = text.split("/")
    if posixpath.isabs(text) or ".." in parts:
        raise VolumeError(f"volumeMount of {volume!r}: subPath {text!r} must be relative, without '..'")
    return posixpath.normpath(text)


PROPAGATION = {None: "", "None": "", "HostToContainer": "rslave", "Bidirectional": "rshared"}


def _sub_path_expr(value: Any, volume: str, env: Mapping[str, str]) -> str:
    """``subPathExpr``: ``$(VAR)`` expanded from the container's environment; an unknown variable is an
    error (Kubernetes refuses to mount it)."""
    expanded = expand(str(value or ""), env.get)
    if "$(" in expanded:
        raise VolumeError(f"volumeMount of {volume!r}: subPathExpr {value!r} names a variable the container "
                          "does not have")
    return expanded


def container_mounts(container: Obj, volumes: Mapping[str, Volume],
                     env: Mapping[str, str] | None = None) -> list[PlannedMount]:
    """The container's ``volumeMounts`` as mounts (``subPath``, or ``subPathExpr`` expanded from ``env``,
    joined to the volume's path)."""
    out: list[PlannedMount] = []
    for vm in container.get("volumeMounts") or []:
        if not isinstance(vm, dict):
            continue
        name = str(vm.get("name") or "")
        volume = volumes.get(name)
        if volume is None:
            raise VolumeError(f"volumeMount {name!r} of container {container.get('name')!r} names no volume of "
                              "the pod")
        destination = str(vm.get("mountPath") or "")
        if not posixpath.isabs(destination):
            raise VolumeError(f"volumeMount {name!r}: mountPath must be absolute, not {destination!r}")
        if vm.get("subPath") and vm.get("subPathExpr"):
            raise VolumeError(f"volumeMount {name!r}: subPath and subPathExpr are mutually exclusive")
        raw_sub = _sub_path_expr(vm["subPathExpr"], name, env or {}) if vm.get("subPathExpr") else vm.get("subPath")
        sub = _sub_path(raw_sub, name)
        source = posixpath.join(volume.path, sub) if sub else volume.path
        read_only = bool(vm.get("readOnly")) or volume.read_only
        propagation = vm.get("mountPropagation")
        if not (propagation is None or isinstance(propagation, str)) or propagation not in PROPAGATION:
            raise VolumeError(f"volumeMount {name!r}: unknown mountPropagation {propagation!r}")
        if propagation == "Bidirectional" and volume.type != "hostPath":
            raise VolumeError(f"volumeMount {name!r}: Bidirectional propagation is for hostPath volumes only")
        out.append(PlannedMount(Mount(destination, source, read_only, propagation=PROPAGATION[propagation]),
                                volume, sub))
    return out


@dataclass
class VolumeState:
    """What the kubelet wrote for one pod's file volumes (volume name -> payload), to rewrite only changes."""

    written: dict[str, Payload] = field(default_factory=dict)
