"""RBAC in the API actor over real NATS: requests carrying ``as`` are authorized from the actor's cached
policy, a binding is honoured by the very next request (read-your-writes on refusal), the policy is rebuilt
only when an RBAC object changes, the bootstrap policy exists, and kubelets may not impersonate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

from protocol import subjects
from protocol.errors import Forbidden
from protocol.kinds import by_kind
from protocol.subjects import Verb
from runtime.client import ApiClient
from runtime.nats_server import NatsServer
from tests.conftest import ActorRunner, start_api

G = "rbac.authorization.k8s.io"
ROBOT = {"user": "system:serviceaccount:team:robot",
         "groups": ["system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"]}


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Any]:
    conn = await nats.connect(nats_server.url)
    try:
        yield conn
    finally:
        await conn.close()


def binding(name: str, role_kind: str, role: str) -> dict[str, Any]:
    return {"apiVersion": f"{G}/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": "team"},
            "roleRef": {"apiGroup": G, "kind": role_kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "team"}]}


async def test_impersonated_requests_follow_the_cached_policy(runner: ActorRunner, nats_server: NatsServer,
                                                              nc: Any) -> None:
    api = await start_api(runner)
    admin, robot = ApiClient(nc), ApiClient(nc, impersonate=lambda: ROBOT)
    names = {o["metadata"]["name"] for o in (await admin.list("ClusterRole")).items}
    assert {"cluster-admin", "admin", "edit", "view", "system:kube-scheduler"} <= names
    await admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    await admin.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}, "team")
    with pytest.raises(Forbidden, match='configmaps "c" is forbidden: User "system:serviceaccount:team:robot" '
                                        'cannot get resource "configmaps" in API group "" in the namespace "team"'):
        await robot.get("ConfigMap", "c", "team")
    builds = api.rbac.builds
    for i in range(5):  # writes of other kinds never rebuild the policy
        await admin.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"x{i}"}}, "team")
        with pytest.raises(Forbidden):
            await robot.list("ConfigMap", "team")
    assert api.rbac.builds == builds

    # a Role bound before it exists grants nothing; once created it grants at once (no wait, no retry)
    await admin.create(binding("reader", "Role", "cm-reader"))
    with pytest.raises(Forbidden):
        await robot.get("ConfigMap", "c", "team")
    await admin.create({"apiVersion": f"{G}/v1", "kind": "Role", "metadata": {"name": "cm-reader", "namespace": "team"},
                        "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"]}]})
    assert (await robot.get("ConfigMap", "c", "team"))["metadata"]["name"] == "c"
    assert len((await robot.list("ConfigMap", "team")).items) == 6
    with pytest.raises(Forbidden, match='cannot update resource "configmaps"'):
        await robot.update({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "team"}})
    with pytest.raises(Forbidden, match='cannot list resource "configmaps" in API group "" in the namespace "other"'):
        await robot.list("ConfigMap", "other")
    await admin.delete("RoleBinding", "reader", "team")
    with pytest.raises(Forbidden):
        await robot.get("ConfigMap", "c", "team")

    # subresources as Kubernetes names them: a TokenRequest is create serviceaccounts/token
    await admin.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}, "team")
    with pytest.raises(Forbidden, match='cannot create resource "serviceaccounts/token"'):
        await robot.request_token("robot", "team")
    await admin.create(binding("editor", "ClusterRole", "edit"))
    assert (await robot.request_token("robot", "team"))["status"]["token"]

    # trusted callers without `as` are system:masters; a kubelet may not impersonate
    assert await admin.get("ConfigMap", "c", "team")
    subject = subjects.node_api("n1", Verb.PATCH, by_kind("ConfigMap"), "team", "c")
    with pytest.raises(Forbidden, match="may not impersonate"):
        await admin.request(subject, {"patch": {"data": {"a": "b"}},
                                      "as": {"user": "shoal-admin", "groups": ["system:masters"]}})


async def test_access_reviews(runner: ActorRunner, nats_server: NatsServer, nc: Any) -> None:
    await start_api(runner)
    admin = ApiClient(nc)
    spec = {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "team"}}
    assert (await admin.admin("accessreview", {"subject": ROBOT, "spec": spec}))["status"] == {"allowed": False}
    await admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    await admin.create(binding("viewer", "ClusterRole", "view"))
    status = (await admin.admin("accessreview", {"subject": ROBOT, "spec": spec}))["status"]
    assert status["allowed"] is True and "viewer" in status["reason"]
    rules = (await admin.admin("rulesreview", {"subject": ROBOT, "namespace": "team"}))["status"]
    assert any("pods" in r["resources"] and "list" in r["verbs"] for r in rules["resourceRules"])
    robot = ApiClient(nc, impersonate=lambda: ROBOT)  # an admin operation as the robot: not allowed
    with pytest.raises(Forbidden, match='cannot create path "/shoal/admin/accessreview"'):
        await robot.admin("accessreview", {"subject": ROBOT, "spec": spec})


async def test_nobody_grants_what_they_do_not_hold(runner: ActorRunner, nats_server: NatsServer, nc: Any) -> None:
    """RBAC escalation prevention over NATS: a namespace admin (``as``) binds ``edit`` but not
    ``cluster-admin``, writes no Role with verbs it lacks, and binds cluster-admin once granted ``bind`` on it
    by name; a trusted caller's write made ``onBehalfOf`` a user is judged as that user's; nothing refused is
    stored."""
    await start_api(runner)
    admin, robot = ApiClient(nc), ApiClient(nc, impersonate=lambda: ROBOT)
    await admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    await admin.create(binding("robot-admin", "ClusterRole", "admin"))
    await robot.create(binding("robot-edit", "ClusterRole", "edit"))  # held: allowed
    with pytest.raises(Forbidden, match=r'rolebindings.rbac.authorization.k8s.io "robot-root" is forbidden: user '
                                        r'"system:serviceaccount:team:robot" \(groups=.*\) is attempting to grant '
                                        r"RBAC permissions not currently held:\n"):
        await robot.create(binding("robot-root", "ClusterRole", "cluster-admin"))
    nodes = {"apiVersion": f"{G}/v1", "kind": "Role", "metadata": {"name": "wide", "namespace": "team"},
             "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                       {"verbs": ["escalate"], "apiGroups": [G], "resources": ["roles"]}]}
    with pytest.raises(Forbidden, match=r'\{APIGroups:\["rbac.authorization.k8s.io"\], Resources:\["roles"\], '
                                        r'Verbs:\["escalate"\]\}'):
        await robot.create(nodes)
    narrow = {**nodes, "rules": nodes["rules"][:1]}
    await robot.create(narrow)
    with pytest.raises(Forbidden, match="not currently held"):  # an update may not widen it either
        await robot.update({**nodes, "metadata": {"name": "wide", "namespace": "team"}})
    with pytest.raises(Forbidden, match="not currently held"):  # nor a patch
        await robot.patch("Role", "wide", {"rules": nodes["rules"]}, "team")
    names = {o["metadata"]["name"] for o in (await admin.list("RoleBinding", "team")).items}
    assert names == {"robot-admin", "robot-edit"}
    assert len((await admin.get("Role", "wide", "team"))["rules"]) == 1  # refused writes left it as it was

    # a trusted caller (the gateway serving a patch it authorized as the user's) names the user: judged as the user
    subject = subjects.object_subject(Verb.UPDATE, by_kind("Role"), "team", "wide")
    current = await admin.get("Role", "wide", "team")
    with pytest.raises(Forbidden, match="not currently held"):
        await admin.request(subject, {"object": {**current, "rules": nodes["rules"]}, "onBehalfOf": ROBOT})
    await admin.request(subject, {"object": {**current, "rules": nodes["rules"]}})  # as itself: system:masters

    # `bind` on cluster-admin, by name, lets the robot bind it (and only it)
    await admin.create({"apiVersion": f"{G}/v1", "kind": "ClusterRole", "metadata": {"name": "bind-root"},
                        "rules": [{"verbs": ["bind"], "apiGroups": [G], "resources": ["clusterroles"],
                                   "resourceNames": ["cluster-admin"]}]})
    await admin.create(binding("robot-bind-root", "ClusterRole", "bind-root"))
    with pytest.raises(Forbidden, match="not currently held"):
        await robot.create(binding("robot-scheduler", "ClusterRole", "system:kube-scheduler"))
    await robot.create(binding("robot-root", "ClusterRole", "cluster-admin"))
