"""The RBAC authorizer (``protocol.rbac``), table-tested as Kubernetes' ``rbac_test.go``, the RBAC kinds'
validation, and the bootstrap policy's grants."""

from __future__ import annotations

from typing import Any

import pytest

from protocol import rbac_bootstrap
from protocol.errors import Forbidden, Invalid
from protocol.rbac import Attributes, Policy, UserInfo, access_review, forbidden_message, rules_review, user_from_wire
from protocol.validation import validate

G = "rbac.authorization.k8s.io"


def role(
    name: str,
    rules: list[dict[str, Any]],
    ns: str | None = None,
    kind: str = "Role",
    labels: dict[str, str] | None = None,
    aggregate: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": ns} if ns else {}), **({"labels": labels} if labels else {})}
    obj: dict[str, Any] = {"apiVersion": f"{G}/v1", "kind": kind, "metadata": meta, "rules": rules}
    if aggregate is not None:
        obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": m} for m in aggregate]}
    return obj


def binding(
    name: str, ref_kind: str, ref: str, subjects: list[dict[str, Any]], ns: str | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": f"{G}/v1",
        "kind": "RoleBinding" if ns else "ClusterRoleBinding",
        "metadata": {"name": name, **({"namespace": ns} if ns else {})},
        "roleRef": {"apiGroup": G, "kind": ref_kind, "name": ref},
        "subjects": subjects,
    }


def rule(verbs: list[str], groups: list[str], resources: list[str], names: list[str] | None = None) -> dict[str, Any]:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources, **({"resourceNames": names} if names else {})}


SA = {"kind": "ServiceAccount", "name": "robot", "namespace": "team"}
ROBOT = UserInfo(
    "system:serviceaccount:team:robot",
    ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated"),
)
ALICE = UserInfo("alice", ("devs", "system:authenticated"))
POLICY = Policy.build(
    roles=[
        role("pod-reader", [rule(["get", "list", "watch"], [""], ["pods", "pods/log"])], "team"),
        role("one-cm", [rule(["get", "update"], [""], ["configmaps"], ["settings"])], "team"),
    ],
    cluster_roles=[
        role("view", [], kind="ClusterRole", aggregate=[{"agg-view": "true"}]),
        role(
            "viewer-bits",
            [rule(["get", "list", "watch"], ["", "apps"], ["pods", "deployments", "deployments/scale"])],
            kind="ClusterRole",
            labels={"agg-view": "true"},
        ),
        role("scaler", [rule(["update", "patch"], ["*"], ["*/scale"])], kind="ClusterRole"),
        role("nodes-all", [rule(["*"], [""], ["nodes"])], kind="ClusterRole"),
        role("health", [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}], kind="ClusterRole"),
    ],
    role_bindings=[
        binding("robot-pods", "Role", "pod-reader", [SA], "team"),
        binding("robot-cm", "Role", "one-cm", [{"kind": "ServiceAccount", "name": "robot"}], "team"),
        binding("devs-view", "ClusterRole", "view", [{"kind": "Group", "apiGroup": G, "name": "devs"}], "dev"),
        binding("dangling", "Role", "missing", [{"kind": "User", "apiGroup": G, "name": "alice"}], "dev"),
    ],
    cluster_role_bindings=[
        binding("alice-scale", "ClusterRole", "scaler", [{"kind": "User", "apiGroup": G, "name": "alice"}]),
        binding(
            "auth-health", "ClusterRole", "health", [{"kind": "Group", "apiGroup": G, "name": "system:authenticated"}]
        ),
        binding("ops-nodes", "ClusterRole", "nodes-all", [{"kind": "Group", "apiGroup": G, "name": "ops"}]),
    ],
)

CASES = [
    # user, attributes, allowed
    (ROBOT, Attributes("get", "pods", "", "team", "web"), True),
    (ROBOT, Attributes("list", "pods", "", "team"), True),
    (ROBOT, Attributes("watch", "pods", "", "team"), True),
    (ROBOT, Attributes("get", "pods", "", "team", "web", "log"), True),
    (ROBOT, Attributes("create", "pods", "", "team"), False),  # verb not granted
    (ROBOT, Attributes("list", "pods", "", "other"), False),  # a Role grants only its namespace
    (ROBOT, Attributes("list", "pods", "", ""), False),  # nor across all namespaces
    (ROBOT, Attributes("get", "pods", "", "team", "web", "exec"), False),  # subresource not granted
    (ROBOT, Attributes("get", "pods", "apps", "team", "web"), False),  # other group
    (ROBOT, Attributes("get", "configmaps", "", "team", "settings"), True),  # resourceNames, subject ns defaulted
    (ROBOT, Attributes("get", "configmaps", "", "team", "other"), False),
    (ROBOT, Attributes("list", "configmaps", "", "team"), False),  # a named rule never covers a list
    (ALICE, Attributes("list", "deployments", "apps", "dev"), True),  # group, ClusterRole via RoleBinding
    (ALICE, Attributes("get", "deployments", "apps", "dev", "web", "scale"), True),  # aggregated rules
    (ALICE, Attributes("list", "deployments", "apps", "prod"), False),  # only in the binding's namespace
    (ALICE, Attributes("update", "deployments", "apps", "prod", "web", "scale"), True),  # */scale, * group
    (ALICE, Attributes("update", "deployments", "apps", "prod", "web"), False),
    (ALICE, Attributes("get", "secrets", "", "dev", "x"), False),  # dangling binding grants nothing
    (ALICE, Attributes("get", path="/healthz"), True),
    (ALICE, Attributes("get", path="/apis/apps/v1"), True),  # prefix
    (ALICE, Attributes("post", path="/healthz"), False),
    (ALICE, Attributes("get", path="/api"), False),
    (UserInfo("bob", ("ops",)), Attributes("deletecollection", "nodes"), True),  # * verbs, cluster-scoped
    (UserInfo("bob", ("ops",)), Attributes("get", "nodes", "", "", "n1", "status"), False),
    (UserInfo("nobody"), Attributes("get", "pods", "", "team", "web"), False),
]


@pytest.mark.parametrize(("user", "attributes", "allowed"), CASES)
def test_rbac_decides(user: UserInfo, attributes: Attributes, allowed: bool) -> None:
    assert POLICY.allowed(user, attributes) is allowed
    if not allowed:
        with pytest.raises(Forbidden):
            POLICY.authorize(user, attributes)


def test_forbidden_message_as_kubernetes() -> None:
    assert forbidden_message(ROBOT, Attributes("list", "pods", "", "team")) == (
        'pods is forbidden: User "system:serviceaccount:team:robot" cannot list resource "pods" in API group "" '
        'in the namespace "team"'
    )
    assert forbidden_message(ALICE, Attributes("get", "deployments", "apps", "dev", "web", "scale")) == (
        'deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments/scale" in API group '
        '"apps" in the namespace "dev"'
    )
    assert forbidden_message(ALICE, Attributes("list", "nodes")) == (
        'nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the cluster scope'
    )
    assert forbidden_message(ALICE, Attributes("get", path="/metrics")) == (
        'forbidden: User "alice" cannot get path "/metrics"'
    )


def test_a_role_created_after_its_binding_counts() -> None:
    b = binding("late", "ClusterRole", "later", [{"kind": "User", "apiGroup": G, "name": "carol"}])
    carol = UserInfo("carol")
    assert not Policy.build(cluster_role_bindings=[b]).allowed(carol, Attributes("list", "pods", "", "x"))
    later = role("later", [rule(["list"], [""], ["pods"])], kind="ClusterRole")
    assert Policy.build(cluster_roles=[later], cluster_role_bindings=[b]).allowed(
        carol, Attributes("list", "pods", "", "x")
    )


def test_impersonation_wire_form() -> None:
    assert user_from_wire({"user": "u", "groups": ["g"], "uid": "1"}) == UserInfo("u", ("g",), "1")
    for bad in ({"user": ""}, {"user": "u", "groups": "g"}, {"user": "u", "extra": 1}, "u", {"groups": []}):
        with pytest.raises(Forbidden):
            user_from_wire(bad)


def test_reviews() -> None:
    subject = {"user": ROBOT.name, "groups": list(ROBOT.groups)}
    yes = access_review(
        POLICY, subject, {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "team"}}
    )
    assert yes["allowed"] is True and "pod-reader" in yes["reason"]
    assert access_review(
        POLICY, subject, {"resourceAttributes": {"verb": "delete", "resource": "pods", "namespace": "team"}}
    ) == {"allowed": False}
    rules = rules_review(POLICY, subject, "team")
    assert {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods", "pods/log"]} in rules[
        "resourceRules"
    ]
    assert rules["nonResourceRules"] == [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}]


BOOTSTRAP = Policy.build(
    cluster_roles=rbac_bootstrap.CLUSTER_ROLES, cluster_role_bindings=rbac_bootstrap.CLUSTER_ROLE_BINDINGS
)


@pytest.mark.parametrize(
    ("user", "attributes", "allowed"),
    [
        (UserInfo("admin", ("system:masters",)), Attributes("delete", "nodes", "", "", "n1"), True),
        (UserInfo("admin", ("system:masters",)), Attributes("get", path="/anything"), True),
        (ROBOT, Attributes("get", path="/apis/apps/v1"), True),  # system:discovery
        (ROBOT, Attributes("create", "selfsubjectaccessreviews", "authorization.k8s.io"), True),  # basic-user
        (ROBOT, Attributes("get", path="/openid/v1/jwks"), True),  # issuer discovery
        (ROBOT, Attributes("list", "pods", "", "team"), False),  # nothing else by default
        (UserInfo("system:kube-scheduler"), Attributes("create", "pods", "", "a", "p", "binding"), True),
        (UserInfo("system:kube-scheduler"), Attributes("delete", "secrets", "", "a", "s"), False),
        (UserInfo("system:kube-controller-manager"), Attributes("watch", "deployments", "apps"), True),
    ],
)
def test_bootstrap_policy(user: UserInfo, attributes: Attributes, allowed: bool) -> None:
    assert BOOTSTRAP.allowed(user, attributes) is allowed


def test_bootstrap_view_edit_admin_are_aggregated() -> None:
    def granted(role: str, a: Attributes) -> bool:
        b = binding("b", "ClusterRole", role, [{"kind": "User", "apiGroup": G, "name": "u"}], "ns")
        p = Policy.build(cluster_roles=rbac_bootstrap.CLUSTER_ROLES, role_bindings=[b])
        return p.allowed(UserInfo("u"), a)

    read, write = Attributes("list", "pods", "", "ns"), Attributes("create", "deployments", "apps", "ns")
    secret, rb = Attributes("get", "secrets", "", "ns", "s"), Attributes("create", "rolebindings", G, "ns")
    assert [granted("view", a) for a in (read, write, secret, rb)] == [True, False, False, False]
    assert [granted("edit", a) for a in (read, write, secret, rb)] == [True, True, True, False]
    assert [granted("admin", a) for a in (read, write, secret, rb)] == [True, True, True, True]


def test_bootstrap_objects_are_valid() -> None:
    for obj in (*rbac_bootstrap.CLUSTER_ROLES, *rbac_bootstrap.CLUSTER_ROLE_BINDINGS):
        validate(obj)


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (role("r", [{"verbs": [], "apiGroups": [""], "resources": ["pods"]}], "ns"), "rules[0].verbs"),
        (role("r", [{"verbs": ["get"], "resources": ["pods"]}], "ns"), "rules[0].apiGroups"),
        (role("r", [{"verbs": ["get"], "nonResourceURLs": ["/x"]}], "ns"), "rules[0].nonResourceURLs"),
        (role("a/b", [], "ns"), "metadata.name"),
        (binding("b", "Role", "r", [{"kind": "Robot", "name": "x"}], "ns"), "subjects[0].kind"),
        (binding("b", "Role", "r", [{"kind": "ServiceAccount", "name": "x"}]), "roleRef.kind"),
        (binding("b", "ClusterRole", "r", [{"kind": "ServiceAccount", "name": "x"}]), "subjects[0].namespace"),
        (
            binding("b", "ClusterRole", "r", [{"kind": "User", "apiGroup": "", "name": "x"}], "ns"),
            "subjects[0].apiGroup",
        ),
        (
            role("c", [], kind="ClusterRole")
            | {
                "aggregationRule": {
                    "clusterRoleSelectors": [{"matchExpressions": [{"key": "a", "operator": "Exists"}]}]
                }
            },
            "aggregationRule.clusterRoleSelectors[0].matchExpressions",
        ),
    ],
)
def test_invalid_rbac_objects(obj: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as err:
        validate(obj)
    assert field in [c["field"] for c in err.value.details["causes"]]


def test_role_ref_is_immutable() -> None:
    old = binding("b", "ClusterRole", "view", [SA], "team")
    new = binding("b", "ClusterRole", "edit", [SA], "team")
    with pytest.raises(Invalid, match="cannot change roleRef"):
        validate(new, old=old)
    validate(binding("b", "ClusterRole", "view", [], "team"), old=old)
