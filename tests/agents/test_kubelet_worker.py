"""The pod worker's four steps one at a time (gather, decide, execute, report), on the in-memory runtime and
the real API actor; and a kubelet that is complete before it starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from actors.api.server import ApiActor
from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.executor import Executor
from agents.kubelet.fake_runtime import EXIT_AFTER_ENV, EXIT_CODE_ENV, FakeRuntime
from agents.kubelet.node import StaticMetrics
from agents.kubelet.plan import CreateSandbox, RunContainer
from agents.kubelet.podnet import PodIPAllocator
from agents.kubelet.probes import AlwaysPassProber, ProbeScheduler
from agents.kubelet.runtime_cache import RuntimeCache
from agents.kubelet.worker import PodWorker, StatusWriter
from protocol.objects import Obj
from runtime.client import ApiClient
from tests.agents.kubelet_helpers import create_bound, pod_manifest

NODE = "worker-node"
CRASHING = {"name": "app", "image": "busybox", "env": [{"name": EXIT_AFTER_ENV, "value": "0"},
                                                    {"name": EXIT_CODE_ENV, "value": "1"}]}
"""A container that exits with 1 as soon as it starts."""


class Pods:
    """A store of desired pods, as the informer keeps them."""

    def __init__(self) -> None:
        self.store: dict[str, Obj] = {}

    def get(self, key: str) -> Obj | None:
        return self.store.get(key)

    def items(self) -> list[Obj]:
        return list(self.store.values())


def make_worker(client: ApiClient, runtime: FakeRuntime, pods: Pods, tmp_path: Path) -> PodWorker:
    config = KubeletConfig(node_name=NODE, state_dir=tmp_path, measure_host=False, record_events=False,
                           service_links=False, backoff_base=0.5, backoff_max=2.0)
    log = structlog.get_logger("test")
    requeued: list[str] = []
    return PodWorker(
        config, pods=pods, services=None, cache=RuntimeCache(runtime, NODE),
        probes=ProbeScheduler(AlwaysPassProber(runtime), requeued.append),
        executor=Executor(runtime, client, config, events=None, log=log),
        statuses=StatusWriter(client, log), pod_ips=PodIPAllocator(config.pod_cidr), requeue=requeued.append,
        runtime_name="fake")


async def test_gather_decide_execute_report(api: ApiActor, client: ApiClient, tmp_path: Path) -> None:
    runtime = FakeRuntime()
    pods = Pods()
    worker = make_worker(client, runtime, pods, tmp_path)
    bound = await create_bound(client, pod_manifest("p", [{"name": "app", "image": "busybox"}]), NODE)
    pods.store["default/p"] = bound

    state = await worker.gather("default/p")
    assert state.pod is bound and not state.view.sandboxes and set(state.specs) == {"app"}
    assert state.pod_ip.startswith("127.88.")  # an address is assigned before the sandbox exists
    decided = worker.decide(state)
    assert [type(a) for a in decided.actions] == [CreateSandbox, RunContainer]
    assert worker.decide(state) == decided  # pure: the same state, the same plan

    await worker.execute(state, decided)
    [sandbox] = state.view.sandboxes  # the view was refreshed after creating
    assert sandbox.ip == state.pod_ip
    assert [c.state for c in state.view.containers] == ["running"]

    assert await worker.report(state, decided) is None
    status = (await client.get("Pod", "p"))["status"]
    assert status["phase"] == "Running" and status["podIP"] == state.pod_ip
    assert worker.phases == {"default/p": "Running"} and worker.running_pods() == 1

    again = await worker.gather("default/p")
    assert worker.decide(again).actions == ()  # nothing left to do


async def test_a_gone_pod_is_cleaned_up_and_forgotten(api: ApiActor, client: ApiClient, tmp_path: Path) -> None:
    runtime = FakeRuntime()
    pods = Pods()
    worker = make_worker(client, runtime, pods, tmp_path)
    pods.store["default/q"] = await create_bound(client, pod_manifest("q", [CRASHING]), NODE)
    await worker.reconcile("default/q")
    assert worker.notes and worker.statuses.written
    del pods.store["default/q"]
    await worker.reconcile("default/q")
    assert runtime.counts() == (0, 0)
    assert worker.notes == {} and worker.statuses.written == {} and worker.phases == {}
    assert worker.reconciles == 2


async def test_a_container_that_exits_before_the_kubelet_looks_again_is_requeued_by_its_back_off(
        api: ApiActor, client: ApiClient, tmp_path: Path) -> None:
    """The restarted container has already exited in the view taken after starting it. The relist then sees
    no change (that view is what the reconcile acted on), so the reconcile must requeue the pod by the back-off
    the post-action plan waits for. Before, it returned None and the crash loop stopped until a resync."""
    runtime = FakeRuntime()
    pods = Pods()
    worker = make_worker(client, runtime, pods, tmp_path)
    pods.store["default/c"] = await create_bound(client, pod_manifest("c", [CRASHING]), NODE)
    assert await worker.reconcile("default/c") == 0.0  # the first attempt exited: restarted at once
    again = await worker.reconcile("default/c")  # the restart exited too: now it backs off
    assert again is not None and 0.0 < again < 0.6  # the first back-off, 0.5 s, from the exit (after the plan)
    assert "default/c" not in await worker.cache.relist_changes()  # nothing else would look at it again
    assert [c.attempt for c in await runtime.list_containers(NODE)] == [0, 1]


def test_a_kubelet_is_complete_before_it_starts(tmp_path: Path) -> None:
    agent = KubeletAgent(KubeletConfig(node_name="n", state_dir=tmp_path), runtime=FakeRuntime(),
                         metrics=StaticMetrics())
    assert agent.parts is None
    assert agent.health() == {"node": "n", "pods": 0, "running": 0, "registered": False, "runtime_ok": True,
                              "pod_network": "loopback",
                              "queue": 0, "log_streams": 0}
    assert agent.reconciles == 0
    with pytest.raises(RuntimeError, match="not started"):
        _ = agent.informer
    with pytest.raises(ValueError, match="runtime"):
        KubeletAgent(KubeletConfig(node_name="n", state_dir=tmp_path), metrics=StaticMetrics())


async def test_an_init_container_done_at_once_queues_the_next_step_now(api: ApiActor, client: ApiClient,
                                                                     tmp_path: Path) -> None:
    runtime = FakeRuntime()
    pods = Pods()
    worker = make_worker(client, runtime, pods, tmp_path)
    manifest = pod_manifest("i", [{"name": "app", "image": "busybox"}])
    manifest["spec"]["initContainers"] = [{"name": "init", "image": "busybox",
                                           "env": [{"name": EXIT_AFTER_ENV, "value": "0"}]}]
    pods.store["default/i"] = await create_bound(client, manifest, NODE)
    # the init container exits as it starts: nothing else would look at the pod before the next relist
    assert await worker.reconcile("default/i") == 0.0
    assert await worker.reconcile("default/i") is None  # the app container started: nothing more to do
    states = {c.name: c.state for c in await runtime.list_containers(NODE)}
    assert states == {"init": "exited", "app": "running"}


class ReadingRuntime(FakeRuntime):
    """The fake, as a runtime that reads termination messages from the node file (as Podman does)."""

    reads_termination_logs = True


@pytest.mark.parametrize("reads", [False, True])
async def test_the_termination_message_file_is_made_only_for_a_runtime_that_reads_it(
        api: ApiActor, client: ApiClient, tmp_path: Path, reads: bool) -> None:
    runtime = ReadingRuntime() if reads else FakeRuntime()
    pods = Pods()
    worker = make_worker(client, runtime, pods, tmp_path)
    bound = await create_bound(client, pod_manifest("t", [{"name": "app", "image": "busybox"}]), NODE)
    pods.store["default/t"] = bound
    await worker.reconcile("default/t")
    [container] = runtime._containers.values()
    path = container.config.termination_log
    assert path.startswith(str(tmp_path)) and path.endswith("/app/0")  # named and mounted either way
    assert ("/dev/termination-log", path) in [(m.destination, m.source) for m in container.mounts]
    assert on_disk(path, tmp_path) == (reads, reads)  # nothing on the node's disk for a fake container


def on_disk(path: str, state_dir: Path) -> tuple[bool, bool]:
    return Path(path).is_file(), (state_dir / "pods").exists()
