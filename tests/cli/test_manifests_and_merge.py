"""Pure parts of the tool: manifest loading, the apply merge, ages, pod status, table layout."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from protocol.humanize import duration
from protocol.kinds import by_kind
from protocol.kinds.pod import pod_status
from shoal.cli.apply_merge import LAST_APPLIED, applied, with_last_applied
from shoal.cli.errors import CliError
from shoal.cli.manifests import load
from shoal.cli.printers import Table
from shoal.cli.resources import display_name, parse_targets

DEPLOY = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx",
                                                   "ports": [{"containerPort": 80}],
                                                   "env": [{"name": "A", "value": "1"}]}]}}},
}


def _server_copy(manifest: dict) -> dict:  # type: ignore[type-arg]
    """What the API holds after creating ``manifest``: defaults and server fields added."""
    obj = with_last_applied(manifest)
    obj["metadata"].update(uid="u1", resourceVersion="7", creationTimestamp="2024-01-01T00:00:00Z")
    spec = obj["spec"]
    spec["strategy"] = {"type": "RollingUpdate"}
    container = spec["template"]["spec"]["containers"][0]
    container["imagePullPolicy"] = "IfNotPresent"
    container["ports"][0]["protocol"] = "TCP"
    obj["status"] = {"replicas": 2}
    return obj


def test_reapplying_the_same_manifest_changes_nothing() -> None:
    current = _server_copy(DEPLOY)
    assert applied(current, copy.deepcopy(DEPLOY)) == current


def test_apply_changes_what_the_manifest_changes_and_keeps_defaults() -> None:
    current = _server_copy(DEPLOY)
    changed = copy.deepcopy(DEPLOY)
    changed["spec"]["replicas"] = 3
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    result = applied(current, changed)
    container = result["spec"]["template"]["spec"]["containers"][0]
    assert result["spec"]["replicas"] == 3
    assert container["image"] == "nginx:2"
    assert container["imagePullPolicy"] == "IfNotPresent"  # a default kept
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert result["status"] == {"replicas": 2}
    assert result["metadata"]["uid"] == "u1" and result["metadata"]["resourceVersion"] == "7"
    assert '"replicas":3' in result["metadata"]["annotations"][LAST_APPLIED]


def test_apply_removes_what_the_previous_manifest_set_and_this_one_drops() -> None:
    current = _server_copy(DEPLOY)
    current["metadata"]["labels"]["added-by-someone"] = "x"
    changed = copy.deepcopy(DEPLOY)
    changed["metadata"]["labels"] = {"tier": "front"}
    del changed["spec"]["template"]["spec"]["containers"][0]["env"]
    result = applied(current, changed)
    assert result["metadata"]["labels"] == {"tier": "front", "added-by-someone": "x"}
    assert "env" not in result["spec"]["template"]["spec"]["containers"][0]
    assert result["spec"]["strategy"] == {"type": "RollingUpdate"}  # never in a manifest: kept


def test_manifests_multi_document_lists_and_directories(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text("kind: Namespace\nmetadata: {name: a}\n---\n---\n"
                                     "kind: ConfigMap\nmetadata: {name: c}\n")
    (tmp_path / "sub" / "b.json").write_text(
        '{"kind": "List", "items": [{"kind": "Pod", "metadata": {"name": "p"}}]}')
    (tmp_path / "notes.txt").write_text("not a manifest")
    manifests = load([str(tmp_path)])
    assert [(m.obj["kind"], m.obj["metadata"]["name"]) for m in manifests] == [
        ("Namespace", "a"), ("ConfigMap", "c"), ("Pod", "p")]
    assert manifests[1].source.endswith("a.yaml (document 3)")


@pytest.mark.parametrize(("text", "expected"), [
    ("kind: ConfigMap\nmetadata:\n  name: x\n data: 1\n", "line 4"),
    ("kind: Gizmo\nmetadata: {name: x}\n", "unknown kind 'Gizmo'"),
    ("metadata: {name: x}\n", "has no kind"),
    ("kind: Pod\nmetadata: {}\n", "no metadata.name"),
    ("- a\n- b\n", "expected an object"),
])
def test_bad_manifests_name_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CliError, match=expected):
        load([str(path)])


def test_missing_path() -> None:
    with pytest.raises(CliError, match="does not exist"):
        load(["/no/such/file.yaml"])


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (0, "0s"), (5, "5s"), (119, "119s"), (180, "3m"), (185, "3m5s"), (700, "11m"),
    (3 * 3600 + 60, "3h1m"), (9 * 3600, "9h"), (50 * 3600, "2d2h"), (30 * 86400, "30d"),
    (800 * 86400, "2y70d"),
])
def test_ages_like_kubectl(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def _pod(status: dict, **meta: str) -> dict:  # type: ignore[type-arg]
    return {"kind": "Pod", "metadata": {"name": "p", **meta},
            "spec": {"containers": [{"name": "c"}],
                     "initContainers": [{"name": "i"}] if "init" in status else []},
            "status": status}


def test_pod_status_like_kubectl() -> None:
    waiting = {"phase": "Running", "containerStatuses": [
        {"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 4}]}
    assert pod_status(_pod(waiting)) == "CrashLoopBackOff"
    pulled = {"phase": "Pending", "containerStatuses": [
        {"name": "c", "state": {"waiting": {"reason": "ErrImagePull"}}}]}
    assert pod_status(_pod(pulled)) == "ErrImagePull"
    done = {"phase": "Succeeded", "containerStatuses": [
        {"name": "c", "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}
    assert pod_status(_pod(done)) == "Completed"
    assert pod_status(_pod({"phase": "Running"}, deletionTimestamp="2024-01-01T00:00:00Z")) == "Terminating"
    init = {"phase": "Pending", "init": True,
            "initContainerStatuses": [{"name": "i", "state": {"running": {}}}]}
    assert pod_status(_pod(init)) == "Init:0/1"
    assert pod_status(_pod({"phase": "Pending"})) == "Pending"


def test_targets_and_names() -> None:
    [pods] = parse_targets(["po", "a", "b"])
    assert pods.info.kind == "Pod" and pods.names == ["a", "b"]
    assert [t.info.kind for t in parse_targets(["deploy/web", "svc/web"])] == ["Deployment", "Service"]
    assert [t.info.kind for t in parse_targets(["pods,svc"])] == ["Pod", "Service"]
    assert display_name(by_kind("Deployment"), "web") == "deployment.apps/web"
    with pytest.raises(CliError, match="doesn't have a resource type 'gizmos'"):
        parse_targets(["gizmos"])


def test_table_columns_align() -> None:
    table = Table(by_kind("Namespace"), now=0.0)
    lines = table.lines([table.header(), ["default", "Active", "5s"], ["a-much-longer-name", "Active", "1d"]])
    assert lines[0] == "NAME                 STATUS   AGE"
    assert lines[2] == "a-much-longer-name   Active   1d"
