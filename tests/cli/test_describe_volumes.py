"""``describe`` of pod volumes (what the kubelet really mounts, read-only where it is) and of the storage kinds."""

from __future__ import annotations

from shoal.cli.describe import describe

NOW = 1_800_000_000.0


def lines(text: str) -> list[str]:
    """Each line without its indentation and alignment (runs of spaces read as one)."""
    return [" ".join(line.split()) for line in text.splitlines()]


def test_pod_mounts_and_volumes_read_as_the_kubelet_mounts_them() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": {
        "containers": [{"name": "c", "image": "i", "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/config"},
            {"name": "data", "mountPath": "/data", "subPath": "sub"},
            {"name": "ro-data", "mountPath": "/ro"},
            {"name": "tmp", "mountPath": "/tmp", "readOnly": True}]}],
        "volumes": [{"name": "cfg", "configMap": {"name": "app"}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                    {"name": "ro-data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
                    {"name": "tmp", "emptyDir": {}},
                    {"name": "nfs", "nfs": {"server": "x", "path": "/"}}]}}
    out = lines(describe(pod, events=None, now=NOW))
    mounts = out[out.index(next(x for x in out if x.startswith("Mounts:"))):][:4]
    assert mounts == ["Mounts: /etc/config from cfg (ro)", '/data from data (rw,path="sub")', "/ro from ro-data (ro)",
                      "/tmp from tmp (ro)"]
    volumes = out[out.index("Volumes:"):]
    assert volumes[:4] == ["Volumes:", "cfg:", "Type: ConfigMap (a volume populated by a ConfigMap)",
                           "Name: app"]
    assert "Type: PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)" in volumes
    assert "ClaimName: data" in volumes and "ReadOnly: true" in volumes
    assert "Type: nfs (not mounted: Shoal's kubelet does not support this volume type)" in volumes


def test_storage_kinds() -> None:
    pvc = {"kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "default"},
           "spec": {"storageClassName": "local-path", "volumeName": "pvc-1", "volumeMode": "Filesystem"},
           "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}
    out = lines(describe(pvc, events=[], now=NOW))
    assert {"StorageClass: local-path", "Status: Bound", "Volume: pvc-1", "Capacity: 1Gi",
            "Access Modes: RWO"} <= set(out)
    pv = {"kind": "PersistentVolume", "metadata": {"name": "pvc-1"}, "spec": {
        "storageClassName": "local-path", "persistentVolumeReclaimPolicy": "Delete", "accessModes": ["ReadWriteOnce"],
        "capacity": {"storage": "1Gi"}, "claimRef": {"namespace": "default", "name": "data"},
        "hostPath": {"path": "/lp/pvc-1", "type": "DirectoryOrCreate"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]}}}, "status": {"phase": "Bound"}}
    out = lines(describe(pv, events=[], now=NOW))
    assert "Claim: default/data" in out and "Term 0: kubernetes.io/hostname In [n1]" in out
    assert "Path: /lp/pvc-1" in out
    sc = {"kind": "StorageClass", "metadata": {"name": "local-path", "annotations": {
        "storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "shoal.io/local-path",
        "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}
    out = lines(describe(sc, events=[], now=NOW))
    assert "IsDefaultClass: Yes" in out and "VolumeBindingMode: WaitForFirstConsumer" in out
