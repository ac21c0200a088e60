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
