"""The RBAC authorizer, pure: may this user do this request, given the Roles, ClusterRoles and bindings?

As Kubernetes' ``plugin/pkg/auth/authorizer/rbac``: a request is allowed when some rule of some role bound to
the user (by name, by one of its groups, or as ``system:serviceaccount:<ns>:<name>``) covers it: a
ClusterRoleBinding's ClusterRole anywhere, a RoleBinding's Role or ClusterRole only in the binding's namespace.
A rule covers a resource request when its verbs, apiGroups, resources (``pods/log`` for a subresource, ``*``,
``*/scale``) and resourceNames (none: any name; a collection request never matches a rule that names names)
match (the API gives a list or watch pinned to one name by ``fieldSelector=metadata.name=X`` that name, as
Kubernetes does); a non-resource request (``/api``, ``/healthz``) when its verbs and nonResourceURLs (a
trailing ``*`` is a prefix) match. Nothing denies: no matching rule is Forbidden, worded as Kubernetes words it.

``Policy.build(roles, cluster_roles, role_bindings, cluster_role_bindings)`` indexes the objects once (bindings
by subject, aggregated ClusterRoles resolved); ``Policy.allowed(user, attributes)`` is then a few dict lookups.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import BadRequest, Forbidden

Obj = dict[str, Any]
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {"user": self.name, "groups": list(self.groups), **({"uid": self.uid} if self.uid else {})}


def user_from_wire(value: Any) -> UserInfo:
    """The ``as`` of a request: ``{"user": str, "groups": [str], "uid"?: str}``; anything else is Forbidden
    (an impersonation that cannot be understood is never served as the trusted caller)."""
    if not isinstance(value, dict) or set(value) - {"user", "groups", "uid"}:
        raise Forbidden("'as' must be a map of user, groups and uid")
    name, groups, uid = value.get("user"), value.get("groups") or [], value.get("uid") or ""
    if not isinstance(name, str) or not name or not isinstance(groups, list) \
            or not all(isinstance(g, str) for g in groups) or not isinstance(uid, str):
        raise Forbidden("'as' needs a user name (string), groups (strings) and optionally a uid (string)")
    return UserInfo(name, tuple(groups), uid)


@dataclass(frozen=True, slots=True)
class Attributes:
    """What is asked, as Kubernetes' ``authorizer.Attributes``: a resource request (``resource`` set) or a
    non-resource one (``path`` set)."""

    verb: str
    resource: str = ""
    api_group: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    path: str = ""

    @property
    def resource_request(self) -> bool:
        return not self.path

    def to_wire(self) -> dict[str, Any]:
        if not self.resource_request:
            return {"nonResourceAttributes": {"path": self.path, "verb": self.verb}}
        return {"resourceAttributes": {"verb": self.verb, "group": self.api_group, "resource": self.resource,
                                       "subresource": self.subresource, "namespace": self.namespace,
                                       "name": self.name}}


def attributes_from_wire(spec: Any) -> Attributes:
    """A SubjectAccessReview's ``spec`` (resourceAttributes or nonResourceAttributes) as Attributes."""
    if not isinstance(spec, dict):
        raise Forbidden("an access review's spec must be a map")
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if isinstance(non_resource, dict) and resource is None:
        return Attributes(str(non_resource.get("verb") or ""), path=str(non_resource.get("path") or "/"))
    if not isinstance(resource, dict):
        raise BadRequest("an access review needs resourceAttributes or nonResourceAttributes")
    return Attributes(str(resource.get("verb") or ""), str(resource.get("resource") or ""),
                      str(resource.get("group") or ""), str(resource.get("namespace") or ""),
                      str(resource.get("name") or ""), str(resource.get("subresource") or ""))


@dataclass(frozen=True, slots=True)
class Rule:
    verbs: frozenset[str]
    api_groups: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    resource_names: frozenset[str] = frozenset()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> Rule | None:
        if not isinstance(raw, dict):
            return None
        def strings(key: str) -> tuple[str, ...]:
            value = raw.get(key) or ()
            return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()
        return cls(frozenset(strings("verbs")), frozenset(strings("apiGroups")), frozenset(strings("resources")),
                   frozenset(strings("resourceNames")), strings("nonResourceURLs"))

    def covers(self, a: Attributes) -> bool:
        if "*" not in self.verbs and a.verb not in self.verbs:
            return False
        if not a.resource_request:
            return any(u == "*" or u == a.path or (u.endswith("*") and a.path.startswith(u[:-1]))
                       for u in self.non_resource_urls)
        if "*" not in self.api_groups and a.api_group not in self.api_groups:
            return False
        if not self._resource_matches(a):
            return False
        return not self.resource_names or a.name in self.resource_names

    def _resource_matches(self, a: Attributes) -> bool:
        combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        if "*" in self.resources or combined in self.resources:
            return True
        return bool(a.subresource) and f"*/{a.subresource}" in self.resources

    def to_wire(self) -> dict[str, Any]:
        if self.non_resource_urls:
            return {"verbs": sorted(self.verbs), "nonResourceURLs": list(self.non_resource_urls)}
        out: dict[str, Any] = {"verbs": sorted(self.verbs), "apiGroups": sorted(self.api_groups),
                               "resources": sorted(self.resources)}
        if self.resource_names:
            out["resourceNames"] = sorted(self.resource_names)
        return out


def rules_of(obj: Obj) -> tuple[Rule, ...]:
    """A Role's or ClusterRole's rules (those that parse)."""
    raw = obj.get("rules")
    return tuple(r for r in (Rule.parse(x) for x in raw) if r is not None) if isinstance(raw, list) else ()


def _meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def _aggregate(cluster_roles: Iterable[Obj]) -> dict[str, tuple[Rule, ...]]:
    """Each ClusterRole's rules; an aggregated one's are the union of the ClusterRoles its selectors match
    (one level, as Kubernetes' aggregation controller writes them; its own rules are replaced)."""
    roles = [r for r in cluster_roles if isinstance(r, dict)]
    out = {str(_meta(r).get("name")): rules_of(r) for r in roles}
    for role in roles:
        agg = role.get("aggregationRule")
        if not isinstance(agg, dict):
            continue
        selectors = [s.get("matchLabels") or {} for s in agg.get("clusterRoleSelectors") or ()
                     if isinstance(s, dict)]
        union: list[Rule] = []
        for other in roles:
            labels = _meta(other).get("labels") or {}
            if other is role or other.get("aggregationRule") or not isinstance(labels, dict):
                continue
            if any(isinstance(sel, dict) and sel and all(labels.get(k) == v for k, v in sel.items())
                   for sel in selectors):
                union.extend(r for r in out[str(_meta(other).get("name"))] if r not in union)
        out[str(_meta(role).get("name"))] = tuple(union)
    return out


def _subject_keys(binding: Obj, namespace: str) -> Iterator[tuple[str, str]]:
    """("user"|"group", name) for each subject of a binding (a ServiceAccount is the user it stands for)."""
    for s in binding.get("subjects") or ():
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            continue
        if s.get("kind") == "User":
            yield "user", s["name"]
        elif s.get("kind") == "Group":
            yield "group", s["name"]
        elif s.get("kind") == "ServiceAccount":
            yield "user", f"{SERVICE_ACCOUNT_PREFIX}{s.get('namespace') or namespace}:{s['name']}"


@dataclass(frozen=True)
class Grant:
    """One binding's grant: the role it names (resolved at evaluation, so a role created after its binding
    counts) and where it applies (None: every namespace and cluster-scoped resources)."""

    namespace: str | None
    role_kind: str
    role_name: str
    binding: str


@dataclass
class Policy:
    roles: dict[tuple[str, str], tuple[Rule, ...]] = field(default_factory=dict)
    cluster_roles: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    grants: dict[tuple[str, str, str | None], list[Grant]] = field(default_factory=dict)
    """(``user``|``group``, name, the binding's namespace or None for cluster-wide) -> its grants: a request
    looks up its user's and groups' cluster-wide grants and those of its namespace only."""
    _indexes: dict[tuple[str, str | None, str], tuple[frozenset[tuple[str, str, str]], tuple[Rule, ...]]] = \
        field(default_factory=dict)

    @classmethod
    def build(cls, roles: Iterable[Obj] = (), cluster_roles: Iterable[Obj] = (),
              role_bindings: Iterable[Obj] = (), cluster_role_bindings: Iterable[Obj] = ()) -> Policy:
        policy = cls()
        for role in roles:
            m = _meta(role)
            policy.roles[(str(m.get("namespace") or ""), str(m.get("name")))] = rules_of(role)
        policy.cluster_roles = _aggregate(cluster_roles)
        for bindings, namespaced in ((cluster_role_bindings, False), (role_bindings, True)):
            for binding in bindings:
                m, ref = _meta(binding), binding.get("roleRef")
                if not isinstance(ref, dict):
                    continue
                ns = str(m.get("namespace") or "") if namespaced else None
                grant = Grant(ns, str(ref.get("kind")), str(ref.get("name")),
                              f"{'RoleBinding' if namespaced else 'ClusterRoleBinding'} \"{m.get('name')}\"")
                for kind, name in _subject_keys(binding, ns or ""):
                    policy.grants.setdefault((kind, name, ns), []).append(grant)
        return policy

    def _grants(self, user: UserInfo, namespace: str | None) -> Iterator[Grant]:
        """The cluster-wide grants of the user and its groups, then those in ``namespace`` (if any)."""
        scopes = (None, namespace) if namespace else (None,)
        for scope in scopes:
            yield from self.grants.get(("user", user.name, scope), ())
            for group in user.groups:
                yield from self.grants.get(("group", group, scope), ())

    def _rules_of(self, grant: Grant) -> tuple[Rule, ...]:
        if grant.role_kind == "ClusterRole":
            return self.cluster_roles.get(grant.role_name, ())
        return self.roles.get((grant.namespace or "", grant.role_name), ())

    def referenced_rules(self, kind: str, namespace: str, name: str) -> tuple[Rule, ...] | None:
        """The rules of the role a binding's ``roleRef`` names (a Role in ``namespace``), None if there is none."""
        if kind == "ClusterRole":
            return self.cluster_roles.get(name)
        return self.roles.get((namespace, name)) if kind == "Role" else None

    def allowed(self, user: UserInfo, a: Attributes) -> bool:
        return self.reason(user, a) is not None

    def reason(self, user: UserInfo, a: Attributes) -> str | None:
        """The grant that allows the request (Kubernetes' reason text), or None."""
        grant = self._allowing(user, a)
        return None if grant is None else f"RBAC: allowed by {grant.binding} of {grant.role_kind} \"{grant.role_name}\""

    def _allowing(self, user: UserInfo, a: Attributes) -> Grant | None:
        resource = a.resource_request
        if resource:
            combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
            wild_sub = f"*/{a.subresource}" if a.subresource else None
            keys = {(v, g, r) for v in (a.verb, "*") for g in (a.api_group, "*")
                    for r in (combined, "*", wild_sub) if r is not None}
        for grant in self._grants(user, a.namespace if resource else None):
            if resource:
                index, named = self._index_of(grant)
                if not index.isdisjoint(keys):
                    return grant
                if named and any(rule.covers(a) for rule in named):
                    return grant
            elif any(rule.covers(a) for rule in self._rules_of(grant)):
                return grant
        return None

    def _index_of(self, grant: Grant) -> tuple[frozenset[tuple[str, str, str]], tuple[Rule, ...]]:
        """(verb, group, resource) of the role's resource rules without resourceNames (a request is covered by
        one of them iff one of its at most 12 (verb|*, group|*, resource|*|*/sub) keys is in the set), and the
        rules with resourceNames, checked one by one."""
        key = (grant.role_kind, grant.namespace if grant.role_kind == "Role" else None, grant.role_name)
        found = self._indexes.get(key)
        if found is None:
            rules = self._rules_of(grant)
            found = (frozenset((v, g, r) for rule in rules if not rule.resource_names and not rule.non_resource_urls
                               for v in rule.verbs for g in rule.api_groups for r in rule.resources),
                     tuple(r for r in rules if r.resource_names))
            self._indexes[key] = found
        return found

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[Rule]]:
        """(resource rules, non-resource rules) the user has in ``namespace`` (SelfSubjectRulesReview)."""
        resource: dict[Rule, None] = {}  # ordered sets: each rule once, in the order found
        non_resource: dict[Rule, None] = {}
        for grant in self._grants(user, namespace):
            for rule in self._rules_of(grant):
                if not rule.non_resource_urls:
                    resource[rule] = None
                elif grant.namespace is None:
                    non_resource[rule] = None
        return list(resource), list(non_resource)

    def authorize(self, user: UserInfo, a: Attributes) -> None:
        """Forbidden, worded as Kubernetes', unless allowed."""
        if not self.allowed(user, a):
            raise Forbidden(forbidden_message(user, a), {"kind": a.resource, "name": a.name,
                                                        "group": a.api_group})


def forbidden_message(user: UserInfo, a: Attributes) -> str:
    """``pods is forbidden: User "system:serviceaccount:team:robot" cannot list resource "pods" in API group ""
    in the namespace "team"`` (Kubernetes' ``forbiddenMessage``)."""
    who = f"User \"{user.name}\""
    if not a.resource_request:
        return f"forbidden: {who} cannot {a.verb} path \"{a.path}\""
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    qualified = f"{a.resource}.{a.api_group}" if a.api_group else a.resource
    what = f"{qualified} \"{a.name}\"" if a.name else qualified
    head = f"{what} is forbidden: {who} cannot {a.verb} resource \"{resource}\" in API group \"{a.api_group}\""
    return f"{head} in the namespace \"{a.namespace}\"" if a.namespace else f"{head} at the cluster scope"


def access_review(policy: Policy, subject: Any, spec: Any) -> dict[str, Any]:
    """A SubjectAccessReview's status for ``subject`` (the wire form of ``as``) and the review's spec."""
    user, attributes = user_from_wire(subject), attributes_from_wire(spec)
    reason = policy.reason(user, attributes)
    return {"allowed": True, "reason": reason} if reason is not None else {"allowed": False}


def rules_review(policy: Policy, subject: Any, namespace: Any) -> dict[str, Any]:
    """A SelfSubjectRulesReview's status: the rules ``subject`` has in ``namespace``."""
    if not isinstance(namespace, str):
        raise BadRequest("a rules review needs spec.namespace")
    resource, non_resource = policy.rules_for(user_from_wire(subject), namespace)
    return {"resourceRules": [r.to_wire() for r in resource],
            "nonResourceRules": [r.to_wire() for r in non_resource], "incomplete": False}
