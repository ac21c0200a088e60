"""Control-plane components act as themselves: identity-scoped subjects, their bootstrap roles, reconciliation.

The roles are checked as a table (what each component needs, found by running its tests with enforcement on,
and what it must not do); the subjects' parsing and the API's reconciliation of an older bootstrap policy
are pure and tested here too.
"""

from __future__ import annotations

from typing import Any

import pytest

from actors.api import audit
from actors.api.authorize import authorize, request_attributes, scoped_user
from actors.api.rbaccache import reconciled
from protocol import rbac_bootstrap, subjects
from protocol.errors import BadRequest, Forbidden
from protocol.kinds import by_kind
from protocol.rbac import Attributes, Policy, UserInfo
from protocol.requests import AdminRequest, ApiRequest, parse_subject
from protocol.subjects import Verb

POLICY = Policy.build(cluster_roles=rbac_bootstrap.CLUSTER_ROLES,
                      cluster_role_bindings=rbac_bootstrap.CLUSTER_ROLE_BINDINGS)
SCHED = scoped_user(rbac_bootstrap.SCHEDULER)
KCM = scoped_user(rbac_bootstrap.CONTROLLER_MANAGER)
CCM = scoped_user(rbac_bootstrap.CLOUD_CONTROLLER_MANAGER)
RBAC = "rbac.authorization.k8s.io"
LEASES = "coordination.k8s.io"


@pytest.mark.parametrize(
    ("user", "attributes", "allowed"),
    [
        # the scheduler: binds, reads what it schedules with, its own Lease, volume binding
        (SCHED, Attributes("create", "pods", "", "a", "p", "binding"), True),
        (SCHED, Attributes("watch", "pods", ""), True),
        (SCHED, Attributes("patch", "pods", "", "a", "p", "status"), True),
        (SCHED, Attributes("update", "leases", LEASES, "kube-system", rbac_bootstrap.SCHEDULER_LEASE), True),
        (SCHED, Attributes("patch", "persistentvolumeclaims", "", "a", "c"), True),  # system:volume-scheduler
        (SCHED, Attributes("get", "secrets", "", "a", "s"), False),
        (SCHED, Attributes("list", "secrets", "", ""), False),
        (SCHED, Attributes("delete", "deployments", "apps", "a", "d"), False),
        (SCHED, Attributes("create", "pods", "", "a"), False),
        (SCHED, Attributes("update", "pods", "", "a", "p"), False),
        (SCHED, Attributes("update", "leases", LEASES, "kube-system", rbac_bootstrap.CONTROLLER_MANAGER_LEASE), False),
        (SCHED, Attributes("create", "clusterrolebindings", RBAC), False),
        (SCHED, Attributes("create", path="/shoal/admin/rotate-signing-key"), False),
        # the controller manager: what its controllers write, nothing of RBAC but deletes
        (KCM, Attributes("create", "pods", "", "a"), True),
        (KCM, Attributes("create", "replicasets", "apps", "a"), True),
        (KCM, Attributes("patch", "deployments", "apps", "a", "d", "status"), True),
        (KCM, Attributes("update", "namespaces", "", "", "a", "status"), True),
        (KCM, Attributes("update", "nodes", "", "", "n"), True),
        (KCM, Attributes("delete", "roles", RBAC, "a", "r"), True),  # the namespace controller
        (KCM, Attributes("get", "secrets", "", "a", "s"), True),  # as Kubernetes' (token controllers)
        (KCM, Attributes("create", "serviceaccounts", "", "a"), True),
        (KCM, Attributes("update", "clusterroles", RBAC, "", "system:kube-controller-manager"), False),
        (KCM, Attributes("patch", "clusterroles", RBAC, "", "cluster-admin"), False),
        (KCM, Attributes("create", "clusterrolebindings", RBAC), False),
        (KCM, Attributes("create", "rolebindings", RBAC, "a"), False),
        (KCM, Attributes("impersonate", "users", ""), False),
        (KCM, Attributes("create", "pods", "", "a", "p", "exec"), False),
        (KCM, Attributes("create", "deployments", "apps", "a"), False),
        (KCM, Attributes("create", path="/shoal/admin/rotate-signing-key"), False),
        # the cloud controller manager: nodes, load balancers, volumes
        (CCM, Attributes("delete", "nodes", "", "", "n"), True),
        (CCM, Attributes("patch", "services", "", "a", "s", "status"), True),
        (CCM, Attributes("create", "persistentvolumes", ""), True),
        (CCM, Attributes("get", "secrets", "", "a", "s"), False),
        (CCM, Attributes("delete", "pods", "", "a", "p"), False),
        (CCM, Attributes("create", "services", "", "a"), False),
    ],
)
def test_component_roles(user: UserInfo, attributes: Attributes, allowed: bool) -> None:
    assert POLICY.allowed(user, attributes) is allowed


def test_identity_scoped_subjects_name_the_user() -> None:
    pods = by_kind("Pod")
    subject = subjects.object_subject(Verb.GET, pods, "a", "p")
    scoped = subjects.user_api_prefix(rbac_bootstrap.SCHEDULER) + subject[len(subjects.API_PREFIX):]
    assert scoped == "shoal.user.system=3Akube-scheduler.api.get.pods.a.p"
    assert parse_subject(scoped) == ApiRequest(Verb.GET, pods, "a", "p", None, rbac_bootstrap.SCHEDULER)
    assert subjects.split_api_subject(scoped) == (None, subject.split("."))
    assert audit.scoped_user(scoped) == rbac_bootstrap.SCHEDULER and audit.scoped_user(subject) is None
    assert audit.describe(scoped) == (None, "get", "pods", "a", "p")
    assert parse_subject("shoal.user.system=3Akube-scheduler.api.admin.info") == AdminRequest(
        "info", rbac_bootstrap.SCHEDULER)
    with pytest.raises(BadRequest):
        parse_subject("shoal.user..api.get.pods.a.p")


def test_identity_scoped_requests_are_authorized_for_the_subjects_user_and_refuse_as() -> None:
    secrets, pods = by_kind("Secret"), by_kind("Pod")

    def decide(request: ApiRequest, body: dict[str, Any]) -> bool:
        try:
            authorize(request, body, None, lambda: POLICY)
        except Forbidden:
            return False
        return True

    sched = rbac_bootstrap.SCHEDULER
    assert decide(ApiRequest(Verb.LIST, pods, None, None, None, sched), {})
    assert not decide(ApiRequest(Verb.GET, secrets, "a", "s", None, sched), {})
    masters = {"user": "x", "groups": ["system:masters"]}
    assert not decide(ApiRequest(Verb.GET, secrets, "a", "s", None, sched), {"as": masters})
    assert decide(ApiRequest(Verb.GET, secrets, "a", "s"), {"as": masters})  # the trusted subjects still may


def test_reconciliation_adds_what_an_older_role_lacks_and_keeps_additions() -> None:
    new = next(r for r in rbac_bootstrap.CLUSTER_ROLES if r["metadata"]["name"] == rbac_bootstrap.SCHEDULER)
    extra = {"verbs": ["get"], "apiGroups": [""], "resources": ["things"]}
    old = {**new, "rules": [*new["rules"][:2], extra]}
    updated = reconciled(old, new)
    assert updated is not None and extra in updated["rules"]
    rules = Policy.build(cluster_roles=[updated]).cluster_roles[rbac_bootstrap.SCHEDULER]
    assert set(rules) == set(Policy.build(cluster_roles=[{**new, "rules": [*new["rules"], extra]}]).cluster_roles[
        rbac_bootstrap.SCHEDULER]) and len(rules) == len(new["rules"]) + 1
    # stored rules come back in another form (sorted, defaulted): the same rules are not added again
    stored = {**new, "rules": [{**r, "verbs": sorted(r["verbs"], reverse=True), "resourceNames": r.get(
        "resourceNames", [])} for r in new["rules"]]}
    assert reconciled(stored, new) is None
    opted_out = {**old, "metadata": {**old["metadata"], "annotations": {rbac_bootstrap.AUTOUPDATE_KEY: "false"}}}
    assert reconciled(opted_out, new) is None
    b = next(b for b in rbac_bootstrap.CLUSTER_ROLE_BINDINGS if b["metadata"]["name"] == "system:volume-scheduler")
    assert reconciled({**b, "subjects": []}, b) == b
    assert reconciled(b, b) is None


@pytest.mark.parametrize(
    ("verb", "selector", "name"),
    [
        (Verb.WATCH, "metadata.name=cfg", "cfg"),
        (Verb.LIST, "metadata.name==cfg,metadata.namespace=team", "cfg"),
        (Verb.LIST, "metadata.name!=cfg", ""),
        (Verb.WATCH, "spec.nodeName=n1", ""),
        (Verb.WATCH, "metadata.name=a/b", ""),
        (Verb.WATCH, "not a selector", ""),
        (Verb.CREATE, "metadata.name=cfg", ""),
    ],
)
def test_a_list_or_watch_of_one_name_is_authorized_on_that_name(verb: Verb, selector: str, name: str) -> None:
    """Kubernetes authorizes a list or watch with ``fieldSelector=metadata.name=X`` as one on name X, so a rule
    with ``resourceNames: [X]`` allows watching that one object (``kubectl get cm X -w``) and nothing more."""
    request = ApiRequest(verb, by_kind("ConfigMap"), "team", None)
    assert request_attributes(request, {"fieldSelector": selector}).name == name
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "one", "namespace": "team"},
            "rules": [{"verbs": ["list", "watch"], "apiGroups": [""], "resources": ["configmaps"],
                       "resourceNames": ["cfg"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "one", "namespace": "team"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "one"},
               "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "u"}]}
    policy = Policy.build(roles=[role], role_bindings=[binding])
    allowed = policy.allowed(UserInfo("u"), request_attributes(request, {"fieldSelector": selector}))
    assert allowed is (name == "cfg" and verb in (Verb.LIST, Verb.WATCH))
