"""Init containers, table-tested on the pure parts: what the plan does (one at a time, in order, to
completion, retried per restartPolicy), the status it reports, and the STATUS ``shoal get pods`` shows."""

from __future__ import annotations

import pytest

from agents.kubelet.backoff import BackoffEntry
from agents.kubelet.cri import RuntimeContainer
from agents.kubelet.plan import PodNotes, PodRuntimeView, RunContainer, StartFailure, init_progress, plan
from agents.kubelet.status import ProbeView, compute_status
from protocol.kinds.pod import pod_status
from protocol.objects import Obj
from tests.agents.test_kubelet_units import NOW, UID, ctr, kinds, sandbox, view


def pod(policy: str = "Always", inits: tuple[str, ...] = ("i1", "i2")) -> Obj:
    return {"kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": UID, "resourceVersion": "5"},
            "spec": {"initContainers": [{"name": n, "image": "img"} for n in inits],
                     "containers": [{"name": "c", "image": "img"}], "restartPolicy": policy},
            "status": {"phase": "Pending"}}


def done(cid: str, name: str, attempt: int = 0) -> RuntimeContainer:
    return ctr(cid, attempt, "exited", 0, name=name)


def failed(cid: str, name: str, attempt: int = 0, code: int = 1) -> RuntimeContainer:
    return ctr(cid, attempt, "exited", code, name=name)


def reported(p: Obj) -> Obj:
    completed = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    statuses = [{"name": n, "ready": True, "restartCount": 0, "state": completed} for n in ("i1", "i2")]
    return {**p, "status": {"phase": "Running", "initContainerStatuses": statuses}}


BACKING_OFF = PodNotes(backoff={"i1": BackoffEntry(20, NOW - 5)})

# (case, pod, runtime view, notes, actions, the container run (name) or None, phase, STATUS column)
CASES: list[tuple[str, Obj, PodRuntimeView, PodNotes | None, list[str], str | None, str, str]] = [
    ("new pod: sandbox and the first init container only", pod(), view(), None,
     ["CreateSandbox", "RunContainer"], "i1", "Pending", "Init:0/2"),
    ("first init running: wait for it", pod(), view(sandbox(), ctr("a", name="i1")), None,
     [], None, "Pending", "Init:0/2"),
    ("first done: the second", pod(), view(sandbox(), done("a", "i1")), None,
     ["RunContainer"], "i2", "Pending", "Init:1/2"),
    ("second running", pod(), view(sandbox(), done("a", "i1"), ctr("b", name="i2")), None,
     [], None, "Pending", "Init:1/2"),
    ("all done: the app container", pod(), view(sandbox(), done("a", "i1"), done("b", "i2")), None,
     ["RunContainer"], "c", "Pending", "PodInitializing"),
    ("app running: init containers left alone", pod(),
     view(sandbox(), done("a", "i1"), done("b", "i2"), ctr("c", name="c")), None, [], None, "Running", "Running"),
    ("app ran, init records gone: not run again, last status kept", reported(pod()),
     view(sandbox(), ctr("c", name="c")), None, [], None, "Running", "Running"),
    ("init failed, Never: the pod fails", pod("Never"), view(sandbox(), failed("a", "i1")), None,
     [], None, "Failed", "Init:Error"),
    ("init failed, OnFailure: retried", pod("OnFailure"), view(sandbox(), failed("a", "i1")), None,
     ["RunContainer"], "i1", "Pending", "Init:Error"),
    ("init failed, Always: retried as OnFailure", pod("Always"), view(sandbox(), failed("a", "i1")), None,
     ["RunContainer"], "i1", "Pending", "Init:Error"),
    ("init failed, in back-off: wait", pod("OnFailure"), view(sandbox(), failed("a", "i1", 1)), BACKING_OFF,
     [], None, "Pending", "Init:CrashLoopBackOff"),
    ("init image missing", pod(), view(sandbox()),
     PodNotes(failures={"i1": StartFailure("ErrImagePull", "x", NOW - 0.5, BackoffEntry(10, NOW - 0.5))}),
     [], None, "Pending", "Init:ErrImagePull"),
    ("second init failed, Never", pod("Never"), view(sandbox(), done("a", "i1"), failed("b", "i2", code=2)), None,
     [], None, "Failed", "Init:Error"),
    ("no init containers: as before", pod(inits=()), view(), None,
     ["CreateSandbox", "RunContainer"], "c", "Pending", "ContainerCreating"),
]


@pytest.mark.parametrize(("case", "p", "v", "notes", "actions", "runs", "phase", "shown"), CASES,
                         ids=[c[0] for c in CASES])
def test_init_containers(case: str, p: Obj, v: PodRuntimeView, notes: PodNotes | None, actions: list[str],
                         runs: str | None, phase: str, shown: str) -> None:
    notes = notes or PodNotes()
    decided = plan(p, v, notes, NOW, node_name="n1", address="127.0.0.1", cap=300)
    assert kinds(decided.actions) == actions
    assert [a.config.name for a in decided.actions if isinstance(a, RunContainer)] == ([runs] if runs else [])
    status = compute_status(p, v, notes, ProbeView(), NOW, host_ip="192.0.2.1", cap=300)
    assert status["phase"] == phase
    assert pod_status({**p, "status": status}) == shown


def test_init_status_fields_and_conditions() -> None:
    p = pod()
    initializing = compute_status(p, view(sandbox(), done("a", "i1"), ctr("b", name="i2")), PodNotes(), ProbeView(),
                                  NOW, host_ip="192.0.2.1")
    first, second = initializing["initContainerStatuses"]
    assert (first["name"], first["ready"], first["state"]["terminated"]["reason"]) == ("i1", True, "Completed")
    assert (second["name"], second["ready"], second["started"]) == ("i2", False, True)
    assert "running" in second["state"]
    [app] = initializing["containerStatuses"]
    assert app["state"] == {"waiting": {"reason": "PodInitializing"}}
    conditions = {c["type"]: c for c in initializing["conditions"]}
    assert conditions["Initialized"]["status"] == "False"
    assert conditions["Initialized"]["reason"] == "ContainersNotInitialized"
    assert conditions["Initialized"]["message"] == "containers with incomplete status: [i2]"

    waiting = compute_status(p, view(sandbox()), PodNotes(), ProbeView(), NOW, host_ip="192.0.2.1")
    assert [s["state"] for s in waiting["initContainerStatuses"]] == [{"waiting": {"reason": "PodInitializing"}}] * 2

    ran = compute_status(p, view(sandbox(), done("a", "i1"), done("b", "i2"), ctr("c", name="c")), PodNotes(),
                         ProbeView(), NOW, host_ip="192.0.2.1")
    assert {c["type"]: c["status"] for c in ran["conditions"]}["Initialized"] == "True"
    assert [s["ready"] for s in ran["initContainerStatuses"]] == [True, True]

    retried = compute_status(pod("OnFailure"), view(sandbox(), failed("a", "i1", 0), failed("b", "i1", 1)),
                             BACKING_OFF, ProbeView(), NOW, host_ip="192.0.2.1")
    [i1, _] = retried["initContainerStatuses"]
    assert i1["restartCount"] == 1 and i1["lastState"]["terminated"]["exitCode"] == 1


def test_init_progress_and_restart_of_a_failed_init_container() -> None:
    progress = init_progress(pod(), {"i1": [done("a", "i1")]}, PodNotes(), NOW, cap=300)
    assert (progress.done, progress.current, progress.failed) == (False, "i2", None)
    assert progress.pending
    decided = plan(pod("OnFailure"), view(sandbox(), failed("a", "i1", 2)), PodNotes(), NOW, node_name="n1",
                   address="127.0.0.1")
    [rerun] = decided.actions
    assert isinstance(rerun, RunContainer) and rerun.attempt == 3 and rerun.previous is not None
    waiting = plan(pod("OnFailure"), view(sandbox(), failed("a", "i1", 1)), BACKING_OFF, NOW, node_name="n1",
                   address="127.0.0.1")
    assert waiting.requeue_after == pytest.approx(19)  # 20 s after it finished (NOW - 1)
