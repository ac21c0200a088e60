"""persistentVolumeClaim volumes in the kubelet's pure volume plan: the bound volume's node directory, read-only
claims, and the errors that keep a pod in ContainerCreating while its claim is missing or unbound."""

from __future__ import annotations

import pytest

from agents.kubelet.volumes_plan import VolumeError, claim_names, container_mounts, pod_volumes
from protocol.objects import Obj


def pod(read_only: bool = False) -> Obj:
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": {
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data", "readOnly": read_only}},
                    {"name": "t", "emptyDir": {}}],
        "containers": [{"name": "c", "volumeMounts": [{"name": "d", "mountPath": "/data", "subPath": "sub"}]}]}}


def claim(volume: str | None = "pv1", phase: str = "Bound") -> Obj:
    return {"spec": {"volumeName": volume} if volume else {}, "status": {"phase": phase}}


def pv(**spec: Obj) -> Obj:
    return {"metadata": {"name": "pv1"}, "spec": spec}


def test_a_bound_claim_mounts_its_volume_directory() -> None:
    volumes = pod_volumes(pod(), "/state", "uid", {"data": (claim(), pv(hostPath={
        "path": "/srv/lp/pvc-1/", "type": "DirectoryOrCreate"}))})
    d = volumes["d"]
    assert (d.type, d.path, d.host_path_type, d.read_only) == ("persistentVolumeClaim", "/srv/lp/pvc-1",
                                                               "DirectoryOrCreate", False)
    (mount,) = container_mounts(pod()["spec"]["containers"][0], volumes)
    assert (mount.mount.source, mount.mount.destination, mount.mount.read_only) == ("/srv/lp/pvc-1/sub", "/data",
                                                                                    False)
    local = pod_volumes(pod(read_only=True), "/state", "uid", {"data": (claim(), pv(local={"path": "/mnt/disk"}))})
    assert (local["d"].path, local["d"].host_path_type, local["d"].read_only) == ("/mnt/disk", "Directory", True)


def test_claims_are_left_out_when_not_asked_for() -> None:
    assert set(pod_volumes(pod(), "/state", "uid")) == {"t"}
    assert claim_names(pod()) == ["data"]


@pytest.mark.parametrize(("found", "message"), [
    ((None, None), 'persistentvolumeclaim "data" not found'),
    ((claim(None, "Pending"), None), 'persistentvolumeclaim "data" is not bound'),
    ((claim("pv1", "Lost"), pv(hostPath={"path": "/x"})), "is not bound"),
    ((claim(), None), 'persistentvolume "pv1" not found'),
    ((claim(), pv(nfs={"path": "/x"})), "has no hostPath or local path"),
    ((claim(), pv(hostPath={"path": "/x", "type": "Socket"})), "is not a directory"),
])
def test_claims_that_cannot_be_mounted_yet(found: tuple[Obj | None, Obj | None], message: str) -> None:
    with pytest.raises(VolumeError, match=message):
        pod_volumes(pod(), "/state", "uid", {"data": found})
