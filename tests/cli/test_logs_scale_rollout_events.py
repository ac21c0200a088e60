"""``shoal scale``, ``rollout``, ``logs`` and ``events`` as a subprocess against a real nats-server and API
actor; the deployment and replicaset controllers in-process; pods made ready by the status simulator, by
hand, or run by a kubelet on the fake runtime; a stub kubelet logs server for ``logs -f``."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.fake_runtime import FakeRuntime
from agents.kubelet.node import StaticMetrics
from agents.kubelet.probes import AlwaysPassProber
from protocol import codec, subjects
from protocol.errors import ShoalError
from protocol.objects import Obj
from runtime.client import ApiClient
from runtime.events import EventRecorder
from tests.cli.conftest import ShoalCli, read_until
from tests.conftest import ActorRunner
from tests.controllers import conftest as controller_fixtures
from tests.controllers.conftest import eventually, running_status, start_manager

pod_status_simulator = controller_fixtures.pod_status_simulator  # the fixture shared with the controller tests

CHANGE_CAUSE = "kubernetes.io/change-cause"


def deployment(name: str = "web", image: str = "img:1", replicas: int = 2, cause: str | None = None) -> Obj:
    obj: Obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": "c", "image": image}]}}}}
    if cause:
        obj["metadata"]["annotations"] = {CHANGE_CAUSE: cause}
    return obj


def pod(name: str, containers: list[str], *, node: str | None = None, labels: dict[str, str] | None = None) -> Obj:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "img"} for c in containers]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def image_of(obj: Obj) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


async def controllers(runner: ActorRunner) -> None:
    await start_manager(runner, ["deployment", "replicaset"])


# -- scale ------------------------------------------------------------------------------------------
async def test_scale_every_form_and_its_preconditions(cli: ShoalCli, client: ApiClient) -> None:
    await client.create(deployment())
    rs = await client.create({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "front"},
                              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "front"}},
                                       "template": deployment("front")["spec"]["template"]}})
    await client.create({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "old"},
                         "spec": {"replicas": 1, "selector": {"app": "old"},
                                  "template": deployment("old")["spec"]["template"]}})

    two_words = await cli("scale", "deployment", "web", "--replicas", "3")
    assert two_words.rc == 0 and two_words.out == "deployment.apps/web scaled\n", two_words
    assert (await client.get("Deployment", "web"))["spec"]["replicas"] == 3
    several = await cli("scale", "deploy/web", "rs/front", "rc/old", "--replicas", "4")
    assert several.rc == 0, several
    assert several.out.splitlines() == ["deployment.apps/web scaled", "replicaset.apps/front scaled",
                                        "replicationcontroller/old scaled"]
    assert (await client.get("ReplicaSet", "front"))["spec"]["replicas"] == 4
    assert (await client.get("ReplicationController", "old"))["spec"]["replicas"] == 4

    guarded = await cli("scale", "deploy/web", "--current-replicas", "4", "--replicas", "1")
    assert guarded.rc == 0 and (await client.get("Deployment", "web"))["spec"]["replicas"] == 1
    refused = await cli("scale", "deploy/web", "--current-replicas", "7", "--replicas", "2")
    assert refused.rc == 1 and "expected 7 replicas but deployment.apps/web has 1" in refused.err, refused
    stale = await cli("scale", "rs/front", "--resource-version", rs["metadata"]["resourceVersion"], "--replicas", "2")
    assert stale.rc == 1 and "leave out --resource-version" in stale.err, stale
    assert (await client.get("ReplicaSet", "front"))["spec"]["replicas"] == 4

    assert (await cli("scale", "pod/x", "--replicas", "1")).rc == 2
    negative = await cli("scale", "deploy/web", "--replicas=-1")
    assert negative.rc == 2 and "0 or more" in negative.err, negative
    missing = await cli("scale", "deploy/nope", "--replicas", "1")
    assert missing.rc == 1 and 'deployments "nope" not found' in missing.err, missing


# -- rollout ----------------------------------------------------------------------------------------
async def test_rollout_status_follows_progress_times_out_and_reports_once(cli: ShoalCli, client: ApiClient,
                                                                            runner: ActorRunner) -> None:
    await controllers(runner)  # no kubelet: pods stay Pending until marked ready below
    await client.create(deployment())
    timed_out = await cli("rollout", "status", "deploy/web", "--timeout", "2s")
    assert timed_out.rc == 1 and "timed out waiting for the rollout of deployment 'web' after 2s" in timed_out.err
    assert 'Waiting for deployment "web" rollout to finish' in timed_out.out, timed_out
    once = await cli("rollout", "status", "deploy/web", "--watch=false")
    assert once.rc == 0 and once.out.startswith("Waiting for deployment"), once
    bad = await cli("rollout", "status", "deploy/web", "--timeout", "5parsecs")
    assert bad.rc == 2 and "invalid duration" in bad.err

    waiting = await cli.start("rollout", "status", "deploy", "web", "--timeout", "1m")
    try:
        await read_until(waiting.stdout, "Waiting for deployment")

        async def all_ready() -> bool:
            pods = (await client.list("Pod", "default")).items
            for p in pods:
                if p.get("status", {}).get("phase") != "Running":
                    try:
                        await client.update_status({**p, "status": running_status(p, time.time())})
                    except ShoalError:
                        pass
            return len(pods) == 2 and all(p.get("status", {}).get("phase") == "Running" for p in pods)

        await eventually(all_ready)
        seen = await read_until(waiting.stdout, 'deployment "web" successfully rolled out')
        assert "updated replicas are available" in seen or "new replicas have been updated" in seen, seen
        assert await asyncio.wait_for(waiting.wait(), 30) == 0
    finally:
        if waiting.returncode is None:
            waiting.kill()
            await waiting.wait()


@pytest.mark.usefixtures("pod_status_simulator")
async def test_rollout_history_undo_restart_pause_resume(cli: ShoalCli, client: ApiClient,
                                                         runner: ActorRunner) -> None:
    await controllers(runner)
    await client.create(deployment(image="img:1"))
    assert (await cli("rollout", "status", "deploy/web", "--timeout", "30s")).rc == 0
    current = await client.get("Deployment", "web")
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    current["metadata"].setdefault("annotations", {})[CHANGE_CAUSE] = "image img:2"
    await client.update(current)
    status = await cli("rollout", "status", "deploy/web", "--timeout", "30s")
    assert status.rc == 0 and status.out.endswith('deployment "web" successfully rolled out\n'), status

    history = await cli("rollout", "history", "deploy/web")
    assert history.rc == 0, history
    assert [line.split(None, 1) for line in history.out.splitlines()] == [
        ["deployment.apps/web"], ["REVISION", "CHANGE-CAUSE"], ["1", "<none>"], ["2", "image img:2"]]
    one = await cli("rollout", "history", "deployment", "web", "--revision", "1")
    assert one.rc == 0 and "with revision #1" in one.out and "img:1" in one.out and "img:2" not in one.out, one
    unknown = await cli("rollout", "history", "deploy/web", "--revision", "9")
    assert unknown.rc == 1 and "revision 9" in unknown.err and "revisions: 1, 2" in unknown.err, unknown

    no_such = await cli("rollout", "undo", "deploy/web", "--to-revision", "9")
    assert no_such.rc == 1 and "rollout history deploy/web" in no_such.err, no_such
    undo = await cli("rollout", "undo", "deploy/web", "--to-revision", "1")
    assert undo.rc == 0 and undo.out == "deployment.apps/web rolled back\n", undo
    assert image_of(await client.get("Deployment", "web")) == "img:1"
    assert (await cli("rollout", "status", "deploy/web", "--timeout", "30s")).rc == 0
    again = await cli("rollout", "history", "deploy/web")
    assert [line.split()[0] for line in again.out.splitlines()[2:]] == ["2", "3"], again  # 1 became 3
    same = await cli("rollout", "undo", "deploy/web", "--to-revision", "3")
    assert same.rc == 0 and "skipped rollback" in same.out, same

    assert (await cli("rollout", "pause", "deploy/web")).out == "deployment.apps/web paused\n"
    assert (await client.get("Deployment", "web"))["spec"]["paused"] is True
    twice = await cli("rollout", "pause", "deploy/web")
    assert twice.rc == 1 and "already paused" in twice.err
    for refused in (await cli("rollout", "restart", "deploy/web"), await cli("rollout", "undo", "deploy/web")):
        assert refused.rc == 1 and "rollout resume deploy/web" in refused.err, refused
    assert (await cli("rollout", "resume", "deploy/web")).out == "deployment.apps/web resumed\n"
    assert not (await client.get("Deployment", "web"))["spec"]["paused"]
    not_paused = await cli("rollout", "resume", "deploy/web")
    assert not_paused.rc == 1 and "is not paused" in not_paused.err

    restarted = await cli("rollout", "restart", "deploy/web")
    assert restarted.rc == 0 and restarted.out == "deployment.apps/web restarted\n", restarted
    template = (await client.get("Deployment", "web"))["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
    assert (await cli("rollout", "status", "deploy/web", "--timeout", "30s")).rc == 0
    assert (await cli("rollout", "status", "svc/web")).rc == 2
    gone = await cli("rollout", "undo", "deploy/nope")
    assert gone.rc == 1 and "not found" in gone.err


# -- events -----------------------------------------------------------------------------------------
async def test_events_table_filters_formats_and_watch(cli: ShoalCli, client: ApiClient) -> None:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    p = await client.create(pod("p", ["c"]))
    web = await client.create(deployment())
    elsewhere = await client.create({**pod("q", ["c"]), "metadata": {"name": "q", "namespace": "other"}})
    recorder = EventRecorder(client, "test")
    await recorder.record(p, "Warning", "BackOff", "Back-off restarting failed container")
    await recorder.record(web, "Normal", "ScalingReplicaSet", "Scaled up replica set web-abc to 2")
    await recorder.record(elsewhere, "Normal", "Scheduled", "Successfully assigned other/q to n1")

    listed = await cli("events")
    assert listed.rc == 0, listed
    lines = listed.out.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert lines[0].index("OBJECT") == lines[1].index("pod/p"), listed.out  # columns line up
    assert [line.split()[2] for line in lines[1:]] == ["BackOff", "ScalingReplicaSet"]  # oldest first
    assert "Scheduled" not in listed.out
    every = await cli("events", "-A")
    assert every.out.splitlines()[0].startswith("NAMESPACE") and "other" in every.out and "pod/q" in every.out
    only_deploy = await cli("events", "--for", "deploy/web")
    assert "ScalingReplicaSet" in only_deploy.out and "BackOff" not in only_deploy.out, only_deploy
    warnings = await cli("events", "--types", "warning")
    assert "BackOff" in warnings.out and "ScalingReplicaSet" not in warnings.out
    as_json = json.loads((await cli("events", "--for", "pod/p", "-o", "json")).out)
    assert [e["reason"] for e in as_json["items"]] == ["BackOff"]
    assert (await cli("events", "--types", "Bogus")).rc == 2
    nothing = await cli("events", "-n", "empty")
    assert nothing.rc == 0 and nothing.out == "No events found in empty namespace.\n"

    watch = await cli.start("events", "-w", "--for", "pod/p")
    try:
        await read_until(watch.stdout, "BackOff")
        await asyncio.sleep(1.0)  # the consumer is in place before the listing; the listing is printed
        await recorder.record(web, "Normal", "ScalingReplicaSet", "Scaled up replica set web-abc to 3")
        await recorder.record(p, "Normal", "Pulled", "Container image already present")
        seen = await read_until(watch.stdout, "Pulled")
        await recorder.record(p, "Warning", "BackOff", "Back-off restarting failed container")  # a repeat
        seen += await read_until(watch.stdout, "(x2")
        assert "pod/p" in seen and "ScalingReplicaSet" not in seen, seen
    finally:
        watch.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(watch.wait(), 10) == 0


# -- logs -------------------------------------------------------------------------------------------
async def test_logs_from_a_fake_kubelet_and_the_errors_that_say_what_to_do(
        cli: ShoalCli, client: ApiClient, runner: ActorRunner, tmp_path: Path) -> None:
    runtime = FakeRuntime()
    config = KubeletConfig(node_name="n1", state_dir=tmp_path, relist_interval=0.2, measure_host=False)
    agent = KubeletAgent(config, runtime=runtime, runtime_name="fake", runtime_version="fake://0.1",
                         prober=AlwaysPassProber(runtime), metrics=StaticMetrics(), close_runtime=False)
    await runner.start(agent, lambda: agent.started.is_set())
    await client.create(pod("waiting", ["c"]))
    await client.create(pod("stranded", ["c"], node="gone-node"))
    await client.create(pod("two", ["a", "b"], node="n1", labels={"app": "two"}))
    await client.create(deployment("two"))  # no controller runs: only its selector matters here

    async def running() -> bool:
        return bool((await client.get("Pod", "two")).get("status", {}).get("phase") == "Running")

    await eventually(running)
    unscheduled = await cli("logs", "waiting")
    assert unscheduled.rc == 1 and "pod waiting is not scheduled yet" in unscheduled.err, unscheduled
    node_down = await cli("logs", "stranded")
    assert node_down.rc == 1 and "no kubelet serves node gone-node" in node_down.err, node_down
    ambiguous = await cli("logs", "two")
    assert ambiguous.rc == 1, ambiguous
    assert "a container name must be specified for pod two, choose one of: [a b]" in ambiguous.err
    wrong = await cli("logs", "two", "-c", "zzz")
    assert wrong.rc == 1 and "container zzz is not valid for pod two, choose one of: [a b]" in wrong.err, wrong
    assert (await cli("logs", "two", "a", "-c", "b")).rc == 2
    assert (await cli("logs", "node/n1")).rc == 2
    missing = await cli("logs", "nope")
    assert missing.rc == 1 and 'pods "nope" not found' in missing.err

    by_arg = await cli("logs", "two", "a")
    assert by_arg.rc == 0 and by_arg.out.splitlines()[0] == "fake container a attempt 0 started", by_arg
    tail = await cli("logs", "pod/two", "-c", "b", "--tail", "1")
    assert tail.rc == 0 and tail.out.splitlines() == ["fake container b attempt 0 started"], tail
    by_owner = await cli("logs", "deploy/two", "-c", "b")
    assert by_owner.rc == 0 and "fake container b" in by_owner.out, by_owner
    followed = await cli("logs", "-f", "two", "-c", "a")  # the fake's output ends, and so does -f
    assert followed.rc == 0 and "fake container a" in followed.out, followed
    previous = await cli("logs", "two", "-c", "a", "--previous")
    assert previous.rc == 1 and "previous" in previous.err, previous
    stamped = await cli("logs", "two", "-c", "a", "--timestamps", "--since", "1h")
    assert stamped.rc == 0 and stamped.out.split(" ", 1)[1] == "fake container a attempt 0 started\n", stamped
    assert stamped.out[:4].isdigit() and stamped.out.split(" ", 1)[0].endswith("Z"), stamped
    later = await cli("logs", "two", "-c", "a", "--since-time", "2099-01-01T00:00:00Z")
    assert later.rc == 0 and later.out == "", later
    cut = await cli("logs", "two", "-c", "a", "--limit-bytes", "4")
    assert cut.rc == 0 and cut.out == "fake\n", cut
    both = await cli("logs", "two", "-c", "a", "--since", "1h", "--since-time", "2099-01-01T00:00:00Z")
    assert both.rc == 2 and "only one of --since and --since-time" in both.err, both
    bad = await cli("logs", "two", "-c", "a", "--since", "soon")
    assert bad.rc == 2 and "invalid duration" in bad.err, bad
    selected = await cli("logs", "-l", "app=two", "-c", "a", "--prefix")
    assert selected.rc == 0 and selected.out.splitlines() == ["[pod/two/a] fake container a attempt 0 started"]
    assert (await cli("logs", "-l", "app=none")).err.startswith("No resources found")
    neither = await cli("logs")
    assert neither.rc == 2 and "-l SELECTOR" in neither.err, neither
    too_many = await cli("logs", "-f", "-l", "app=two", "-c", "a", "--max-log-requests", "0")
    assert too_many.rc == 2 and "maximum allowed concurrency is 0" in too_many.err, too_many


async def test_logs_follow_ends_on_ctrl_c_and_tells_the_kubelet(cli: ShoalCli, client: ApiClient) -> None:
    """A stub kubelet logs server that streams one line and then stays open, as for a quiet container."""
    nc: Client = client.nc
    requests: list[dict[str, Any]] = []

    async def serve(msg: Any) -> None:
        request = codec.decode(msg.data)
        requests.append(request)
        if "inbox" in request:
            await nc.publish(request["inbox"], codec.ok(lines=["hello from the stub"], seq=1, more=True))

    sub = await nc.subscribe(subjects.node_agent("stub", "logs"), cb=serve)
    await client.create(pod("chatty", ["c"], node="stub"))
    follower = await cli.start("logs", "-f", "chatty")
    try:
        await read_until(follower.stdout, "hello from the stub")
        assert requests[0]["follow"] is True and requests[0]["container"] == "c"
        follower.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(follower.wait(), 10) == 0

        async def cancelled() -> bool:
            return any(r.get("cancel") == requests[0]["inbox"] for r in requests)

        await eventually(cancelled)
    finally:
        if follower.returncode is None:
            follower.kill()
            await follower.wait()
        await sub.unsubscribe()
