"""The bootstrap RBAC policy, pure data: what kube-apiserver's ``bootstrappolicy`` creates at start when absent.

``cluster-admin`` (everything; bound to the group ``system:masters``: trusted callers without ``as`` and the
gateway's admin token user), the aggregated user-facing ``admin``/``edit``/``view`` (their rules are the
union of the ``aggregate-to-*`` ClusterRoles below, so a user may extend them by labelling a ClusterRole),
``system:basic-user``, ``system:discovery`` and ``system:public-info-viewer`` (bound to
``system:authenticated``; the last also to ``system:unauthenticated``), ``system:service-account-issuer-discovery``
(the OIDC documents, bound to ``system:serviceaccounts``), and the component roles ``system:kube-scheduler``
(with ``system:volume-scheduler``), ``system:kube-controller-manager`` and ``system:cloud-controller-manager``
bound to the users of those names. Shoal's control-plane components act as those users (``COMPONENT_USERS``:
their API requests arrive on identity-scoped subjects only they may publish on), so each may do what its
role grants and nothing else. The roles are Kubernetes' (``plugin/pkg/auth/authorizer/rbac/bootstrappolicy``)
plus, for the controller manager, what Kubernetes' per-controller ``system:controller:*`` roles grant together,
since Shoal's controller manager acts as one user (Kubernetes' ``--use-service-account-credentials`` gives
each controller its own ServiceAccount instead; one identity is simpler and one NATS user; the roles say
what that costs), and Shoal's own Lease names.
"""

from __future__ import annotations

from typing import Any

from protocol.kinds.rbac import API_VERSION, GROUP

Obj = dict[str, Any]
AUTOUPDATE_KEY = "rbac.authorization.kubernetes.io/autoupdate"
AUTOUPDATE = {AUTOUPDATE_KEY: "true"}
BOOTSTRAP = {"kubernetes.io/bootstrapping": "rbac-defaults"}
READ = ["get", "list", "watch"]

SCHEDULER = "system:kube-scheduler"
CONTROLLER_MANAGER = "system:kube-controller-manager"
CLOUD_CONTROLLER_MANAGER = "system:cloud-controller-manager"
COMPONENT_USERS = {"scheduler": SCHEDULER, "controller-manager": CONTROLLER_MANAGER,
                   "cloud-controller-manager": CLOUD_CONTROLLER_MANAGER}
"""The Kubernetes user each control-plane component (by its NATS user name) acts as: its API requests go to
``shoal.user.<user>.api.>`` (``protocol.subjects.user_api_prefix``), which NATS lets only that component
publish on, and RBAC authorizes them with the role of the same name."""
SCHEDULER_LEASE = "shoal-scheduler"
CONTROLLER_MANAGER_LEASE = "shoal-controller-manager"
CLOUD_CONTROLLER_MANAGER_LEASE = "shoal-cloud-controller-manager"
"""The components' leader-election Leases (namespace ``kube-system``): each role may get and update its own
only (Kubernetes names them ``kube-scheduler`` and so on; both names are granted)."""
CONTROLLER_WRITABLE_GROUPS = ["", "apps", "batch", "autoscaling", "policy", "coordination.k8s.io", "storage.k8s.io",
                              "scheduling.k8s.io", "discovery.k8s.io", "networking.k8s.io", "events.k8s.io"]
"""Where the controller manager may patch and update any resource (the garbage collector's owner references
and finalizers, the controllers' status writes): every group but ``rbac.authorization.k8s.io``. Kubernetes'
garbage collector may update every group, RBAC's too, because its escalation check stops a grant of more
than the writer holds; Shoal has no escalation check, so an identity that may update Roles may grant itself
anything: the controller manager may only delete RBAC objects (the namespace controller does)."""
WRITE = ["create", "delete", "deletecollection", "patch", "update"]


def _rule(verbs: list[str], groups: list[str], resources: list[str], names: list[str] | None = None) -> Obj:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources, **({"resourceNames": names} if names else {})}


def _urls(verbs: list[str], urls: list[str]) -> Obj:
    return {"verbs": verbs, "nonResourceURLs": urls}


def cluster_role(name: str, rules: list[Obj], labels: dict[str, str] | None = None,
                 aggregate_from: list[dict[str, str]] | None = None) -> Obj:
    role: Obj = {"apiVersion": API_VERSION, "kind": "ClusterRole",
                 "metadata": {"name": name, "labels": {**BOOTSTRAP, **(labels or {})}, "annotations": AUTOUPDATE},
                 "rules": rules}
    if aggregate_from is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": s} for s in aggregate_from]}
    return role


def cluster_role_binding(name: str, role: str, subjects: list[tuple[str, str]]) -> Obj:
    return {"apiVersion": API_VERSION, "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": dict(BOOTSTRAP), "annotations": AUTOUPDATE},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": kind, "apiGroup": GROUP, "name": n} for kind, n in subjects]}


def _aggregate_to(*roles: str) -> dict[str, str]:
    return {f"rbac.authorization.k8s.io/aggregate-to-{r}": "true" for r in roles}


_VIEW = [
    _rule(READ, [""], ["pods", "pods/log", "pods/status", "replicationcontrollers", "replicationcontrollers/scale",
                       "replicationcontrollers/status", "services", "services/status", "endpoints",
                       "persistentvolumeclaims", "persistentvolumeclaims/status", "configmaps", "serviceaccounts",
                       "events", "limitranges", "resourcequotas", "namespaces", "namespaces/status"]),
    _rule(READ, ["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                           "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
                           "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status"]),
    _rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
    _rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    _rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
    _rule(READ, ["events.k8s.io"], ["events"]),
    _rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
    _rule(READ, ["metrics.k8s.io"], ["pods", "nodes"]),
]
_EDIT = [
    _rule(["create", "delete", "deletecollection", "patch", "update", "get"], [""],
          ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
    _rule(["create", "get"], [""], ["pods/eviction"]),
    _rule([*WRITE], [""], ["pods", "configmaps", "endpoints", "persistentvolumeclaims", "replicationcontrollers",
                           "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                           "services/proxy"]),
    _rule(["create"], [""], ["serviceaccounts/token"]),
    _rule([*WRITE], ["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                               "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"]),
    _rule([*WRITE], ["autoscaling"], ["horizontalpodautoscalers"]),
    _rule([*WRITE], ["batch"], ["cronjobs", "jobs"]),
    _rule([*WRITE], ["policy"], ["poddisruptionbudgets"]),
    _rule(READ, [""], ["secrets"]),
    _rule(["impersonate"], [""], ["serviceaccounts"]),
]
_ADMIN = [
    _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
    _rule([*READ, *WRITE], ["rbac.authorization.k8s.io"], ["rolebindings", "roles"]),
]

CLUSTER_ROLES: tuple[Obj, ...] = (
    cluster_role("cluster-admin", [_rule(["*"], ["*"], ["*"]), _urls(["*"], ["*"])]),
    cluster_role("admin", [], aggregate_from=[_aggregate_to("admin")]),
    cluster_role("edit", [], _aggregate_to("admin"), aggregate_from=[_aggregate_to("edit")]),
    cluster_role("view", [], _aggregate_to("edit"), aggregate_from=[_aggregate_to("view")]),
    cluster_role("system:aggregate-to-admin", _ADMIN, _aggregate_to("admin")),
    cluster_role("system:aggregate-to-edit", _EDIT, _aggregate_to("admin", "edit")),
    cluster_role("system:aggregate-to-view", _VIEW, _aggregate_to("admin", "edit", "view")),
    cluster_role("system:basic-user", [_rule(["create"], ["authorization.k8s.io"],
                                             ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                                       _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"])]),
    cluster_role("system:discovery", [_urls(["get"], ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                                                      "/openapi", "/openapi/*", "/readyz", "/version",
                                                      "/version/"])]),
    cluster_role("system:public-info-viewer", [_urls(["get"], ["/healthz", "/livez", "/readyz", "/version",
                                                               "/version/"])]),
    cluster_role("system:service-account-issuer-discovery",
                 [_urls(["get"], ["/.well-known/openid-configuration", "/openid/v1/jwks"])]),
    cluster_role(SCHEDULER, [
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        _rule(["create"], ["coordination.k8s.io"], ["leases"]),
        _rule(["get", "update"], ["coordination.k8s.io"], ["leases"], ["kube-scheduler", SCHEDULER_LEASE]),
        _rule(["delete", *READ], [""], ["nodes"]),
        _rule(["delete", *READ], [""], ["pods"]),
        _rule(["create"], [""], ["pods/binding", "bindings"]),
        _rule(["patch", "update"], [""], ["pods/status"]),
        _rule(READ, [""], ["replicationcontrollers", "services", "namespaces", "persistentvolumeclaims",
                           "persistentvolumes", "configmaps"]),
        _rule(READ, ["apps"], ["replicasets", "statefulsets"]),
        _rule(READ, ["policy"], ["poddisruptionbudgets"]),
        _rule(READ, ["storage.k8s.io"], ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities"]),
        _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
    ]),
    cluster_role("system:volume-scheduler", [
        _rule([*READ, "patch", "update"], [""], ["persistentvolumes"]),
        _rule(READ, ["storage.k8s.io"], ["storageclasses"]),
        _rule([*READ, "patch", "update"], [""], ["persistentvolumeclaims"]),
    ]),
    cluster_role(CONTROLLER_MANAGER, [
        # Kubernetes' own rules for the user (kube-controller-manager with --use-service-account-credentials)
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        _rule(["create"], ["coordination.k8s.io"], ["leases"]),
        _rule(["get", "update"], ["coordination.k8s.io"], ["leases"],
              ["kube-controller-manager", CONTROLLER_MANAGER_LEASE]),
        _rule(["create"], [""], ["secrets", "serviceaccounts"]),
        _rule(["delete"], [""], ["secrets"]),
        _rule(["get"], [""], ["configmaps", "namespaces", "secrets", "serviceaccounts"]),
        _rule(["update"], [""], ["secrets", "serviceaccounts"]),
        _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        _rule(["list", "watch"], ["*"], ["*"]),
        _rule(["create"], [""], ["serviceaccounts/token"]),
        # what the system:controller:* roles of the controllers Shoal runs grant together (Shoal's controller
        # manager acts as this one user): the garbage collector reads everything and edits owner references
        # and finalizers, the namespace controller deletes everything in a namespace; the workload controllers
        # create what they own and write the status of what they manage
        _rule(["get"], ["*"], ["*"]),
        _rule(["delete", "deletecollection"], ["*"], ["*"]),
        _rule(["patch", "update"], CONTROLLER_WRITABLE_GROUPS, ["*"]),
        _rule(["create"], [""], ["pods", "endpoints", "configmaps", "persistentvolumeclaims", "persistentvolumes"]),
        _rule(["create"], ["apps"], ["replicasets", "controllerrevisions"]),
        _rule(["create"], ["batch"], ["jobs"]),
    ]),
    cluster_role(CLOUD_CONTROLLER_MANAGER, [
        _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        _rule(["create"], ["coordination.k8s.io"], ["leases"]),
        _rule(["get", "update"], ["coordination.k8s.io"], ["leases"],
              ["cloud-controller-manager", CLOUD_CONTROLLER_MANAGER_LEASE]),
        _rule(["*"], [""], ["nodes"]),
        _rule(["patch", "update"], [""], ["nodes/status"]),
        _rule([*READ, "patch", "update"], [""], ["services"]),
        _rule(["patch", "update"], [""], ["services/status"]),
        _rule([*READ, "create", "update", "patch", "delete"], [""], ["persistentvolumes"]),
        _rule(["patch", "update"], [""], ["persistentvolumes/status"]),
        _rule(READ, [""], ["persistentvolumeclaims"]),
        _rule([*READ, "create"], ["storage.k8s.io"], ["storageclasses"]),
    ]),
)

CLUSTER_ROLE_BINDINGS: tuple[Obj, ...] = (
    cluster_role_binding("cluster-admin", "cluster-admin", [("Group", "system:masters")]),
    cluster_role_binding("system:basic-user", "system:basic-user", [("Group", "system:authenticated")]),
    cluster_role_binding("system:discovery", "system:discovery", [("Group", "system:authenticated")]),
    cluster_role_binding("system:public-info-viewer", "system:public-info-viewer",
                         [("Group", "system:authenticated"), ("Group", "system:unauthenticated")]),
    cluster_role_binding("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
                         [("Group", "system:serviceaccounts")]),
    cluster_role_binding(SCHEDULER, SCHEDULER, [("User", SCHEDULER)]),
    cluster_role_binding("system:volume-scheduler", "system:volume-scheduler", [("User", SCHEDULER)]),
    cluster_role_binding(CONTROLLER_MANAGER, CONTROLLER_MANAGER, [("User", CONTROLLER_MANAGER)]),
    cluster_role_binding(CLOUD_CONTROLLER_MANAGER, CLOUD_CONTROLLER_MANAGER, [("User", CLOUD_CONTROLLER_MANAGER)]),
)
