"""Pure table tests of the volume plan (what a pod's volumes are, their files, its mounts) and the
AtomicWriter on a temp dir."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from agents.kubelet.cri import Mount
from agents.kubelet.envvars import PodFacts
from agents.kubelet.volumes import atomic_write, current_payload
from agents.kubelet.volumes_plan import (
    FileEntry,
    VolumeError,
    container_mounts,
    hostpath_check,
    payload,
    pod_volumes,
    token_ref,
    token_sources,
)

CM = {"kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "ns"}, "data": {"a.conf": "A", "b": "B"}}
SECRET = {"kind": "Secret", "metadata": {"name": "s", "namespace": "ns"},
          "data": {"user": base64.b64encode(b"admin").decode()}}
SOURCES = {("ConfigMap", "ns", "cfg"): CM, ("Secret", "ns", "s"): SECRET}
FACTS = PodFacts(node_name="n1", node_cpu_millis=1000, node_memory_bytes=1 << 30)


def pod(*volumes: dict, containers: list | None = None) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
            "spec": {"volumes": list(volumes), "containers": containers or [{"name": "c"}]}}


def test_pod_volumes_paths_and_kinds() -> None:
    p = pod({"name": "scratch", "emptyDir": {}}, {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": "host", "hostPath": {"path": "/srv/data/", "type": "DirectoryOrCreate"}},
            {"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "sec", "secret": {"secretName": "s"}})
    v = pod_volumes(p, "/state", "u1")
    assert v["scratch"].path == "/state/pods/u1/volumes/kubernetes.io~empty-dir/scratch" and not v["scratch"].tmpfs
    assert v["mem"].tmpfs and v["mem"].size_bytes == 1 << 20
    assert v["host"].path == "/srv/data" and v["host"].host_path_type == "DirectoryOrCreate"
    assert v["cfg"].read_only and not v["cfg"].tmpfs
    assert v["sec"].tmpfs and v["sec"].read_only and v["sec"].path.endswith("kubernetes.io~secret/sec")


@pytest.mark.parametrize(("volume", "message"), [
    ({"name": "x", "nfs": {"server": "s"}}, "unsupported volume type nfs"),
    ({"name": "x", "hostPath": {"path": "relative"}}, "must be absolute"),
    ({"name": "x", "hostPath": {"path": "/a", "type": "Weird"}}, "unknown hostPath.type"),
    ({"name": "x", "emptyDir": {"medium": "HugePages"}}, "unsupported emptyDir.medium"),
    ({"name": "x", "emptyDir": {"sizeLimit": "lots"}}, "sizeLimit"),
])
def test_refused_volumes(volume: dict, message: str) -> None:
    with pytest.raises(VolumeError, match=message):
        pod_volumes(pod(volume), "/state", "u1")


def files(volume: dict, p: dict | None = None) -> dict[str, FileEntry]:
    return payload(p or pod(volume), volume, SOURCES, FACTS)


def test_config_map_and_secret_payloads() -> None:
    assert files({"name": "v", "configMap": {"name": "cfg"}}) == {"a.conf": FileEntry(b"A", 0o644),
                                                                  "b": FileEntry(b"B", 0o644)}
    assert files({"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o400,
                                             "items": [{"key": "b", "path": "sub/bee", "mode": 0o600},
                                                       {"key": "a.conf", "path": "a"}]}}) == {
        "sub/bee": FileEntry(b"B", 0o600), "a": FileEntry(b"A", 0o400)}
    assert files({"name": "v", "secret": {"secretName": "s"}}) == {"user": FileEntry(b"admin", 0o644)}
    assert files({"name": "v", "configMap": {"name": "absent", "optional": True}}) == {}
    optional_items = {"name": "cfg", "optional": True, "items": [{"key": "no", "path": "x"}]}
    assert files({"name": "v", "configMap": optional_items}) == {}


@pytest.mark.parametrize(("volume", "message"), [
    ({"name": "v", "configMap": {"name": "absent"}}, 'volume "v" : configmap "absent" not found'),
    ({"name": "v", "secret": {"secretName": "absent"}}, 'secret "absent" not found'),
    ({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "zz", "path": "z"}]}}, "has no key 'zz'"),
    ({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "b", "path": "../escape"}]}}, "invalid item path"),
    ({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "b", "path": "/abs"}]}}, "invalid item path"),
    ({"name": "v", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
     "no token for service account 'default' yet"),
    ({"name": "v", "projected": {"sources": [{"clusterTrustBundle": {"path": "t"}}]}},
     "unsupported projected source"),
])
def test_payload_errors(volume: dict, message: str) -> None:
    with pytest.raises(VolumeError, match=message):
        files(volume)


def test_downward_and_projected() -> None:
    c = {"name": "c", "resources": {"limits": {"memory": "64Mi"}}}
    v = {"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}]}}
    assert files(v, pod(v, containers=[c])) == {"labels": FileEntry(b'app="x"', 0o644),
                                               "name": FileEntry(b"p", 0o400), "mem": FileEntry(b"64", 0o644)}
    proj = {"name": "all", "projected": {"defaultMode": 0o440, "sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "b", "path": "cm/b"}]}},
        {"secret": {"name": "s"}},
        {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}
    assert files(proj) == {"cm/b": FileEntry(b"B", 0o440), "user": FileEntry(b"admin", 0o440),
                           "ns": FileEntry(b"ns", 0o440)}


@pytest.mark.parametrize(("type_", "found", "expected"), [
    ("", "missing", "ok"), ("", "file", "ok"),
    ("DirectoryOrCreate", "missing", "create_directory"), ("DirectoryOrCreate", "directory", "ok"),
    ("Directory", "directory", "ok"), ("FileOrCreate", "missing", "create_file"), ("File", "file", "ok"),
    ("Socket", "socket", "ok"), ("CharDevice", "char", "ok"), ("BlockDevice", "block", "ok"),
    ("Directory", "missing", "does not exist"), ("Directory", "file", "is not a directory"),
    ("File", "directory", "is not a file"), ("FileOrCreate", "directory", "is not a file"),
    ("DirectoryOrCreate", "file", "is not a directory"), ("Socket", "file", "is not a socket"),
    ("CharDevice", "block", "is not a character device"), ("BlockDevice", "char", "is not a block device"),
])
def test_hostpath_check(type_: str, found: str, expected: str) -> None:
    if expected in ("ok", "create_directory", "create_file"):
        assert hostpath_check("/p", type_, found) == expected  # type: ignore[arg-type]
    else:
        with pytest.raises(VolumeError, match=expected):
            hostpath_check("/p", type_, found)  # type: ignore[arg-type]


def test_container_mounts() -> None:
    p = pod({"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}})
    volumes = pod_volumes(p, "/s", "u1")
    c = {"name": "c", "volumeMounts": [{"name": "data", "mountPath": "/data"},
                                       {"name": "data", "mountPath": "/ro", "readOnly": True, "subPath": "x/y"},
                                       {"name": "cfg", "mountPath": "/etc/app"}]}
    mounts = [m.mount for m in container_mounts(c, volumes)]
    base = "/s/pods/u1/volumes/kubernetes.io~empty-dir/data"
    assert mounts == [Mount("/data", base), Mount("/ro", base + "/x/y", read_only=True),
                      Mount("/etc/app", "/s/pods/u1/volumes/kubernetes.io~configmap/cfg", read_only=True)]
    for bad, message in [({"name": "nope", "mountPath": "/x"}, "names no volume"),
                         ({"name": "data", "mountPath": "rel"}, "must be absolute"),
                         ({"name": "data", "mountPath": "/x", "subPath": "../up"}, "subPath"),
                         ({"name": "data", "mountPath": "/x", "subPath": "/abs"}, "subPath")]:
        with pytest.raises(VolumeError, match=message):
            container_mounts({"name": "c", "volumeMounts": [bad]}, volumes)


def test_atomic_writer(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert atomic_write(target, {"a": FileEntry(b"1", 0o644), "d/b": FileEntry(b"2", 0o400)})
    first = os.readlink(target / "..data")
    assert first.startswith("..20") and (target / first).is_dir()
    assert os.readlink(target / "a") == "..data/a" and os.readlink(target / "d") == "..data/d"
    assert (target / "a").read_bytes() == b"1" and (target / "d" / "b").stat().st_mode & 0o777 == 0o400
    assert not atomic_write(target, {"a": FileEntry(b"1", 0o644), "d/b": FileEntry(b"2", 0o400)})  # unchanged
    assert atomic_write(target, {"a": FileEntry(b"new", 0o644)})
    second = os.readlink(target / "..data")
    assert second != first and not (target / first).exists()  # the old version removed after the switch
    assert (target / "a").read_bytes() == b"new" and not (target / "d").exists()
    assert current_payload(target) == {"a": FileEntry(b"new", 0o644)}
    assert sorted(p.name for p in target.iterdir()) == sorted(["..data", second, "a"])


def test_sub_path_expr_and_propagation() -> None:
    p = pod({"name": "data", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/srv"}})
    volumes = pod_volumes(p, "/s", "u1")
    c = {"name": "c", "volumeMounts": [
        {"name": "data", "mountPath": "/logs", "subPathExpr": "logs/$(POD_NAME)"},
        {"name": "host", "mountPath": "/h", "mountPropagation": "HostToContainer"},
        {"name": "host", "mountPath": "/b", "mountPropagation": "Bidirectional"},
        {"name": "data", "mountPath": "/n", "mountPropagation": "None"}]}
    mounts = [m.mount for m in container_mounts(c, volumes, {"POD_NAME": "web-1"})]
    assert mounts == [Mount("/logs", "/s/pods/u1/volumes/kubernetes.io~empty-dir/data/logs/web-1"),
                      Mount("/h", "/srv", propagation="rslave"), Mount("/b", "/srv", propagation="rshared"),
                      Mount("/n", "/s/pods/u1/volumes/kubernetes.io~empty-dir/data")]
    m = {"name": "data", "mountPath": "/x"}
    for bad, message in [({**m, "subPathExpr": "$(NOPE)"}, "does not have"),
                         ({**m, "subPathExpr": "$(UP)"}, "subPath"),
                         ({**m, "subPath": "a", "subPathExpr": "b"}, "mutually exclusive"),
                         ({**m, "mountPropagation": "Sideways"}, "unknown mountPropagation"),
                         ({**m, "mountPropagation": ["x"]}, "unknown mountPropagation"),
                         ({**m, "mountPropagation": "Bidirectional"}, "hostPath volumes only")]:
        with pytest.raises(VolumeError, match=message):
            container_mounts({"name": "c", "volumeMounts": [bad]}, volumes, {"UP": "../x"})


async def test_orphans_are_removed_only_by_the_node_that_made_them(tmp_path: Path) -> None:
    import structlog

    from agents.kubelet.cri import ContainerConfig, SandboxConfig
    from agents.kubelet.volumes import PodVolumes

    async def fetch(kind: str, namespace: str, name: str) -> None:
        return None

    def facts(pod: dict, sandbox: object) -> PodFacts:
        return FACTS

    made = {}
    for node in ("a", "b"):
        volumes = PodVolumes(tmp_path, fetch, node=node, log=structlog.get_logger(), facts=facts)
        p = pod({"name": "data", "emptyDir": {}}, containers=[{"name": "c", "volumeMounts": [
            {"name": "data", "mountPath": "/data"}]}])
        p["metadata"]["uid"] = f"uid-{node}"
        config = await volumes.prepare(p, SandboxConfig(f"uid-{node}", "ns", "p", node), ContainerConfig("c", "i"))
        assert config.mounts[0].source == str(tmp_path / "pods" / f"uid-{node}" / "volumes" /
                                              "kubernetes.io~empty-dir" / "data")
        made[node] = volumes
    await made["a"].cleanup_orphans(set())
    assert sorted(p.name for p in (tmp_path / "pods").iterdir()) == ["uid-b"]
    await made["b"].cleanup_orphans({"uid-b"})
    assert (tmp_path / "pods" / "uid-b").is_dir()
    await made["b"].cleanup("uid-b")
    assert not (tmp_path / "pods" / "uid-b").exists()


def test_projected_service_account_token() -> None:
    source = {"path": "token", "expirationSeconds": 600, "audience": "vault"}
    volume = {"name": "v", "projected": {"defaultMode": 0o640, "sources": [{"serviceAccountToken": source}]}}
    p = pod(volume)
    assert token_sources(p) == [source]
    ref = token_ref(p, source)
    assert ref[0] == "ServiceAccountToken" and ref[2] == "vault|600"
    assert payload(p, volume, {**SOURCES, ref: {"token": "jwt"}}, FACTS) == {"token": FileEntry(b"jwt", 0o640)}


class _Pod(dict):  # type: ignore[type-arg]
    """A pod map that can be weakly referenced."""


async def test_prepared_pods_are_not_kept_and_file_volumes_follow_the_sandbox_address(tmp_path: Path) -> None:
    """PodVolumes keeps no pod object after ``prepare`` (a hollow process prepares 75,000); for a pod with file
    volumes it keeps the sandbox, whose address a refresh writes into the downward API files."""
    import gc
    import weakref

    import structlog

    from agents.kubelet.cri import ContainerConfig, SandboxConfig
    from agents.kubelet.volumes import PodVolumes

    async def fetch(kind: str, namespace: str, name: str) -> None:
        return None

    def facts(pod: dict[str, Any], sandbox: SandboxConfig | None) -> PodFacts:
        return PodFacts(node_name="n1", pod_ip=sandbox.pod_ip if sandbox else "", node_cpu_millis=1000,
                        node_memory_bytes=1 << 30)

    volumes = PodVolumes(tmp_path, fetch, node="n1", log=structlog.get_logger(), facts=facts)
    plain = _Pod(pod(containers=[{"name": "c"}]))
    await volumes.prepare(plain, SandboxConfig("u1", "ns", "p", "n1", pod_ip="10.0.0.9"), ContainerConfig("c", "i"))
    gone = weakref.ref(plain)
    del plain
    gc.collect()
    assert gone() is None

    ip = {"name": "ip", "downwardAPI": {"items": [{"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}}]}}
    filed = _Pod(pod(ip, containers=[{"name": "c", "volumeMounts": [{"name": "ip", "mountPath": "/ip"}]}]))
    filed["metadata"]["uid"] = "u2"
    await volumes.prepare(filed, SandboxConfig("u2", "ns", "p", "n1", pod_ip="10.0.0.7"), ContainerConfig("c", "i"))
    later = pod(ip, containers=[{"name": "c", "volumeMounts": [{"name": "ip", "mountPath": "/ip"}]}])
    later["metadata"]["uid"] = "u2"  # a newer version of the pod, without podIP in its status
    await volumes.refresh(later)
    gone = weakref.ref(filed)
    del filed
    gc.collect()
    assert gone() is None
    [written] = (tmp_path / "pods" / "u2" / "volumes").glob("*/ip/ip")
    assert written.read_text() == "10.0.0.7"
