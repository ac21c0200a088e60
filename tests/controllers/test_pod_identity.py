"""Pod identity (issue 13 item 4) against a real API actor: ServiceAccount admission adds the projected token
volume, the rootca controller publishes kube-root-ca.crt, and TokenRequest (``serviceaccounts/<name>/token``)
issues a pod-bound token only to the node the pod is bound to, which token review accepts for that account only
until the pod goes."""

from __future__ import annotations

from typing import Any

import pytest

from actors.controllers.rootca_plan import CreateConfigMap, UpdateConfigMap, plan
from protocol import subjects
from protocol.errors import BadRequest, Conflict, Forbidden
from protocol.kinds import by_kind
from protocol.objects import Obj
from protocol.podidentity import MOUNT_PATH, ROOT_CA_CONFIGMAP, add_token_volume, automount
from protocol.subjects import Verb
from runtime.client import ApiClient
from tests.controllers.conftest import StartControllers, eventually


def pod(name: str, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "team"},
            "spec": {"containers": [{"name": "c", "image": "i"}], "initContainers": [{"name": "i", "image": "i"}],
                     **spec}}


def token_volumes(obj: Obj) -> list[Obj]:
    return [v for v in obj["spec"].get("volumes") or [] if v["name"].startswith("kube-api-access-")]


def test_automount_and_volume_shape() -> None:
    assert automount(pod("p"), None) and automount(pod("p"), {"automountServiceAccountToken": True})
    assert not automount(pod("p"), {"automountServiceAccountToken": False})
    assert automount(pod("p", automountServiceAccountToken=True), {"automountServiceAccountToken": False})
    p = pod("p")
    assert add_token_volume(p, "abcde") and not add_token_volume(p, "fghij")  # idempotent
    [volume] = token_volumes(p)
    assert volume["name"] == "kube-api-access-abcde"
    assert [sorted(s) for s in volume["projected"]["sources"]] == [["serviceAccountToken"], ["configMap"],
                                                                   ["downwardAPI"]]
    for c in p["spec"]["containers"] + p["spec"]["initContainers"]:
        assert {"name": "kube-api-access-abcde", "mountPath": MOUNT_PATH, "readOnly": True} in c["volumeMounts"]


def test_rootca_plan() -> None:
    ns = {"metadata": {"name": "team"}, "status": {"phase": "Active"}}
    [create] = plan(ns, None, "PEM")
    assert isinstance(create, CreateConfigMap) and create.configmap["data"] == {"ca.crt": "PEM"}
    assert plan(ns, create.configmap, "PEM") == []
    [update] = plan(ns, create.configmap, "NEW")
    assert isinstance(update, UpdateConfigMap) and update.configmap["data"]["ca.crt"] == "NEW"
    assert plan({**ns, "status": {"phase": "Terminating"}}, None, "PEM") == []


async def test_admission_token_verb_and_review(client: ApiClient, start_controllers: StartControllers) -> None:
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    bare = await client.create(pod("before-controllers"))
    assert token_volumes(bare) == []  # no default account yet: admitted without a token
    await start_controllers("serviceaccount", "rootca")
    await eventually(lambda: _exists(client, "ServiceAccount", "default"))
    cm = await eventually(lambda: _exists(client, "ConfigMap", ROOT_CA_CONFIGMAP))
    assert cm["data"] == {"ca.crt": ""}  # no TLS in this test: an empty, present CA bundle

    web = await client.create(pod("web"))
    assert web["spec"]["serviceAccountName"] == "default" and len(token_volumes(web)) == 1
    assert token_volumes(await client.create(pod("off", automountServiceAccountToken=False))) == []
    with pytest.raises(Forbidden, match='serviceaccount "robot" not found'):
        await client.create(pod("robotic", serviceAccountName="robot"))
    await client.create({"apiVersion": "v1", "kind": "ServiceAccount",
                         "metadata": {"name": "robot", "namespace": "team"}, "automountServiceAccountToken": False})
    robotic = await client.create(pod("robotic", serviceAccountName="robot"))
    assert token_volumes(robotic) == []  # the account says no
    mounted = await client.create(pod("robotic2", serviceAccountName="robot", automountServiceAccountToken=True))
    assert len(token_volumes(mounted)) == 1  # the pod's own setting wins

    await client.bind("web", "team", "node-a")
    await client.bind("robotic2", "team", "node-a")
    web = await client.get("pods", "web", "team")

    def token_request(pod_name: str, uid: str | None = None, **spec: Any) -> dict[str, Any]:
        ref = {"kind": "Pod", "apiVersion": "v1", "name": pod_name, **({"uid": uid} if uid else {})}
        return {"object": {"kind": "TokenRequest", "spec": {"boundObjectRef": ref, **spec}}}

    sa_subject = subjects.node_api("node-a", Verb.TOKEN, by_kind("ServiceAccount"), "team", "default")
    issued = (await client.request(sa_subject, token_request("web", web["metadata"]["uid"],
                                                             expirationSeconds=3607)))["object"]
    token = issued["status"]["token"]
    assert issued["spec"]["expirationSeconds"] == 3607 and issued["spec"]["boundObjectRef"]["name"] == "web"
    with pytest.raises(Forbidden, match="bound to pods bound to it"):  # another node's kubelet
        await client.request(subjects.node_api("node-b", Verb.TOKEN, by_kind("ServiceAccount"), "team", "default"),
                             token_request("web"))
    with pytest.raises(Forbidden, match="bound to a pod"):  # a node asks only for pod-bound tokens
        await client.request(sa_subject, {"object": {"spec": {}}})
    with pytest.raises(BadRequest, match="different serviceaccount"):  # only for the pod's own account
        await client.request(sa_subject, token_request("robotic2"))
    with pytest.raises(Conflict, match="UID"):
        await client.request(sa_subject, token_request("web", "another-uid"))
    with pytest.raises(Forbidden):  # pods have no token verb any more: TokenRequest is on serviceaccounts
        await client.request(subjects.node_api("node-a", Verb.TOKEN, by_kind("Pod"), "team", "web"), {})
    review = await client.review_token(token)
    assert review["user"]["username"] == "system:serviceaccount:team:default"
    assert review["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["web"]
    assert review["user"]["extra"]["authentication.kubernetes.io/node-name"] == ["node-a"]
    robot_token = (await client.request(
        subjects.node_api("node-a", Verb.TOKEN, by_kind("ServiceAccount"), "team", "robot"),
        token_request("robotic2")))["object"]["status"]["token"]
    assert (await client.review_token(robot_token))["user"]["username"] == "system:serviceaccount:team:robot"
    await client.delete("pods", "web", "team", grace_period=0)
    with pytest.raises(Forbidden, match="revoked"):
        await client.review_token(token)  # bound to the pod: gone with it


async def _exists(client: ApiClient, kind: str, name: str) -> Obj | None:
    try:
        return await client.get(kind, name, "team")
    except Exception:
        return None
