"""``kubectl get all`` through the gateway follows the ``all`` category of the kind registry
(``KindInfo.categories``, served in discovery): Jobs, CronJobs, DaemonSets, StatefulSets and HPAs too."""

from __future__ import annotations

from runtime.client import ApiClient
from tests.gateway.conftest import Gateway


async def test_kubectl_get_all_shows_the_all_category(gateway: Gateway, api_client: ApiClient) -> None:
    containers = [{"name": "c", "image": "img:1"}]
    job_spec = {"template": {"spec": {"restartPolicy": "Never", "containers": containers}}}
    selector = {"matchLabels": {"app": "x"}}
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": containers}}
    for obj in (
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"}, "spec": job_spec},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
         "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job_spec}}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
         "spec": {"selector": selector, "template": template}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                  "maxReplicas": 3}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}},
    ):
        obj["metadata"]["namespace"] = "default"
        await api_client.create(obj)
    out = await gateway.ok("get", "all", "-o", "name")
    names = set(out.split())
    assert {"daemonset.apps/agent", "horizontalpodautoscaler.autoscaling/web", "cronjob.batch/nightly",
            "job.batch/once"} <= names, out
    assert not any(n.startswith("configmap") for n in names), out
