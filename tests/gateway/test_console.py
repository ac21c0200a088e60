"""The web console at ``/ui/`` in a real headless Chromium, against a real cluster: nats-server, API actors,
the gateway (HTTPS, admin token), the deployment and replicaset controllers and a kubelet on the fake
runtime (node ``n1``). Login (a wrong token refused), the cluster view's tiles (500 nodes virtualised),
pods appearing live, scale/restart/apply/cordon from the page checked through the API, the API's error
for a bad manifest, events live and filtered, deep links, dialogs driven by the keyboard with a visible
focus ring, dark mode by system preference, logs streaming (from a stub kubelet: lines sent while the page
is open appear, and leaving the view cancels the kubelet's stream), a crash-looping pod marked. Each view
is screenshotted."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agents.kubelet.agent import KubeletAgent
from agents.kubelet.config import KubeletConfig
from agents.kubelet.fake_runtime import FakeRuntime
from agents.kubelet.node import StaticMetrics
from agents.kubelet.probes import AlwaysPassProber
from protocol import codec, subjects
from protocol.errors import NotFound
from protocol.objects import Obj, format_time
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import StartControllers, eventually, start_controllers
from tests.gateway.browser import Browser, new_driver, screenshot_dir, skip_without_browser
from tests.gateway.conftest import Gateway

__all__ = ["start_controllers"]  # fixture used here
pytestmark = [pytest.mark.slow, skip_without_browser()]


@pytest.fixture
async def browser(gateway: Gateway, tmp_path: Path) -> AsyncIterator[Browser]:
    driver = await asyncio.to_thread(new_driver)
    try:
        yield Browser(driver, gateway.url, screenshot_dir(tmp_path))
    finally:
        await asyncio.to_thread(driver.quit)


@pytest.fixture
async def kubelet(gateway: Gateway, runner: ActorRunner, tmp_path: Path) -> KubeletAgent:
    runtime = FakeRuntime()
    config = KubeletConfig(node_name="n1", state_dir=tmp_path / "kubelet", relist_interval=0.2, measure_host=False)
    agent = KubeletAgent(config, runtime=runtime, runtime_name="fake", runtime_version="fake://0.1",
                         prober=AlwaysPassProber(runtime), metrics=StaticMetrics(), close_runtime=False)
    await runner.start(agent, lambda: agent.started.is_set())
    return agent


def token(gateway: Gateway) -> str:
    return gateway.credentials.token_file.read_text().strip()


def pod(name: str, node: str = "n1", cpu: str = "250m") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "img:1",
                                                       "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}}


def deployment(name: str, replicas: int) -> Obj:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "img:1"}]}}}}


async def test_root_redirects_a_browser_and_files_need_no_token(gateway: Gateway) -> None:
    context = ssl.create_default_context(cafile=str(gateway.credentials.ca_cert))

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), NoRedirect)

    def fetch(path: str, accept: str) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(gateway.url + path, headers={"Accept": accept})
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    status, headers, _ = await asyncio.to_thread(fetch, "/", "text/html,application/xhtml+xml")
    assert (status, headers["Location"]) == (302, "/ui/")
    status, _, _ = await asyncio.to_thread(fetch, "/", "application/json")
    assert status == 401  # an API client without a token is still refused
    status, headers, body = await asyncio.to_thread(fetch, "/ui/", "text/html")
    assert status == 200 and b"Shoal console" in body and "script-src 'self'" in headers["Content-Security-Policy"]
    status, headers, _ = await asyncio.to_thread(fetch, "/ui/views/cluster.js", "*/*")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    status, _, _ = await asyncio.to_thread(fetch, "/ui/../server.py", "*/*")
    assert status == 404


async def test_login_cluster_view_and_cordon(gateway: Gateway, api_client: ApiClient, kubelet: KubeletAgent,
                                             browser: Browser) -> None:
    await browser.navigate(gateway.url + "/")  # the browser is sent to /ui/
    await browser.wait("#login-form")
    await browser.screenshot("login")
    await browser.login("not-the-token")
    assert "Unauthorized" in (await browser.wait("#login-message", "Unauthorized")).text
    await browser.login(token(gateway))
    tile = await browser.wait('[data-node="n1"]', "Ready")
    assert "0 pods" in tile.text
    await api_client.create(pod("p1"))
    await browser.wait('[data-node="n1"]', "1 pod")  # live: the pod's requests count on its node
    assert "250m" in (await browser.wait('[data-node="n1"]')).text
    await browser.screenshot("cluster")
    await browser.click('[data-node="n1"] button', "Cordon")
    await browser.click("#dialog-ok")

    async def cordoned() -> bool:
        return bool((await api_client.get("Node", "n1")).get("spec", {}).get("unschedulable"))

    await eventually(cordoned)
    await browser.wait('[data-node="n1"]', "cordoned")
    # a token that stops working sends the user back to the login form with the API's message
    await browser.js("sessionStorage.setItem('shoal.token', 'revoked'); location.hash = '#/events';")
    assert "Unauthorized" in (await browser.wait("#login-message", "Unauthorized")).text


async def test_workloads_live_scale_restart_apply_and_pod_logs(gateway: Gateway, api_client: ApiClient,
                                                              kubelet: KubeletAgent, browser: Browser,
                                                              start_controllers: StartControllers) -> None:
    await start_controllers("deployment", "replicaset")
    await browser.open("#/ns/default/workloads")  # a deep link: after login, the page asked for
    await browser.login(token(gateway))
    await browser.wait("h1", "Workloads in")
    await browser.wait("#deployments")  # discovery found apps/v1 deployments
    await api_client.create(pod("live-1"))
    started = time.monotonic()
    await browser.wait('#pods tr[data-name="live-1"]')
    appeared = time.monotonic() - started
    await api_client.create(deployment("web", 1))
    await browser.wait('#deployments tr[data-name="web"]')
    await browser.click('#deployments tr[data-name="web"] button', "Scale")
    await browser.type("#scale-replicas", "3")
    await browser.click("#dialog-ok")

    async def scaled() -> bool:
        return bool((await api_client.get("Deployment", "web", "default"))["spec"]["replicas"] == 3)

    await eventually(scaled)
    await browser.wait('#deployments tr[data-name="web"] td', "3")
    await browser.click('#deployments tr[data-name="web"] button', "Restart")
    await browser.click("#dialog-ok")

    async def restarted() -> bool:
        dep = await api_client.get("Deployment", "web", "default")
        annotations = dep["spec"]["template"].get("metadata", {}).get("annotations") or {}
        return "kubectl.kubernetes.io/restartedAt" in annotations

    await eventually(restarted)
    await browser.wait('#replicasets tr[data-name^="web-"]')
    await browser.screenshot("workloads")
    # apply: a good manifest is created server-side; a bad one shows the API's own words
    await browser.click("#apply")
    await browser.type("#apply-manifest", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pasted\n"
                                          "data:\n  greeting: hello\n")
    await browser.click("#dialog-ok")

    async def applied() -> Obj | None:
        try:
            return await api_client.get("ConfigMap", "pasted", "default")
        except NotFound:
            return None

    assert (await eventually(applied))["data"] == {"greeting": "hello"}
    await browser.click("#apply")
    await browser.type("#apply-manifest", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\n"
                                          "spec:\n  replicas: -1\n")
    await browser.click("#dialog-ok")
    error = await browser.wait(".toast.error")
    assert "broken" in error.text or "replicas" in error.text, error.text
    await browser.screenshot("apply-error")
    # pod detail from the list, its logs streamed; then the same view through a deep link
    await browser.click('#pods tr[data-name="live-1"] a')
    await browser.wait("#pod-status", "Running")
    await browser.wait("#pod-logs", "fake container c attempt 0 started")
    await browser.screenshot("pod")
    await browser.navigate(await browser.js("return location.href"))  # a deep link, the token kept in the tab
    await browser.wait("#pod-logs", "fake container c attempt 0 started")
    assert await browser.js("return window.shoalConsole.view") == "/ns/default/pods/live-1"
    assert appeared < 5, f"the pod took {appeared:.2f}s to appear"


async def test_events_live_filtered_and_deep_linked(gateway: Gateway, api_client: ApiClient,
                                                    browser: Browser) -> None:
    await browser.open("#/events?type=Warning")
    await browser.login(token(gateway))
    await browser.wait("#event-count", "events")
    assert await browser.js("return document.getElementById('filter-type').value") == "Warning"
    now = format_time(time.time())
    for name, kind in (("boom", "Warning"), ("fine", "Normal")):
        await api_client.create({"apiVersion": "v1", "kind": "Event",
                                 "metadata": {"name": f"{name}.1", "namespace": "default"},
                                 "involvedObject": {"kind": "Pod", "name": name, "namespace": "default"},
                                 "type": kind, "reason": f"Reason{name.title()}", "message": f"{name} happened",
                                 "firstTimestamp": now, "lastTimestamp": now, "count": 1})
    await browser.wait("#event-list li", "boom happened")
    await browser.wait("#event-count", "1 of 2 events")  # the Normal one is filtered out
    await browser.screenshot("events")
    # the system's dark preference turns the page dark (no setting of its own)
    light = await browser.js("return getComputedStyle(document.body).backgroundColor")
    await browser.run(browser.driver.execute_cdp_cmd, "Emulation.setEmulatedMedia",
                      {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    dark = await browser.js("return getComputedStyle(document.body).backgroundColor")
    assert (light, dark) == ("rgb(247, 247, 248)", "rgb(21, 23, 27)")
    await browser.screenshot("events-dark")
    await browser.run(browser.driver.execute_script,
                      "const s = document.getElementById('filter-type'); s.value = ''; "
                      "s.dispatchEvent(new Event('change'));")
    await browser.wait("#event-list li", "fine happened")
    await browser.type("#filter-object", "fin")
    await browser.wait("#event-count", "1 of 2 events")
    assert "filter" not in await browser.js("return location.hash") and "object=fin" in await browser.js(
        "return location.hash")


async def test_cluster_view_aggregates_and_virtualises_500_nodes(gateway: Gateway, api_client: ApiClient,
                                                                 browser: Browser) -> None:
    now = format_time(time.time())
    semaphore = asyncio.Semaphore(64)

    async def node(i: int) -> None:
        ready = "False" if i % 50 == 0 else "True"
        async with semaphore:
            await api_client.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"node-{i:04d}"},
                                     "spec": {"unschedulable": i % 100 == 1},
                                     "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                                                "conditions": [{"type": "Ready", "status": ready,
                                                                "lastHeartbeatTime": now,
                                                                "lastTransitionTime": now}]}})

    await asyncio.gather(*(node(i) for i in range(500)))
    await browser.open("#/nodes")
    await browser.login(token(gateway))
    summary = await browser.wait("#cluster-summary", "500 nodes")
    assert "10 NotReady" in summary.text and "5 cordoned" in summary.text, summary.text
    tiles = await browser.js("return document.querySelectorAll('#node-tiles .tile').length")
    assert 0 < tiles < 200, f"{tiles} tiles in the DOM: not virtualised"
    await browser.js("document.getElementById('node-tiles').scrollTop = 1e6")
    await browser.wait('[data-node="node-0499"]')
    await browser.screenshot("cluster-500")


async def test_cluster_view_figures_come_from_the_gateway_summary_live(gateway: Gateway, api_client: ApiClient,
                                                                       kubelet: KubeletAgent, browser: Browser) -> None:
    await api_client.create(pod("s1"))  # before the page opens: in the summary's snapshot
    await browser.open("#/nodes")
    await browser.login(token(gateway))
    tile = await browser.wait('[data-node="n1"]', "1 pod")
    assert "250m" in tile.text and "64Mi" in tile.text, tile.text
    assert await browser.js("return document.getElementById('view').dataset.podSource") == "summary"
    await api_client.create(pod("s2", cpu="500m"))
    assert "750m" in (await browser.wait('[data-node="n1"]', "2 pods")).text  # live, no reload
    await api_client.delete("Pod", "s1", "default", grace_period=0)
    await browser.wait('[data-node="n1"] .pods', "1 pod")
    assert "500m" in (await browser.wait('[data-node="n1"]')).text
    assert "1 pods on nodes" in (await browser.wait("#cluster-summary")).text
    # the figures came from the gateway's summary: the page never listed or watched pods itself
    fetched = await browser.js("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert not [url for url in fetched if "/pods" in url], fetched
    assert len(gateway.actor.node_summary.subscribers) == 1

    # a user who may read nodes but pods only in its namespace: the gateway refuses it the summary, the page
    # falls back to the pods it may list cluster-wide (none), and says so in the API's words
    await api_client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    await api_client.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}, "team")
    secret = await api_client.create({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}}}, "team")
    robot = base64.b64decode(secret["data"]["token"]).decode()
    subject = [{"kind": "ServiceAccount", "name": "robot", "namespace": "team"}]
    rbac = "rbac.authorization.k8s.io"
    await api_client.create({"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": "node-reader"},
                             "rules": [{"apiGroups": [""], "resources": ["nodes"],
                                        "verbs": ["get", "list", "watch"]}]})
    await api_client.create({"apiVersion": f"{rbac}/v1", "kind": "ClusterRoleBinding",
                             "metadata": {"name": "robot-nodes"}, "subjects": subject,
                             "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "node-reader"}})
    await api_client.create({"apiVersion": f"{rbac}/v1", "kind": "RoleBinding",
                             "metadata": {"name": "robot-view", "namespace": "team"}, "subjects": subject,
                             "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "view"}}, "team")
    await browser.js("sessionStorage.setItem('shoal.token', arguments[0]); location.hash = '#/events';", robot)
    await browser.wait("h1", "Events")
    await browser.js("location.hash = '#/nodes'")
    refused = await browser.wait('[data-stat="pods-error"]', "forbidden")
    assert refused.text == ('pods not shown: pods is forbidden: User "system:serviceaccount:team:robot" cannot '
                            'list resource "pods" in API group "" at the cluster scope'), refused.text
    assert await browser.js("return document.getElementById('view').dataset.podSource") == "pods"
    assert "Ready" in (await browser.wait('[data-node="n1"]')).text  # the nodes it may see are drawn


async def test_a_crash_looping_pod_is_marked_and_deleted_by_keyboard(gateway: Gateway, api_client: ApiClient,
                                                                     browser: Browser) -> None:
    await browser.open("#/ns/default/workloads")
    await browser.login(token(gateway))
    created = await api_client.create(pod("crasher", node="elsewhere"))  # no kubelet there: the status is ours
    await browser.wait('#pods tr[data-name="crasher"]', "Pending")
    created["status"] = {"phase": "Running", "containerStatuses": [
        {"name": "c", "image": "img:1", "ready": False, "restartCount": 4,
         "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}}]}
    await api_client.update_status(created)
    row = await browser.wait('#pods tr[data-name="crasher"]', "CrashLoopBackOff")
    assert "bad" in row.get_attribute("class") and "4" in row.text
    await browser.screenshot("crashloop")
    # by keyboard: Tab reaches the row's Delete button, Enter asks, Escape cancels, Enter twice deletes
    from selenium.webdriver.common.keys import Keys

    delete = await browser.wait('#pods tr[data-name="crasher"] button', "Delete")
    await browser.js("document.querySelector('#pods tr[data-name=\"crasher\"] a').focus()")
    active = browser.driver.switch_to.active_element
    await browser.run(active.send_keys, Keys.TAB)
    assert await browser.js("return document.activeElement.textContent") == "Delete"
    assert delete == browser.driver.switch_to.active_element
    outline = await browser.js("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # the focus ring shows for keyboard users
    await browser.run(delete.send_keys, Keys.ENTER)
    await browser.wait("#dialog[open]")
    await browser.run(browser.driver.switch_to.active_element.send_keys, Keys.ESCAPE)
    await browser.wait('#pods tr[data-name="crasher"]')
    assert not await browser.js("return document.getElementById('dialog').open")
    assert "deletionTimestamp" not in (await api_client.get("Pod", "crasher", "default"))["metadata"]
    await browser.run(delete.send_keys, Keys.ENTER)
    await browser.wait("#dialog[open]")
    assert await browser.js("return document.activeElement.id") == "dialog-ok"
    await browser.run(browser.driver.switch_to.active_element.send_keys, Keys.ENTER)

    async def gone() -> bool:  # deleted gracefully: no kubelet on its node confirms, so it stays Terminating
        try:
            return "deletionTimestamp" in (await api_client.get("Pod", "crasher", "default"))["metadata"]
        except NotFound:
            return True

    await eventually(gone)
    await browser.wait('#pods tr[data-name="crasher"]', "Terminating")


async def test_logs_stream_live_and_stop_when_the_view_is_left(gateway: Gateway, api_client: ApiClient,
                                                               browser: Browser) -> None:
    nc = api_client.nc
    requests: list[dict[str, Any]] = []

    async def serve(msg: Any) -> None:  # a stub kubelet: one line now, more when the test says
        request = codec.decode(msg.data)
        requests.append(request)
        if "inbox" in request:
            await nc.publish(request["inbox"], codec.ok(lines=["first line"], seq=1, more=True))

    await nc.subscribe(subjects.node_agent("stub", "logs"), cb=serve)
    await api_client.create(pod("chatty", node="stub"))
    await browser.open("#/ns/default/pods/chatty")
    await browser.login(token(gateway))
    await browser.wait("#pod-logs", "first line")
    opened = [r for r in requests if "inbox" in r]
    assert opened[-1]["follow"] is True and opened[-1]["tail"] == 100 and opened[-1]["container"] == "c", opened
    await nc.publish(opened[-1]["inbox"], codec.ok(lines=["second line", "third line"], seq=2, more=True))
    await browser.wait("#pod-logs", "third line")  # streamed into the open page
    await browser.click("a", "workloads in default")  # leaving the view aborts the stream
    await browser.wait("h1", "Workloads in")

    async def cancelled() -> bool:
        return any(r.get("cancel") == opened[-1]["inbox"] for r in requests)

    await eventually(cancelled)
