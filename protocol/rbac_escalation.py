"""RBAC privilege-escalation prevention, pure: nobody grants through RBAC what they do not hold.

As Kubernetes' ``pkg/registry/rbac`` (``validation.ConfirmNoEscalation``, ``Covers`` and the policy-based
storage of the four RBAC kinds), checked on the object about to be stored by a create, update, patch or apply:

* a **Role or ClusterRole** is written only by a user who already holds every permission it grants (its rules
  broken down to one verb, group, resource and name each, every one covered by a rule the user has in the
  Role's namespace, or cluster-wide for a ClusterRole), or who may ``escalate`` roles/clusterroles (that
  name); a ClusterRole with an ``aggregationRule`` needs ``escalate`` (its rules are others' to choose);
* a **RoleBinding or ClusterRoleBinding** is written only by a user who holds every permission of the role it
  references (in the binding's namespace for a RoleBinding), or who may ``bind`` that role (by name); a
  reference to a role that does not exist is NotFound;
* ``system:masters`` may do all of it (Kubernetes' ``EscalationAllowed``), and so may the API's trusted
  callers, which act as ``system:masters``.

The refusal is Forbidden, worded as Kubernetes words it: ``rolebindings.rbac.authorization.k8s.io "x" is
forbidden: user "bob" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently
held:`` followed by each missing rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from protocol.errors import Forbidden, NotFound
from protocol.rbac import MASTERS, Attributes, Policy, Rule, UserInfo, rules_of

GROUP = "rbac.authorization.k8s.io"
ROLE_KINDS = {"Role": "roles", "ClusterRole": "clusterroles"}
BINDING_KINDS = {"RoleBinding": "rolebindings", "ClusterRoleBinding": "clusterrolebindings"}
KINDS = frozenset(ROLE_KINDS) | frozenset(BINDING_KINDS)
LISTED = 20
"""Missing permissions named in a refusal at most (binding ``admin`` without holding it misses ~100)."""


def breakdown(rule: Rule) -> list[Rule]:
    """The rule as rules of one verb, one group, one resource and one name each (or one URL and one verb)."""
    if rule.non_resource_urls:
        return [Rule(frozenset({verb}), non_resource_urls=(url,))
                for url in rule.non_resource_urls for verb in sorted(rule.verbs)]
    names: list[frozenset[str]] = [frozenset({n}) for n in sorted(rule.resource_names)] or [frozenset()]
    return [Rule(frozenset({verb}), frozenset({group}), frozenset({resource}), name)
            for group in sorted(rule.api_groups) for resource in sorted(rule.resources)
            for verb in sorted(rule.verbs) for name in names]


def rule_covers(owner: Rule, simple: Rule) -> bool:
    """Does ``owner`` grant everything ``simple`` (one of ``breakdown``'s) grants? It is the request ``simple``
    describes, authorized by the rule as any request is (``Rule.covers``): a ``*`` in ``simple`` is then a
    literal that only a ``*`` matches (Kubernetes' ``ruleCovers``), and a piece without a name is a request
    for every name, which no rule naming names covers."""
    (verb,) = simple.verbs
    if simple.non_resource_urls:
        (url,) = simple.non_resource_urls
        return owner.covers(Attributes(verb, path=url))
    (group,), (resource,) = simple.api_groups, simple.resources
    name = next(iter(simple.resource_names), "")
    plural, _, sub = resource.partition("/")
    return owner.covers(Attributes(verb, plural, group, name=name, subresource=sub))


def uncovered(owner: Iterable[Rule], servant: Iterable[Rule]) -> list[Rule]:
    """The pieces (``breakdown``) of ``servant`` that no rule of ``owner`` covers (Kubernetes' ``Covers``). The
    owner's resource rules without names are indexed by (verb, group, resource), so that a piece is a few set
    lookups (its verb or ``*``, group or ``*``, resource, ``*`` or ``*/<subresource>``), as ``Policy``
    authorizes; the owner's other rules are tried one by one, and only for the pieces the index misses."""
    held = list(owner)
    index = {(v, g, r) for o in held if not o.resource_names and not o.non_resource_urls
             for v in o.verbs for g in o.api_groups for r in o.resources}
    others = [o for o in held if o.resource_names or o.non_resource_urls]
    missing: list[Rule] = []
    for rule in servant:
        if rule.non_resource_urls:
            missing += [p for p in breakdown(rule) if not any(rule_covers(o, p) for o in others)]
            continue
        for group in sorted(rule.api_groups):
            for resource in sorted(rule.resources):
                _, slash, sub = resource.partition("/")
                wild = f"*/{sub}" if slash else "*"
                for verb in sorted(rule.verbs):
                    if not index.isdisjoint((v, g, r) for v in (verb, "*") for g in (group, "*")
                                            for r in (resource, "*", wild)):
                        continue
                    piece = Rule(frozenset({verb}), frozenset({group}), frozenset({resource}), rule.resource_names)
                    missing += [p for p in breakdown(piece) if not any(rule_covers(o, p) for o in others)]
    return missing


def compact(rule: Rule) -> str:
    """A rule as Kubernetes' ``CompactString`` prints it: ``{APIGroups:[""], Resources:["pods"], Verbs:["get"]}``."""
    def strings(values: Iterable[str]) -> str:
        return "[" + " ".join(json.dumps(v) for v in values) + "]"
    if rule.non_resource_urls:
        return f"{{NonResourceURLs:{strings(rule.non_resource_urls)}, Verbs:{strings(sorted(rule.verbs))}}}"
    parts = [f"APIGroups:{strings(sorted(rule.api_groups))}", f"Resources:{strings(sorted(rule.resources))}"]
    if rule.resource_names:
        parts.append(f"ResourceNames:{strings(sorted(rule.resource_names))}")
    return "{" + ", ".join([*parts, f"Verbs:{strings(sorted(rule.verbs))}"]) + "}"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def _refused(kind: str, obj: dict[str, Any], message: str) -> Forbidden:
    plural = {**ROLE_KINDS, **BINDING_KINDS}[kind]
    name = str(_meta(obj).get("name") or "")
    return Forbidden(f"{plural}.{GROUP} \"{name}\" is forbidden: {message}",
                     {"kind": plural, "name": name, "group": GROUP})


def _confirm_held(policy: Policy, user: UserInfo, namespace: str, rules: Sequence[Rule], kind: str,
                  obj: dict[str, Any]) -> None:
    resource, non_resource = policy.rules_for(user, namespace)
    missing = uncovered([*resource, *non_resource], rules)
    if missing:
        groups = "[" + " ".join(json.dumps(g) for g in user.groups) + "]"
        listed = "\n".join(compact(r) for r in missing[:LISTED])
        if len(missing) > LISTED:
            listed += f"\n... and {len(missing) - LISTED} more"
        raise _refused(kind, obj, f"user {json.dumps(user.name)} (groups={groups}) is attempting to grant "
                                        f"RBAC permissions not currently held:\n{listed}")


def confirm_no_escalation(policy: Policy, user: UserInfo, kind: str, obj: dict[str, Any]) -> None:
    """Forbidden (or NotFound for a binding's missing role) unless ``user`` may store ``obj`` of ``kind``
    without gaining permissions it does not hold; nothing for the other kinds."""
    if kind not in KINDS or MASTERS in user.groups:
        return
    namespace = str(_meta(obj).get("namespace") or "") if kind in ("Role", "RoleBinding") else ""
    name = str(_meta(obj).get("name") or "")
    if kind in ROLE_KINDS:
        if policy.allowed(user, Attributes("escalate", ROLE_KINDS[kind], GROUP, namespace, name)):
            return
        if kind == "ClusterRole" and obj.get("aggregationRule") is not None:
            raise _refused(kind, obj, "must have cluster-admin privileges to use the aggregationRule")
        _confirm_held(policy, user, namespace, rules_of(obj), kind, obj)
        return
    ref = obj.get("roleRef")
    if not isinstance(ref, dict):
        ref = {}
    ref_kind, ref_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    if ref_kind in ROLE_KINDS and policy.allowed(
            user, Attributes("bind", ROLE_KINDS[ref_kind], GROUP, namespace, ref_name)):
        return
    referenced = policy.referenced_rules(ref_kind, namespace, ref_name)
    if referenced is None:
        raise NotFound(f'{ROLE_KINDS.get(ref_kind, ref_kind)}.{GROUP} "{ref_name}" not found',
                       {"kind": ROLE_KINDS.get(ref_kind, ref_kind), "name": ref_name, "group": GROUP})
    _confirm_held(policy, user, namespace, referenced, kind, obj)
