"""Which pods ``shoal drain`` evicts, skips or refuses (``shoal.cli.drain_plan``), table-driven as kubectl's
drain filters; and the ``all`` category ``shoal get all`` reads from the kind registry."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.kinds import in_category
from protocol.objects import Obj
from shoal.cli.drain_plan import (
    DAEMONSET_FATAL,
    DAEMONSET_WARNING,
    LOCAL_STORAGE_FATAL,
    LOCAL_STORAGE_WARNING,
    ORPHAN_DAEMON_FATAL,
    ORPHAN_DAEMON_WARNING,
    UNMANAGED_FATAL,
    UNMANAGED_WARNING,
    DrainOptions,
    classify,
    verdict,
)


def pod(name: str, *, owner: str | None = None, phase: str = "Running", empty_dir: bool = False,
        mirror: bool = False) -> Obj:
    metadata: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner:
        kind, _, owner_name = owner.partition("/")
        metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": kind, "name": owner_name, "uid": "u",
                                        "controller": True}]
    if mirror:
        metadata["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    volumes = [{"name": "scratch", "emptyDir": {}}] if empty_dir else []
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"nodeName": "n1", "volumes": volumes, "containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": phase}}


NONE = DrainOptions()
ALL = DrainOptions(ignore_daemonsets=True, delete_emptydir_data=True, force=True)
DAEMONS = {("default", "agent")}


@pytest.mark.parametrize(("case", "the_pod", "options", "expected"), [
    ("managed pod goes", pod("a", owner="ReplicaSet/web"), NONE, (True, None, None)),
    ("daemon pod refused", pod("a", owner="DaemonSet/agent"), NONE, (False, None, DAEMONSET_FATAL)),
    ("daemon pod ignored", pod("a", owner="DaemonSet/agent"), DrainOptions(ignore_daemonsets=True),
     (False, DAEMONSET_WARNING, None)),
    ("finished daemon pod goes", pod("a", owner="DaemonSet/agent", phase="Succeeded"), NONE, (True, None, None)),
    ("orphaned daemon pod refused", pod("a", owner="DaemonSet/gone"), DrainOptions(ignore_daemonsets=True),
     (False, None, ORPHAN_DAEMON_FATAL)),
    ("orphaned daemon pod forced", pod("a", owner="DaemonSet/gone"), DrainOptions(force=True),
     (True, ORPHAN_DAEMON_WARNING, None)),
    ("mirror pod skipped in silence", pod("a", mirror=True), NONE, (False, None, None)),
    ("emptyDir refused", pod("a", owner="ReplicaSet/web", empty_dir=True), NONE, (False, None, LOCAL_STORAGE_FATAL)),
    ("emptyDir allowed", pod("a", owner="ReplicaSet/web", empty_dir=True), DrainOptions(delete_emptydir_data=True),
     (True, LOCAL_STORAGE_WARNING, None)),
    ("finished emptyDir pod goes", pod("a", owner="ReplicaSet/web", empty_dir=True, phase="Failed"), NONE,
     (True, None, None)),
    ("unmanaged refused", pod("a"), DrainOptions(ignore_daemonsets=True, delete_emptydir_data=True),
     (False, None, UNMANAGED_FATAL)),
    ("unmanaged forced", pod("a"), DrainOptions(force=True), (True, UNMANAGED_WARNING, None)),
    ("finished unmanaged goes", pod("a", phase="Succeeded"), NONE, (True, None, None)),
    ("emptyDir checked before unmanaged", pod("a", empty_dir=True), NONE, (False, None, LOCAL_STORAGE_FATAL)),
    ("unmanaged emptyDir with both flags", pod("a", empty_dir=True), ALL, (True, UNMANAGED_WARNING, None)),
])
def test_verdict(case: str, the_pod: Obj, options: DrainOptions, expected: tuple[bool, str | None, str | None]) -> None:
    assert verdict(the_pod, options, DAEMONS) == expected, case


def test_classify_groups_pods_by_message_as_kubectl_prints_them() -> None:
    pods = [pod("web-1", owner="ReplicaSet/web"), pod("agent-x", owner="DaemonSet/agent"), pod("lone-1"),
            pod("lone-2"), pod("scratch", owner="ReplicaSet/web", empty_dir=True)]
    plan = classify(pods, NONE, DAEMONS)
    assert [p["metadata"]["name"] for p in plan.evict] == ["web-1"]
    assert plan.error_lines() == [
        f"{DAEMONSET_FATAL}: default/agent-x",
        f"{UNMANAGED_FATAL}: default/lone-1, default/lone-2",
        f"{LOCAL_STORAGE_FATAL}: default/scratch",
    ]
    plan = classify(pods, ALL, DAEMONS)
    assert [p["metadata"]["name"] for p in plan.evict] == ["web-1", "lone-1", "lone-2", "scratch"]
    assert not plan.errors
    assert plan.warning_text() == (f"{DAEMONSET_WARNING}: default/agent-x; "
                                   f"{UNMANAGED_WARNING}: default/lone-1, default/lone-2; "
                                   f"{LOCAL_STORAGE_WARNING}: default/scratch")


def test_the_all_category_is_kubernetes_in_kubectls_order() -> None:
    assert [k.plural for k in in_category("all")] == [
        "pods", "replicationcontrollers", "services", "daemonsets", "deployments", "replicasets", "statefulsets",
        "horizontalpodautoscalers", "cronjobs", "jobs"]
    assert in_category("nothing") == ()
