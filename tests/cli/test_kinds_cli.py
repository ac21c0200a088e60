"""The kind registry seen from ``shoal``: API warnings printed as kubectl prints them, and a kind added
through one strategy module (PriorityClass) created, listed with its columns, described and deleted."""

from __future__ import annotations

from tests.cli.conftest import ShoalCli

DEPRECATED = """\
apiVersion: v1
kind: Pod
metadata:
  name: old-selector
spec:
  nodeSelector:
    beta.kubernetes.io/arch: amd64
  containers:
  - name: c
    image: localhost/shoal/busybox
"""

PRIORITY_CLASS = """\
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: high-priority
value: 1000000
globalDefault: false
description: for the pods that matter
"""


async def test_api_warnings_are_printed_to_stderr(cli: ShoalCli) -> None:
    created = await cli("create", "-f", "-", stdin=DEPRECATED)
    assert created.rc == 0, created
    assert created.out.strip() == "pod/old-selector created"
    assert created.err.splitlines() == [
        'Warning: spec.nodeSelector[beta.kubernetes.io/arch]: deprecated since v1.14; use "kubernetes.io/arch" '
        "instead"], created
    applied = await cli("apply", "-f", "-", stdin=DEPRECATED.replace("name: old-selector", "name: old-2"))
    assert applied.rc == 0 and "Warning: spec.nodeSelector[beta.kubernetes.io/arch]" in applied.err, applied
    quiet = await cli("get", "pods")
    assert quiet.rc == 0 and "Warning" not in quiet.err, quiet


async def test_priority_class_end_to_end(cli: ShoalCli) -> None:
    created = await cli("create", "-f", "-", stdin=PRIORITY_CLASS)
    assert created.rc == 0, created
    assert created.out.strip() == "priorityclass.scheduling.k8s.io/high-priority created"
    got = await cli("get", "pc")
    assert got.rc == 0, got
    header, row = got.out.splitlines()
    assert header.split() == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE"]
    assert row.split()[:3] == ["high-priority", "1000000", "false"]
    wide = await cli("get", "priorityclasses", "-o", "wide")
    assert wide.out.splitlines()[0].split()[-1] == "PREEMPTIONPOLICY"
    assert wide.out.splitlines()[1].split()[-1] == "PreemptLowerPriority"
    resources = await cli("api-resources")
    assert any(line.split()[:2] == ["priorityclasses", "pc"] for line in resources.out.splitlines()), resources
    described = await cli("describe", "pc", "high-priority")
    assert described.rc == 0 and "high-priority" in described.out, described
    bad = await cli("create", "-f", "-", stdin=PRIORITY_CLASS.replace("value: 1000000", "value: 2000000000"))
    assert bad.rc != 0 and "value" in bad.err, bad
    deleted = await cli("delete", "pc", "high-priority")
    assert deleted.rc == 0, deleted
    assert (await cli("get", "pc")).out == ""


DAEMONSET_AND_BUDGET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      nodeSelector: {role: edge}
      containers:
      - name: agent
        image: localhost/shoal/busybox
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: agent-pdb
spec:
  maxUnavailable: 1
  selector:
    matchLabels: {app: agent}
"""


async def test_daemonset_and_budget_end_to_end(cli: ShoalCli) -> None:
    created = await cli("apply", "-f", "-", stdin=DAEMONSET_AND_BUDGET)
    assert created.rc == 0, created
    assert created.out.split() == ["daemonset.apps/agent", "created", "poddisruptionbudget.policy/agent-pdb",
                                   "created"], created
    got = await cli("get", "ds")
    header, row = got.out.splitlines()
    assert header.split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE",
                              "SELECTOR", "AGE"]
    assert row.split()[:7] == ["agent", "0", "0", "0", "0", "0", "role=edge"]
    wide = await cli("get", "daemonsets", "-o", "wide")
    assert wide.out.splitlines()[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide.out.splitlines()[1].split()[-3:] == ["agent", "localhost/shoal/busybox", "app=agent"]
    pdb = await cli("get", "pdb")
    assert pdb.out.splitlines()[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED",
                                               "DISRUPTIONS", "AGE"]
    assert pdb.out.splitlines()[1].split()[:4] == ["agent-pdb", "<none>", "1", "0"]
    shown = await cli("get", "-o", "yaml", "ds", "agent")
    assert "maxUnavailable: 1" in shown.out and "maxSurge: 0" in shown.out and "revisionHistoryLimit: 10" in shown.out
    resources = await cli("api-resources")
    lines = [line.split() for line in resources.out.splitlines()]
    assert any(line[:2] == ["daemonsets", "ds"] for line in lines), resources
    assert any(line[:2] == ["poddisruptionbudgets", "pdb"] for line in lines), resources
    described = await cli("describe", "ds", "agent")
    assert described.rc == 0 and "agent" in described.out, described
    bad = await cli("apply", "-f", "-", stdin=DAEMONSET_AND_BUDGET.replace("maxUnavailable: 1",
                                                                         "maxUnavailable: 1\n  minAvailable: 1"))
    assert bad.rc != 0 and "minAvailable and maxUnavailable" in bad.err, bad
    for kind, name in (("ds", "agent"), ("pdb", "agent-pdb")):
        assert (await cli("delete", kind, name)).rc == 0
