"""Role, ClusterRole, RoleBinding, ClusterRoleBinding (rbac.authorization.k8s.io/v1): who may do what.

Validation as Kubernetes' ``pkg/apis/rbac/validation``: names are path segments (``system:kube-scheduler``);
a rule names verbs, and either apiGroups + resources (resourceNames optional) or, in ClusterRoles only,
nonResourceURLs; a binding's ``roleRef`` (apiGroup ``rbac.authorization.k8s.io``, kind Role or ClusterRole,
a ClusterRoleBinding only ClusterRole) is immutable; subjects are User, Group (apiGroup
``rbac.authorization.k8s.io``) or ServiceAccount (apiGroup ``""``, a namespace required in a ClusterRoleBinding).
A ClusterRole's ``aggregationRule`` (``clusterRoleSelectors`` with ``matchLabels``) makes its rules the union
of the ClusterRoles it selects; the authorizer computes that union (``protocol.rbac``), nothing rewrites it.
"""

from __future__ import annotations

from typing import Any

from protocol.fielderrors import Errors
from protocol.kinds.strategy import AGE, NAME, Column, Field, KindInfo, Strategy, get_path
from protocol.objects import Obj

GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
ROLE = KindInfo("Role", API_VERSION, "roles", "role")
CLUSTER_ROLE = KindInfo("ClusterRole", API_VERSION, "clusterroles", "clusterrole", namespaced=False)
ROLE_BINDING = KindInfo("RoleBinding", API_VERSION, "rolebindings", "rolebinding")
CLUSTER_ROLE_BINDING = KindInfo("ClusterRoleBinding", API_VERSION, "clusterrolebindings", "clusterrolebinding",
                                namespaced=False)
SUBJECT_KINDS = ("User", "Group", "ServiceAccount")


def _rules(e: Errors, obj: Obj, *, namespaced: bool) -> None:
    for path, rule in e.items(obj.get("rules"), "rules"):
        e.str_list(rule.get("verbs"), f"{path}.verbs")
        if not rule.get("verbs"):
            e.add(f"{path}.verbs", "Required value: verbs must contain at least one value")
        for field in ("apiGroups", "resources", "resourceNames", "nonResourceURLs"):
            e.str_list(rule.get(field), f"{path}.{field}")
        if rule.get("nonResourceURLs"):
            if namespaced:
                e.add(f"{path}.nonResourceURLs", "Invalid value: namespaced rules cannot apply to non-resource URLs")
            if rule.get("apiGroups") or rule.get("resources"):
                e.add(f"{path}.nonResourceURLs", "Invalid value: rules cannot apply to both regular resources and "
                                                 "non-resource URLs")
            continue
        if not rule.get("apiGroups"):
            e.add(f"{path}.apiGroups", "Required value: resource rules must supply at least one api group")
        if not rule.get("resources"):
            e.add(f"{path}.resources", "Required value: resource rules must supply at least one resource")


def _validate_role(e: Errors, obj: Obj) -> None:
    _rules(e, obj, namespaced=True)


def _validate_cluster_role(e: Errors, obj: Obj) -> None:
    _rules(e, obj, namespaced=False)
    rule = obj.get("aggregationRule")
    if rule is None or not e.check(rule, "aggregationRule", dict):
        return
    for path, selector in e.items(rule.get("clusterRoleSelectors"), "aggregationRule.clusterRoleSelectors",
                                  required=True):
        e.string_map(selector.get("matchLabels"), f"{path}.matchLabels")
        if selector.get("matchExpressions"):
            e.add(f"{path}.matchExpressions", "Unsupported value: only matchLabels selects aggregated ClusterRoles")


def _validate_binding(e: Errors, obj: Obj, *, namespaced: bool) -> None:
    ref: Any = obj.get("roleRef")
    if e.check(ref, "roleRef", dict, required=True):
        if ref.get("apiGroup") != GROUP:
            e.add("roleRef.apiGroup", f"Unsupported value: {ref.get('apiGroup')!r}: supported values: {GROUP}")
        kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
        if ref.get("kind") not in kinds:
            e.add("roleRef.kind", f"Unsupported value: {ref.get('kind')!r}: supported values: {', '.join(kinds)}")
        if e.check(ref.get("name"), "roleRef.name", str, required=True) and not ref["name"]:
            e.add("roleRef.name", "Required value")
    for path, subject in e.items(obj.get("subjects"), "subjects"):
        kind = subject.get("kind")
        e.check(subject.get("name"), f"{path}.name", str, required=True)
        e.check(subject.get("namespace"), f"{path}.namespace", str)
        if kind not in SUBJECT_KINDS:
            e.add(f"{path}.kind", f"Unsupported value: {kind!r}: supported values: {', '.join(SUBJECT_KINDS)}")
        elif kind == "ServiceAccount":
            if subject.get("apiGroup") not in (None, ""):
                e.add(f"{path}.apiGroup", f"Unsupported value: {subject.get('apiGroup')!r}: supported values: \"\"")
            if not namespaced and not subject.get("namespace"):
                e.add(f"{path}.namespace", "Required value")
        elif subject.get("apiGroup") != GROUP:
            e.add(f"{path}.apiGroup", f"Unsupported value: {subject.get('apiGroup')!r}: supported values: {GROUP}")


def _default_binding(obj: Obj) -> None:
    for subject in obj.get("subjects") or ():
        if isinstance(subject, dict) and subject.get("kind") in ("User", "Group"):
            subject.setdefault("apiGroup", GROUP)
    ref = obj.get("roleRef")
    if isinstance(ref, dict):
        ref.setdefault("apiGroup", GROUP)


def _role_ref_immutable(e: Errors, new: Obj, old: Obj) -> None:
    if new.get("roleRef") != old.get("roleRef"):
        e.add("roleRef", "Invalid value: cannot change roleRef")


RULE = Field("rules", "array", "What the role allows, one PolicyRule each.", items=Field("", "object", fields=(
    Field("verbs", "array", "get, list, watch, create, update, patch, delete, deletecollection, or *.",
          required=True, items=Field("", "string")),
    Field("apiGroups", "array", "API groups (\"\" is the core group, * any).", items=Field("", "string")),
    Field("resources", "array", "Resources, with subresources as pods/log; * any.", items=Field("", "string")),
    Field("resourceNames", "array", "Names the rule is limited to (none: any).", items=Field("", "string")),
    Field("nonResourceURLs", "array", "URL paths (ClusterRoles only; a trailing * is a prefix).",
          items=Field("", "string")),
)))
SUBJECTS = Field("subjects", "array", "Who the binding grants the role to.", items=Field("", "object", fields=(
    Field("kind", "string", "User, Group or ServiceAccount.", required=True, enum=SUBJECT_KINDS),
    Field("apiGroup", "string", "rbac.authorization.k8s.io for users and groups, \"\" for service accounts."),
    Field("name", "string", "The user, group or service account.", required=True),
    Field("namespace", "string", "The service account's namespace."),
)))
ROLE_REF = Field("roleRef", "object", "The role granted (immutable).", required=True, fields=(
    Field("apiGroup", "string", "rbac.authorization.k8s.io.", required=True),
    Field("kind", "string", "Role or ClusterRole.", required=True),
    Field("name", "string", "The role's name.", required=True),
))
AGGREGATION = Field("aggregationRule", "object", "Rules are the union of the ClusterRoles selected.", fields=(
    Field("clusterRoleSelectors", "array", "Label selectors of ClusterRoles.", items=Field("", "object", fields=(
        Field("matchLabels", "object", "Labels a ClusterRole must have.", values=Field("", "string")),
        Field("matchExpressions", "array", "Not supported.", items=Field("", "object")),
    ))),
))


def _role_of(o: Obj, now: float) -> str:
    ref: Any = o.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}" if isinstance(ref, dict) else ""


def _subject_names(kind: str) -> Column:
    def value(o: Obj, now: float) -> str:
        return ",".join(str(s.get("name") if kind != "ServiceAccount" else f"{s.get('namespace', '')}/{s.get('name')}")
                        for s in o.get("subjects") or () if isinstance(s, dict) and s.get("kind") == kind)
    return Column(f"{kind.upper()}S", value, priority=1)


def _created(o: Obj, now: float) -> str:
    return str(get_path(o, "metadata", "creationTimestamp") or "")


_BINDING_COLUMNS = (NAME, Column("ROLE", _role_of, description="The role granted."), AGE,
                    _subject_names("User"), _subject_names("Group"), _subject_names("ServiceAccount"))
ROLE_STRATEGY = Strategy(
    ROLE, description="Namespaced rules: what may be done with the namespace's resources.",
    schema=(RULE,), columns=(NAME, Column("CREATED AT", _created)), name_rule="path",
    validate=_validate_role)
CLUSTER_ROLE_STRATEGY = Strategy(
    CLUSTER_ROLE, description="Cluster-wide rules, bound cluster-wide or in one namespace.",
    schema=(RULE, AGGREGATION), columns=(NAME, Column("CREATED AT", _created)), name_rule="path",
    validate=_validate_cluster_role)
ROLE_BINDING_STRATEGY = Strategy(
    ROLE_BINDING, description="Grants a Role or ClusterRole to subjects within the binding's namespace.",
    schema=(ROLE_REF, SUBJECTS), columns=_BINDING_COLUMNS, name_rule="path", default=_default_binding,
    validate=lambda e, o: _validate_binding(e, o, namespaced=True), validate_update=_role_ref_immutable)
CLUSTER_ROLE_BINDING_STRATEGY = Strategy(
    CLUSTER_ROLE_BINDING, description="Grants a ClusterRole to subjects in every namespace.",
    schema=(ROLE_REF, SUBJECTS), columns=_BINDING_COLUMNS, name_rule="path", default=_default_binding,
    validate=lambda e, o: _validate_binding(e, o, namespaced=False), validate_update=_role_ref_immutable)
STRATEGIES = (ROLE_STRATEGY, CLUSTER_ROLE_STRATEGY, ROLE_BINDING_STRATEGY, CLUSTER_ROLE_BINDING_STRATEGY)
