"""``shoal`` with the storage kinds: create from manifests, ``get pvc,pv`` and ``get sc`` with kubectl's
columns, ``describe``, ``api-resources``, delete."""

from __future__ import annotations

from tests.cli.conftest import ShoalCli

MANIFESTS = """\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: local-path
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: shoal.io/local-path
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: task-pv-volume
spec:
  storageClassName: manual
  capacity:
    storage: 10Gi
  accessModes:
  - ReadWriteOnce
  hostPath:
    path: /mnt/data
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: task-pv-claim
spec:
  accessModes:
  - ReadWriteOnce
  resources:
    requests:
      storage: 3Gi
"""


async def test_storage_kinds_from_the_cli(cli: ShoalCli) -> None:
    created = await cli("create", "-f", "-", stdin=MANIFESTS)
    assert created.rc == 0, created
    assert created.out.split() == ["storageclass.storage.k8s.io/local-path", "created",
                                   "persistentvolume/task-pv-volume", "created",
                                   "persistentvolumeclaim/task-pv-claim", "created"], created
    got = await cli("get", "pvc,pv")
    assert got.rc == 0, got
    lines = got.out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS",
                                "VOLUMEATTRIBUTESCLASS", "AGE"], got
    assert lines[1].split()[:4] == ["persistentvolumeclaim/task-pv-claim", "Pending", "local-path", "<unset>"], got
    header = next(line for line in lines if line.startswith("NAME") and "RECLAIM" in line)
    assert header.split() == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM",
                              "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"], got
    assert lines[-1].split()[:6] == ["persistentvolume/task-pv-volume", "10Gi", "RWO", "Retain", "Pending",
                                     "manual"], got
    classes = await cli("get", "sc")
    assert classes.out.splitlines()[1].split()[:6] == ["local-path", "(default)", "shoal.io/local-path", "Delete",
                                                       "WaitForFirstConsumer", "false"], classes
    described = await cli("describe", "pv", "task-pv-volume")
    assert described.rc == 0 and "Reclaim Policy:" in described.out and "/mnt/data" in described.out, described
    resources = await cli("api-resources")
    rows = {line.split()[0]: line.split() for line in resources.out.splitlines()[1:]}
    assert rows["persistentvolumeclaims"][1] == "pvc" and rows["storageclasses"][1] == "sc", resources
    assert "storage.k8s.io/v1" in rows["storageclasses"], resources
    # no PV controller here to release the claim's protection finalizer: do not wait for it to go
    deleted = await cli("delete", "pvc", "task-pv-claim", "--wait=false")
    assert deleted.rc == 0 and deleted.out.strip() == 'persistentvolumeclaim "task-pv-claim" deleted', deleted
