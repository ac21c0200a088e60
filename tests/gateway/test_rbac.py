"""RBAC through the gateway with the real kubectl: every HTTP user's requests go to the API as that user
(``as``) and are authorized by the API's RBAC; ``kubectl auth can-i`` asks SelfSubjectAccessReviews."""

from __future__ import annotations

import base64
import json

from runtime.client import ApiClient
from tests.gateway.conftest import Gateway, read_until

FORBIDDEN_LIST = ('Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:team:robot" '
                  'cannot list resource "pods" in API group "" in the namespace "team"')


async def robot_token(api_client: ApiClient) -> str:
    await api_client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    await api_client.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}, "team")
    secret = await api_client.create({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "robot-token", "annotations": {"kubernetes.io/service-account.name": "robot"}}}, "team")
    return base64.b64decode(secret["data"]["token"]).decode()


async def test_a_service_account_without_a_binding_is_forbidden_then_view_allows_reads(
        gateway: Gateway, api_client: ApiClient) -> None:
    token = await robot_token(api_client)
    await gateway.ok("run", "web", "--image=docker.io/library/nginx:1.25", "-n", "team")
    as_robot = ("--token", token, "-n", "team")
    refused = await gateway.kubectl("get", "pods", *as_robot)
    assert refused.rc == 1 and FORBIDDEN_LIST in refused.err, refused
    no = await gateway.kubectl("auth", "can-i", "list", "pods", *as_robot)
    assert no.rc == 1 and no.out.strip() == "no", no

    # the admin kubeconfig binds the ClusterRole view to the ServiceAccount in its namespace
    await gateway.ok("create", "rolebinding", "robot-view", "--clusterrole=view", "--serviceaccount=team:robot",
                     "-n", "team")
    assert "web" in await gateway.ok("get", "pods", *as_robot)
    assert "web" in await gateway.ok("get", "pod", "web", "-o", "name", *as_robot)
    assert (await gateway.ok("auth", "can-i", "list", "pods", *as_robot)).strip() == "yes"
    assert (await gateway.ok("auth", "can-i", "get", "pods", "--subresource=log", *as_robot)).strip() == "yes"
    denied = await gateway.kubectl("auth", "can-i", "create", "deployments", *as_robot)
    assert denied.rc == 1 and denied.out.strip() == "no", denied
    # only in its namespace
    other = await gateway.kubectl("get", "pods", "-n", "default", "--token", token)
    assert other.rc == 1 and 'cannot list resource "pods" in API group "" in the namespace "default"' in other.err

    watch = await gateway.start("get", "pods", "--watch", "--output-watch-events", *as_robot)
    try:
        await read_until(watch.stdout, "web")
        await api_client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, "team")
        await gateway.ok("run", "second", "--image=docker.io/library/nginx:1.25", "-n", "team")
        await read_until(watch.stdout, "second")
    finally:
        watch.kill()
        await watch.wait()

    created = await gateway.kubectl("create", "configmap", "mine", "--from-literal=a=b", *as_robot)
    assert created.rc == 1 and ('configmaps is forbidden: User "system:serviceaccount:team:robot" cannot create '
                                'resource "configmaps" in API group "" in the namespace "team"') in created.err, created
    deleted = await gateway.kubectl("delete", "pod", "web", "--wait=false", *as_robot)
    assert deleted.rc == 1 and 'pods "web" is forbidden' in deleted.err, deleted
    secrets = await gateway.kubectl("get", "secrets", *as_robot)
    assert secrets.rc == 1 and "secrets is forbidden" in secrets.err, secrets
    # streams the gateway opens itself are authorized too: view allows logs, not exec
    execed = await gateway.kubectl("exec", "web", *as_robot, "--", "true")
    assert execed.rc == 1 and 'cannot create resource "pods/exec"' in execed.err, execed


async def test_the_admin_is_cluster_admin_and_can_i_list(gateway: Gateway, api_client: ApiClient) -> None:
    assert (await gateway.ok("auth", "can-i", "delete", "nodes")).strip() == "yes"
    assert (await gateway.ok("auth", "can-i", "*", "*")).strip() == "yes"
    # the bootstrap policy exists, as kube-apiserver creates it
    roles = await gateway.ok("get", "clusterroles", "-o", "name")
    for name in ("cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery",
                 "system:kube-scheduler", "system:kube-controller-manager", "system:service-account-issuer-discovery"):
        assert f"clusterrole.rbac.authorization.k8s.io/{name}\n" in roles, roles
    assert "cluster-admin" in await gateway.ok("get", "clusterrolebinding", "cluster-admin", "-o", "wide")
    token = await robot_token(api_client)
    listed = await gateway.ok("auth", "can-i", "--list", "-n", "team", "--token", token)
    assert "selfsubjectaccessreviews.authorization.k8s.io" in listed, listed
    # SubjectAccessReview: the admin asks about another user; the robot may not
    impersonated = await gateway.kubectl("auth", "can-i", "list", "pods", "-n", "team",
                                         "--as", "system:serviceaccount:team:robot")
    assert impersonated.rc == 1 and impersonated.out.strip() == "no", impersonated
    review = json.dumps({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
        "user": "system:serviceaccount:team:robot", "groups": ["system:serviceaccounts"],
        "resourceAttributes": {"verb": "create", "resource": "selfsubjectaccessreviews",
                               "group": "authorization.k8s.io"}}})
    answer = json.loads(await gateway.ok("create", "--raw", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                         "-f", "-", stdin=review))
    assert answer["status"]["allowed"] is False, answer  # basic-user is bound to system:authenticated only
    robot_asks = await gateway.kubectl("create", "--raw", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                       "-f", "-", "--token", token, stdin=review)
    assert robot_asks.rc == 1 and 'cannot create resource "subjectaccessreviews"' in robot_asks.err, robot_asks
    await gateway.ok("create", "role", "reader", "--verb=get,list", "--resource=pods", "-n", "team")
    await gateway.ok("create", "rolebinding", "r", "--role=reader", "--user=system:serviceaccount:team:robot",
                     "-n", "team")
    assert (await gateway.ok("auth", "can-i", "list", "pods", "-n", "team", "--token", token)).strip() == "yes"
    # roleRef is immutable, as in Kubernetes
    changed = await gateway.kubectl("patch", "rolebinding", "r", "-n", "team", "--type=merge",
                                    "-p", '{"roleRef":{"kind":"ClusterRole","name":"admin"}}')
    assert changed.rc == 1 and "cannot change roleRef" in changed.err, changed


async def test_impersonation_headers_need_the_impersonate_verb(gateway: Gateway, api_client: ApiClient) -> None:
    """kubectl --as/--as-group send Impersonate-* headers: the admin (cluster-admin) may act as the robot and
    then gets the robot's answers; the robot may not become the admin."""
    token = await robot_token(api_client)
    refused = await gateway.kubectl("get", "--raw", "/api/v1/pods", "--token", token, "--as", "shoal-admin",
                                    "--as-group", "system:masters")
    assert refused.rc == 1 and ('users "shoal-admin" is forbidden: User "system:serviceaccount:team:robot" cannot '
                                'impersonate resource "users" in API group ""') in refused.err, refused
    as_robot = await gateway.kubectl("get", "pods", "-n", "team", "--as", "system:serviceaccount:team:robot")
    assert as_robot.rc == 1 and FORBIDDEN_LIST in as_robot.err, as_robot
    whoami = await gateway.ok("auth", "whoami", "--as", "alice", "--as-group", "devs")
    assert "alice" in whoami and "devs" in whoami and "system:authenticated" in whoami, whoami


async def test_patch_scale_and_deletecollection_are_authorized_as_kubernetes_names_them(
        gateway: Gateway, api_client: ApiClient) -> None:
    """The gateway serves a patch as read-modify-write and scale on the object; RBAC still sees Kubernetes'
    verbs: ``patch``, ``update deployments/scale``, ``deletecollection``."""
    token = await robot_token(api_client)
    as_robot = ("--token", token, "-n", "team")
    await gateway.ok("run", "web", "--image=docker.io/library/nginx:1.25", "-n", "team")
    await gateway.ok("create", "deployment", "app", "--image=docker.io/library/nginx:1.25", "-n", "team")
    await gateway.ok("create", "role", "updater", "--verb=get,list,update", "--resource=pods,deployments",
                     "-n", "team")
    await gateway.ok("create", "rolebinding", "updater", "--role=updater", "--serviceaccount=team:robot", "-n", "team")
    labelled = await gateway.kubectl("label", "pod", "web", "a=b", *as_robot)
    assert labelled.rc == 1 and 'cannot patch resource "pods"' in labelled.err, labelled
    scaled = await gateway.kubectl("scale", "deployment", "app", "--replicas=2", *as_robot)
    assert scaled.rc == 1 and 'cannot patch resource "deployments/scale"' in scaled.err, scaled
    await gateway.ok("create", "role", "scaler", "--verb=patch", "--resource=pods,deployments/scale", "-n", "team")
    await gateway.ok("create", "rolebinding", "scaler", "--role=scaler", "--serviceaccount=team:robot", "-n", "team")
    await gateway.ok("label", "pod", "web", "a=b", *as_robot)
    await gateway.ok("scale", "deployment", "app", "--replicas=2", *as_robot)
    deployment = await api_client.get("Deployment", "app", "team")
    assert deployment["spec"]["replicas"] == 2
    swept = await gateway.kubectl("delete", "--raw", "/api/v1/namespaces/team/pods", "--token", token)
    assert swept.rc == 1 and 'cannot deletecollection resource "pods"' in swept.err, swept
    assert (await api_client.get("Pod", "web", "team"))["metadata"]["name"] == "web"


def _config_map(name: str, value: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "team"},
                       "data": {"k": value}})


async def test_server_side_apply_is_authorized_as_patch_and_create_when_it_creates(
        gateway: Gateway, api_client: ApiClient) -> None:
    """Kubernetes authorizes a server-side apply as ``patch`` (and, when it creates the object, ``create``
    too); the gateway serves it as a get then a create or an update, which must not decide instead: update
    without patch does not apply, patch without get does."""
    token = await robot_token(api_client)
    as_robot = ("--token", token, "-n", "team")
    await api_client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                             "data": {"k": "v0"}}, "team")
    await gateway.ok("create", "role", "updater", "--verb=get,list,update", "--resource=configmaps", "-n", "team")
    await gateway.ok("create", "rolebinding", "updater", "--role=updater", "--serviceaccount=team:robot", "-n", "team")
    applied = await gateway.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", *as_robot,
                                    stdin=_config_map("cfg", "v1"))
    assert applied.rc == 1 and 'cannot patch resource "configmaps"' in applied.err, applied
    assert (await api_client.get("ConfigMap", "cfg", "team"))["data"] == {"k": "v0"}

    await gateway.ok("delete", "rolebinding", "updater", "-n", "team")
    await gateway.ok("create", "role", "patcher", "--verb=patch", "--resource=configmaps", "-n", "team")
    await gateway.ok("create", "rolebinding", "patcher", "--role=patcher", "--serviceaccount=team:robot", "-n", "team")
    await gateway.ok("apply", "--server-side", "--force-conflicts", "-f", "-", *as_robot,
                     stdin=_config_map("cfg", "v2"))
    assert (await api_client.get("ConfigMap", "cfg", "team"))["data"] == {"k": "v2"}
    fresh = await gateway.kubectl("apply", "--server-side", "-f", "-", *as_robot, stdin=_config_map("fresh", "x"))
    assert fresh.rc == 1 and 'cannot create resource "configmaps"' in fresh.err, fresh


def _local_review(namespace: str, user: str, verb: str, resource: str, review_namespace: str | None = None) -> str:
    attributes = {"verb": verb, "resource": resource, **({"namespace": review_namespace} if review_namespace else {})}
    return json.dumps({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
                       "metadata": {"namespace": namespace},
                       "spec": {"user": user, "resourceAttributes": attributes}})


async def test_local_subject_access_review_is_for_a_namespaces_admin(gateway: Gateway, api_client: ApiClient) -> None:
    """A LocalSubjectAccessReview asks another user's access in one namespace; a namespace's ``admin`` may ask
    it there (not elsewhere, and not the cluster-wide SubjectAccessReview); its namespace is the URL's."""
    token = await robot_token(api_client)
    await api_client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    robot = "system:serviceaccount:team:robot"
    asked = json.loads(await gateway.ok("create", "-f", "-", "-o", "json",
                                        stdin=_local_review("team", robot, "list", "pods")))
    assert asked["kind"] == "LocalSubjectAccessReview" and asked["status"]["allowed"] is False, asked
    assert asked["spec"]["resourceAttributes"]["namespace"] == "team"
    await gateway.ok("create", "rolebinding", "robot-admin", "--clusterrole=admin", "--serviceaccount=team:robot",
                     "-n", "team")
    asked = json.loads(await gateway.ok("create", "-f", "-", "-o", "json",
                                        stdin=_local_review("team", robot, "list", "pods")))
    assert asked["status"]["allowed"] is True, asked
    # the robot, admin of team, asks about another user there; not in another namespace, not cluster-wide
    mine = json.loads(await gateway.ok("create", "-f", "-", "-o", "json", "--token", token,
                                       stdin=_local_review("team", "alice", "get", "secrets")))
    assert mine["status"]["allowed"] is False, mine
    elsewhere = await gateway.kubectl("create", "-f", "-", "--token", token,
                                      stdin=_local_review("other", "alice", "get", "secrets"))
    assert elsewhere.rc == 1 and 'cannot create resource "localsubjectaccessreviews"' in elsewhere.err, elsewhere
    review = json.dumps({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                         "spec": {"user": "alice", "resourceAttributes": {"verb": "get", "resource": "secrets"}}})
    cluster_wide = await gateway.kubectl("create", "-f", "-", "--token", token, stdin=review)
    assert cluster_wide.rc == 1 and 'cannot create resource "subjectaccessreviews"' in cluster_wide.err, cluster_wide
    mismatch = await gateway.kubectl("create", "-f", "-", stdin=_local_review("team", robot, "get", "pods", "other"))
    assert mismatch.rc == 1 and "must match the namespace" in mismatch.err, mismatch


async def test_a_watch_of_one_object_is_allowed_by_a_rule_naming_it(gateway: Gateway, api_client: ApiClient) -> None:
    """``kubectl get configmap cfg --watch`` lists and watches with ``fieldSelector=metadata.name=cfg``; as in
    Kubernetes, that is authorized on name ``cfg``, so a rule with ``resourceNames: [cfg]`` allows it, and
    still no other ConfigMap, nor the collection."""
    token = await robot_token(api_client)
    as_robot = ("--token", token, "-n", "team")
    await api_client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                             "data": {"k": "v0"}}, "team")
    await api_client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}}, "team")
    await gateway.ok("create", "role", "one", "--verb=get,list,watch", "--resource=configmaps",
                     "--resource-name=cfg", "-n", "team")
    await gateway.ok("create", "rolebinding", "one", "--role=one", "--serviceaccount=team:robot", "-n", "team")
    listed = await gateway.kubectl("get", "configmaps", *as_robot)
    assert listed.rc == 1 and 'cannot list resource "configmaps"' in listed.err, listed
    selected = await gateway.ok("get", "configmaps", "--field-selector=metadata.name=cfg", "-o", "name", *as_robot)
    assert selected.split() == ["configmap/cfg"], selected
    other = await gateway.kubectl("get", "configmaps", "--field-selector=metadata.name=other", *as_robot)
    assert other.rc == 1 and 'configmaps "other" is forbidden' in other.err, other
    watch = await gateway.start("get", "configmap", "cfg", "--watch", "-o", "jsonpath={.data.k}{\"\\n\"}",
                                *as_robot)
    try:
        await read_until(watch.stdout, "v0")
        await api_client.patch("ConfigMap", "cfg", {"data": {"k": "v1"}}, "team")
        await read_until(watch.stdout, "v1")
    finally:
        watch.kill()
        await watch.wait()


async def test_a_namespace_admin_cannot_grant_what_it_does_not_hold(gateway: Gateway, api_client: ApiClient) -> None:
    """RBAC escalation prevention through the gateway, with the real kubectl: the robot, admin of ``team``,
    binds ``edit`` there but not ``cluster-admin``; it cannot widen its own Role by a patch (which the gateway
    serves as a get and an update of its own, ``onBehalfOf`` the robot) nor by server-side apply; nothing
    refused is stored."""
    token = await robot_token(api_client)
    await gateway.ok("create", "rolebinding", "robot-admin", "--clusterrole=admin", "--serviceaccount=team:robot",
                     "-n", "team")
    as_robot = ("--token", token, "-n", "team")
    await gateway.ok("create", "rolebinding", "helper-edit", "--clusterrole=edit", "--user=helper", *as_robot)
    refused = await gateway.kubectl("create", "rolebinding", "helper-root", "--clusterrole=cluster-admin",
                                    "--user=helper", *as_robot)
    assert refused.rc == 1 and ('rolebindings.rbac.authorization.k8s.io "helper-root" is forbidden: user '
                                '"system:serviceaccount:team:robot"') in refused.err, refused
    assert "is attempting to grant RBAC permissions not currently held" in refused.err, refused
    await gateway.ok("create", "role", "reader", "--verb=get", "--resource=pods", *as_robot)
    widen = json.dumps({"rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                                  {"verbs": ["get"], "apiGroups": [""], "resources": ["nodes"]}]})
    patched = await gateway.kubectl("patch", "role", "reader", "--type=merge", "-p", widen, *as_robot)
    assert patched.rc == 1 and '{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}' in patched.err, patched
    applied = await gateway.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", *as_robot,
                                    stdin=json.dumps({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "reader", "namespace": "team"}, **json.loads(widen)}))
    assert applied.rc == 1 and "not currently held" in applied.err, applied
    bindings = await gateway.ok("get", "rolebindings", "-n", "team", "-o", "name")
    assert "helper-root" not in bindings and "helper-edit" in bindings, bindings
    rules = json.loads(await gateway.ok("get", "role", "reader", "-n", "team", "-o", "json"))["rules"]
    assert [r["resources"] for r in rules] == [["pods"]], rules
