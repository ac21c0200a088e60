"""RBAC escalation prevention (``protocol.rbac_escalation``), as Kubernetes' ``Covers`` and policy-based RBAC
storage: a rule is covered piece by piece, and a role or binding is written only by someone who holds what
it grants, may ``escalate`` or ``bind``, or is in ``system:masters``."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.errors import Forbidden, NotFound
from protocol.rbac import Policy, Rule, UserInfo
from protocol.rbac_bootstrap import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES
from protocol.rbac_escalation import breakdown, compact, confirm_no_escalation, rule_covers, uncovered

G = "rbac.authorization.k8s.io"


def rule(verbs: str, groups: str = "", resources: str = "", names: str = "", urls: str = "") -> Rule:
    def split(text: str) -> frozenset[str]:
        return frozenset(t for t in text.split(",") if t) if text != "<core>" else frozenset({""})
    return Rule(split(verbs), split(groups), split(resources), split(names),
                tuple(u for u in urls.split(",") if u))


@pytest.mark.parametrize(("owner", "servant", "covered"), [
    (rule("get,list", "<core>", "pods"), rule("get", "<core>", "pods"), True),
    (rule("get", "<core>", "pods"), rule("list", "<core>", "pods"), False),
    (rule("*", "<core>", "pods"), rule("delete", "<core>", "pods"), True),
    (rule("get", "<core>", "pods"), rule("*", "<core>", "pods"), False),  # a * is covered only by a *
    (rule("get", "*", "pods"), rule("get", "apps", "pods"), True),
    (rule("get", "apps", "*"), rule("get", "apps", "deployments"), True),
    (rule("get", "apps", "deployments"), rule("get", "apps", "*"), False),
    (rule("get", "<core>", "*/status"), rule("get", "<core>", "pods/status"), True),
    (rule("get", "<core>", "*/status"), rule("get", "<core>", "pods"), False),
    (rule("get", "<core>", "pods"), rule("get", "<core>", "pods/log"), False),  # a subresource is its own
    (rule("get", "<core>", "pods", "a,b"), rule("get", "<core>", "pods", "a"), True),
    (rule("get", "<core>", "pods", "a"), rule("get", "<core>", "pods", "b"), False),
    (rule("get", "<core>", "pods", "a"), rule("get", "<core>", "pods"), False),  # names never cover all names
    (rule("get", "<core>", "pods"), rule("get", "<core>", "pods", "a"), True),
    (rule("get", urls="/healthz"), rule("get", urls="/healthz"), True),
    (rule("get", urls="/metrics/*"), rule("get", urls="/metrics/cadvisor"), True),
    (rule("get", urls="/metrics"), rule("get", urls="/metrics/cadvisor"), False),
    (rule("get", urls="*"), rule("get", urls="/anything"), True),
    (rule("get", "*", "*"), rule("get", urls="/healthz"), False),  # resource rules never cover URLs
    (rule("get", urls="*"), rule("get", "<core>", "pods"), False),
])
def test_rule_covers(owner: Rule, servant: Rule, covered: bool) -> None:
    assert all(rule_covers(owner, simple) for simple in breakdown(servant)) is covered
    assert (uncovered([owner], [servant]) == []) is covered  # the indexed path answers the same


def test_breakdown_and_what_stays_uncovered() -> None:
    pieces = breakdown(rule("get,list", "<core>,apps", "pods,deployments", "x"))
    assert len(pieces) == 8 and all(len(p.verbs) == len(p.api_groups) == len(p.resources) == 1 for p in pieces)
    missing = uncovered([rule("get,list", "<core>", "pods")], [rule("get,list,delete", "<core>", "pods")])
    assert [compact(r) for r in missing] == ['{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}']
    assert compact(rule("get", urls="/healthz")) == '{NonResourceURLs:["/healthz"], Verbs:["get"]}'
    assert uncovered([], []) == []


BOB = UserInfo("bob", ("system:authenticated",))


def obj(kind: str, name: str, namespace: str | None = None, **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": f"{G}/v1", "kind": kind, "metadata": meta, **fields}


def rb(name: str, namespace: str, role_kind: str, role: str, user: str = "bob") -> dict[str, Any]:
    return obj("RoleBinding", name, namespace, roleRef={"apiGroup": G, "kind": role_kind, "name": role},
               subjects=[{"kind": "User", "apiGroup": G, "name": user}])


def crb(name: str, role: str, user: str = "bob") -> dict[str, Any]:
    return obj("ClusterRoleBinding", name, roleRef={"apiGroup": G, "kind": "ClusterRole", "name": role},
               subjects=[{"kind": "User", "apiGroup": G, "name": user}])


def policy(*extra: dict[str, Any]) -> Policy:
    """The bootstrap roles (cluster-admin, admin, edit, view...) with bob as ``admin`` of namespace team."""
    objects = [*CLUSTER_ROLES, *CLUSTER_ROLE_BINDINGS, rb("bob-admin", "team", "ClusterRole", "admin"), *extra]
    by_kind = {k: [o for o in objects if o["kind"] == k]
               for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")}
    return Policy.build(by_kind["Role"], by_kind["ClusterRole"], by_kind["RoleBinding"], by_kind["ClusterRoleBinding"])


def test_a_namespace_admin_binds_what_it_holds_in_its_namespace_only() -> None:
    p = policy()
    confirm_no_escalation(p, BOB, "RoleBinding", rb("x", "team", "ClusterRole", "edit"))
    confirm_no_escalation(p, BOB, "RoleBinding", rb("x", "team", "ClusterRole", "view", user="alice"))
    with pytest.raises(Forbidden) as refused:
        confirm_no_escalation(p, BOB, "RoleBinding", rb("x", "team", "ClusterRole", "cluster-admin"))
    assert str(refused.value.message).startswith(
        'rolebindings.rbac.authorization.k8s.io "x" is forbidden: user "bob" (groups=["system:authenticated"]) '
        "is attempting to grant RBAC permissions not currently held:\n")
    with pytest.raises(Forbidden, match="not currently held") as refused:  # edit, where bob holds nothing
        confirm_no_escalation(p, BOB, "RoleBinding", rb("x", "other", "ClusterRole", "edit"))
    lines = str(refused.value.message).split("\n")
    assert len(lines) == 1 + 20 + 1 and lines[-1].startswith("... and ") and lines[-1].endswith(" more")
    with pytest.raises(Forbidden, match=r'clusterrolebindings\.rbac\.authorization\.k8s\.io "x" is forbidden'):
        confirm_no_escalation(p, BOB, "ClusterRoleBinding", crb("x", "view"))  # view of every namespace


def test_roles_are_checked_rule_by_rule_in_their_namespace() -> None:
    p = policy()
    mine = [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"]}]
    confirm_no_escalation(p, BOB, "Role", obj("Role", "r", "team", rules=mine))
    with pytest.raises(Forbidden) as refused:  # admin may not touch nodes (cluster-scoped) nor escalate
        confirm_no_escalation(p, BOB, "Role", obj("Role", "r", "team", rules=[
            *mine, {"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["nodes"]}]))
    message = str(refused.value.message)
    assert '{APIGroups:[""], Resources:["nodes"], Verbs:["delete"]}' in message
    assert '{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}' in message
    assert "configmaps" not in message  # only what is missing is listed
    with pytest.raises(Forbidden):
        confirm_no_escalation(p, BOB, "Role", obj("Role", "r", "other", rules=mine))
    with pytest.raises(Forbidden):
        confirm_no_escalation(p, BOB, "ClusterRole", obj("ClusterRole", "c", rules=mine))
    with pytest.raises(Forbidden, match="must have cluster-admin privileges to use the aggregationRule"):
        confirm_no_escalation(p, BOB, "ClusterRole", obj("ClusterRole", "c", aggregationRule={
            "clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}))


def test_escalate_and_bind_verbs_and_masters() -> None:
    grants = obj("ClusterRole", "granter", rules=[
        {"verbs": ["bind"], "apiGroups": [G], "resources": ["clusterroles"], "resourceNames": ["cluster-admin"]},
        {"verbs": ["escalate"], "apiGroups": [G], "resources": ["roles"]}])
    p = policy(grants, rb("bob-granter", "team", "ClusterRole", "granter"))
    confirm_no_escalation(p, BOB, "RoleBinding", rb("x", "team", "ClusterRole", "cluster-admin"))
    with pytest.raises(Forbidden):  # bind names cluster-admin only
        confirm_no_escalation(p, BOB, "RoleBinding", rb("x", "team", "ClusterRole", "system:kube-scheduler"))
    everything = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
    confirm_no_escalation(p, BOB, "Role", obj("Role", "r", "team", rules=everything))
    with pytest.raises(Forbidden):  # escalate on roles, not clusterroles
        confirm_no_escalation(p, BOB, "ClusterRole", obj("ClusterRole", "c", rules=everything))
    root = UserInfo("root", ("system:masters", "system:authenticated"))
    confirm_no_escalation(policy(), root, "ClusterRoleBinding", crb("x", "cluster-admin", user="eve"))
    confirm_no_escalation(policy(), BOB, "ConfigMap", {"kind": "ConfigMap"})  # other kinds: nothing to check


def test_a_binding_to_a_missing_role_is_not_found() -> None:
    with pytest.raises(NotFound, match=r'roles\.rbac\.authorization\.k8s\.io "ghost" not found'):
        confirm_no_escalation(policy(), BOB, "RoleBinding", rb("x", "team", "Role", "ghost"))
