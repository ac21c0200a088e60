"""``shoal cordon|uncordon|drain`` and ``shoal top nodes`` as subprocesses against a real cluster: nats-server,
the API, the scheduler, the replicaset/daemonset/disruption/gc controllers and two hollow kubelets (the fake
runtime: containers run at once and report the usage their environment scripts)."""

from __future__ import annotations

import asyncio

from agents.hollow.nodes import HollowNodes
from agents.kubelet.fake_runtime import CPU_ENV, MEMORY_ENV
from protocol.objects import Obj, is_deleting, name_of, pod_is_ready
from protocol.quantity import cpu_millis, memory_bytes
from runtime.client import ApiClient
from tests.cli.conftest import ShoalCli, read_until
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually
from tests.controllers.test_job import start_batch_cluster

NS = "default"
CONTROLLERS = ("replicaset", "daemonset", "disruption", "gc")
N0, N1 = "hollow-0", "hollow-1"


def template(app: str, **spec: object) -> Obj:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": "img:1"}], **spec}}


def replicaset(name: str, replicas: int, **spec: object) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": template(name, **spec)}}


async def live_pods(client: ApiClient, app: str) -> list[Obj]:
    return [p for p in (await client.list("Pod", NS, label_selector=f"app={app}")).items if not is_deleting(p)]


async def placed(client: ApiClient, app: str, nodes: list[str]) -> bool:
    """The live pods of ``app`` are Ready and on exactly these nodes (one per entry)."""
    pods = await live_pods(client, app)
    return all(pod_is_ready(p) for p in pods) and sorted(p["spec"].get("nodeName") for p in pods) == sorted(nodes)


async def test_cordon_uncordon_and_drain_with_a_budget_and_daemon_pods(runner: ActorRunner, client: ApiClient,
                                                                       cli: ShoalCli) -> None:
    await start_batch_cluster(runner, client, nodes=2, controllers=CONTROLLERS)
    await client.create({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": NS},
                         "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent")}})
    await eventually(lambda: placed(client, "agent", [N0, N1]), timeout=30)

    # cordon: the scheduler places the ReplicaSet's pods on the other node only
    cordoned = await cli("cordon", N1)
    assert (cordoned.rc, cordoned.out) == (0, f"node/{N1} cordoned\n"), cordoned
    assert (await client.get("Node", N1))["spec"]["unschedulable"] is True
    nodes = await cli("get", "nodes", N1)
    assert nodes.out.splitlines()[1].split()[1].endswith(",SchedulingDisabled"), nodes
    again = await cli("cordon", N1)
    assert (again.rc, again.out) == (0, f"node/{N1} already cordoned\n"), again
    await client.create(replicaset("db", 2))
    await eventually(lambda: placed(client, "db", [N0, N0]), timeout=30)
    uncordoned = await cli("uncordon", N1)
    assert (uncordoned.rc, uncordoned.out) == (0, f"node/{N1} uncordoned\n"), uncordoned
    assert not (await client.get("Node", N1))["spec"].get("unschedulable")
    assert (await cli("uncordon", N1)).out == f"node/{N1} already uncordoned\n"
    missing = await cli("cordon", "nowhere")
    assert missing.rc == 1 and 'nodes "nowhere" not found' in missing.err, missing

    # DaemonSet pods refuse the drain without --ignore-daemonsets; nothing is evicted (the node is cordoned)
    agent_on_n0 = next(name_of(p) for p in await live_pods(client, "agent") if p["spec"]["nodeName"] == N0)
    refused = await cli("drain", N0)
    assert refused.rc == 1, refused
    assert refused.out == f"node/{N0} cordoned\n", refused
    assert (f'error: unable to drain node "{N0}" due to error: cannot delete DaemonSet-managed Pods '
            f"(use --ignore-daemonsets to ignore): {NS}/{agent_on_n0}, continuing command...") in refused.err, refused
    assert f"There are pending nodes to be drained:\n {N0}\n" in refused.err, refused
    assert await placed(client, "db", [N0, N0])

    # a budget that allows no disruption: the drain says so and retries; once relaxed, the drain completes
    await client.create({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                         "metadata": {"name": "db", "namespace": NS},
                         "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}})

    async def allowed(count: int) -> bool:
        status = (await client.get("PodDisruptionBudget", "db", NS)).get("status") or {}
        return status.get("currentHealthy") == 2 and status.get("disruptionsAllowed") == count

    await eventually(lambda: allowed(0), timeout=20)
    db_pods = sorted(name_of(p) for p in await live_pods(client, "db"))
    timed_out = await cli("drain", N0, "--ignore-daemonsets", "--timeout=2s")
    assert timed_out.rc == 1, timed_out
    assert "global timeout reached: 2s" in timed_out.err, timed_out
    assert f'There are pending pods in node "{N0}" when an error occurred' in timed_out.err, timed_out
    assert sorted(line for line in timed_out.err.splitlines() if line.startswith("pod/")) == [
        f"pod/{p}" for p in db_pods], timed_out
    proc = await cli.start("drain", N0, "--ignore-daemonsets", "--timeout=120s")
    err = await read_until(proc.stderr, "Cannot evict pod as it would violate the pod's disruption budget", timeout=30)
    assert f"Warning: ignoring DaemonSet-managed Pods: {NS}/{agent_on_n0}" in err
    assert "(will retry after 5s)" in err
    assert await placed(client, "db", [N0, N0])  # refused: both still there
    budget = await client.get("PodDisruptionBudget", "db", NS)
    budget["spec"]["minAvailable"] = 1
    await client.update(budget)
    out, rest = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, (out.decode(), err + rest.decode())
    lines = out.decode().splitlines()
    assert lines[0] == f"node/{N0} already cordoned"
    assert lines[-1] == f"node/{N0} drained"
    assert sorted(line for line in lines if line.startswith("evicting pod")) == [
        f"evicting pod {NS}/{p}" for p in db_pods]
    assert sorted(line for line in lines if line.endswith(" evicted")) == [f"pod/{p} evicted" for p in db_pods]
    # the ReplicaSet re-created its pods on the other node; the DaemonSet's pods stayed on both
    await eventually(lambda: placed(client, "db", [N1, N1]), timeout=30)
    assert not set(db_pods) & {name_of(p) for p in await live_pods(client, "db")}
    assert await placed(client, "agent", [N0, N1])
    assert (await client.get("Node", N0))["spec"]["unschedulable"] is True


async def test_drain_refuses_unmanaged_and_emptydir_pods_without_their_flags(runner: ActorRunner, client: ApiClient,
                                                                            cli: ShoalCli) -> None:
    await start_batch_cluster(runner, client, nodes=2, controllers=CONTROLLERS)
    await client.create({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": "lonely", "namespace": NS, "labels": {"app": "lonely"}},
                         "spec": {"nodeName": N0, **template("lonely")["spec"]}})
    await client.create(replicaset("scratch", 1, nodeSelector={"kubernetes.io/hostname": N0},
                                   volumes=[{"name": "tmp", "emptyDir": {}}]))
    await eventually(lambda: placed(client, "lonely", [N0]), timeout=30)
    await eventually(lambda: placed(client, "scratch", [N0]), timeout=30)
    scratch = name_of((await live_pods(client, "scratch"))[0])

    refused = await cli("drain", N0, "--dry-run")
    assert refused.rc == 1, refused
    assert refused.out == f"node/{N0} cordoned (dry run)\n"
    assert not (await client.get("Node", N0))["spec"].get("unschedulable")  # a dry run changes nothing
    assert (f"[cannot delete Pods with local storage (use --delete-emptydir-data to override): {NS}/{scratch}, "
            f"cannot delete Pods that declare no controller (use --force to override): {NS}/lonely]") in refused.err \
        or (f"[cannot delete Pods that declare no controller (use --force to override): {NS}/lonely, "
            f"cannot delete Pods with local storage (use --delete-emptydir-data to override): {NS}/{scratch}]"
            ) in refused.err, refused

    dry = await cli("drain", N0, "--force", "--delete-emptydir-data", "--dry-run=client")
    assert dry.rc == 0, dry
    lines = dry.out.splitlines()
    assert lines[0] == f"node/{N0} cordoned (dry run)" and lines[-1] == f"node/{N0} drained (dry run)", dry
    assert sorted(lines[1:-1]) == sorted(["pod/lonely evicted (dry run)", f"pod/{scratch} evicted (dry run)"]), dry
    assert await placed(client, "lonely", [N0]) and await placed(client, "scratch", [N0])

    # only the pods --pod-selector picks: the unmanaged one, forced, with a grace period of 0
    drained = await cli("drain", N0, "--force", "--pod-selector", "app=lonely", "--grace-period", "0",
                        "--timeout", "60s")
    assert drained.rc == 0, drained
    assert drained.out.splitlines() == [f"node/{N0} cordoned", f"evicting pod {NS}/lonely", "pod/lonely evicted",
                                        f"node/{N0} drained"]
    assert f"Warning: deleting Pods that declare no controller: {NS}/lonely" in drained.err
    assert await live_pods(client, "lonely") == []
    assert await placed(client, "scratch", [N0])  # not selected: stays
    bad = await cli("drain", N0, "--grace-period", "-5")
    assert bad.rc == 2 and "--grace-period must be -1" in bad.err, bad


def usage_env(millicores: int, mebibytes: int) -> list[Obj]:
    return [{"name": CPU_ENV, "value": str(millicores)}, {"name": MEMORY_ENV, "value": str(mebibytes * 2**20)}]


async def test_top_nodes_sums_the_kubelets_pod_usage(runner: ActorRunner, client: ApiClient, cli: ShoalCli) -> None:
    hollow: HollowNodes = await start_batch_cluster(runner, client, nodes=2, controllers=CONTROLLERS)
    assert len(hollow.agents) == 2
    for name, millicores, mebibytes in (("busy", 250, 1024), ("busier", 750, 3072)):
        await client.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NS},
                             "spec": {"nodeName": N0, "containers": [
                                 {"name": "c", "image": "img:1", "env": usage_env(millicores, mebibytes)}]}})
    node0 = await client.get("Node", N0)
    cpu, memory = (cpu_millis(node0["status"]["allocatable"]["cpu"]),
                   memory_bytes(node0["status"]["allocatable"]["memory"]))
    expected = [N0, "1000m", f"{int(1000 / cpu * 100)}%", "4096Mi", f"{int(4096 * 2**20 / memory * 100)}%"]
    assert expected[2] != "0%" and expected[4] != "0%"
    # a Node no kubelet serves: shown with unknown figures, last
    await client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ghost"}})

    async def top() -> list[list[str]] | None:
        result = await cli("top", "nodes")
        rows = [line.split() for line in result.out.splitlines()]
        return rows if result.rc == 0 and len(rows) == 4 and rows[1] == expected else None

    rows = await eventually(top, timeout=30, interval=0.5)
    assert rows[0] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert rows[2] == [N1, "0m", "0%", "0Mi", "0%"]
    assert rows[3] == ["ghost", "<unknown>", "<unknown>", "<unknown>", "<unknown>"]

    one = await cli("top", "node", N0, "--no-headers")
    assert one.rc == 0 and one.out.split() == expected, one
    by_capacity = await cli("top", "node", N0, "--show-capacity")
    capacity = cpu_millis(node0["status"]["capacity"]["cpu"])
    assert by_capacity.out.splitlines()[1].split()[2] == f"{int(1000 / capacity * 100)}%", by_capacity
    unknown = await cli("top", "node", "ghost")
    assert unknown.rc == 1 and "metrics not available yet for node ghost" in unknown.err, unknown
    pods = await cli("top", "pods", "--sort-by", "memory")
    assert [line.split() for line in pods.out.splitlines()] == [
        ["POD", "CPU(cores)", "MEMORY(bytes)"], ["busier", "750m", "3072Mi"], ["busy", "250m", "1024Mi"]], pods
    wrong = await cli("top", "nodes", "-n", "kube-system")
    assert wrong.rc == 2 and "nodes belong to no namespace" in wrong.err, wrong


async def test_get_all_lists_the_all_category(client: ApiClient, cli: ShoalCli) -> None:
    containers = [{"name": "c", "image": "img:1"}]
    pod_template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": containers}}
    selector = {"matchLabels": {"app": "x"}}
    job_spec = {"template": {"metadata": {"labels": {"app": "x"}},
                             "spec": {"restartPolicy": "Never", "containers": containers}}}
    for obj in (
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"}, "spec": job_spec},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
         "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job_spec}}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
         "spec": {"selector": selector, "template": pod_template}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
         "spec": {"serviceName": "web", "replicas": 0, "selector": selector, "template": pod_template}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web"},
                  "minReplicas": 1, "maxReplicas": 3}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "b"}},
    ):
        obj["metadata"]["namespace"] = NS
        await client.create(obj)
    result = await cli("get", "all")
    assert result.rc == 0, result
    names = [line.split()[0] for line in result.out.splitlines() if line and not line.startswith("NAME")]
    assert names == ["service/kubernetes", "daemonset.apps/agent", "statefulset.apps/web",
                     "horizontalpodautoscaler.autoscaling/web", "cronjob.batch/nightly", "job.batch/once"] \
        or names == ["daemonset.apps/agent", "statefulset.apps/web", "horizontalpodautoscaler.autoscaling/web",
                     "cronjob.batch/nightly", "job.batch/once"], result
    listed = await cli("api-resources", "--categories", "all")
    assert sorted(line.split()[0] for line in listed.out.splitlines()[1:]) == sorted(
        ["pods", "replicationcontrollers", "services", "daemonsets", "deployments", "replicasets", "statefulsets",
         "horizontalpodautoscalers", "cronjobs", "jobs"]), listed
