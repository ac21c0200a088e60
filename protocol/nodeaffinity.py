"""Node selection: the one matching rule for ``nodeSelector`` and required node affinity.

Shared by the scheduler (its NodeAffinity filter and score) and the DaemonSet controller (which nodes
should run a daemon pod), so the two never disagree about where a pod may go. Kubernetes' rule
(``k8s.io/component-helpers/scheduling/corev1/nodeaffinity``):

- ``nodeSelectorTerms`` are ORed; within a term, ``matchExpressions`` (on node labels) and
  ``matchFields`` (on ``metadata.name``, the only field Kubernetes supports) are ANDed; a term with no
  requirement matches no node, and an empty list of terms matches no node either;
- operators ``In``, ``NotIn``, ``Exists``, ``DoesNotExist``, and ``Gt``/``Lt`` comparing integers
  (one value); an unknown operator matches nothing;
- ``nodeSelector`` is an equality map, ANDed with the required affinity.

Parsed once from the objects (``term_of``, ``required_terms_of``) into frozen dataclasses, so the
scheduler matches them in its loops without touching dicts. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAME_FIELD = "metadata.name"
"""The one ``matchFields`` key Kubernetes supports."""


@dataclass(frozen=True, slots=True)
class SelectorRequirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist, Gt, Lt
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """ANDed requirements on labels (``matchExpressions``) and fields (``matchFields``: metadata.name)."""

    expressions: tuple[SelectorRequirement, ...] = ()
    fields: tuple[SelectorRequirement, ...] = ()


def requirement_matches(req: SelectorRequirement, labels: dict[str, str]) -> bool:
    value = labels.get(req.key)
    op = req.operator
    if op == "In":
        return value is not None and value in req.values
    if op == "NotIn":
        return value is None or value not in req.values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt"):
        if value is None or len(req.values) != 1:
            return False
        try:
            have, want = int(value), int(req.values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False  # an unknown operator matches nothing, as in Kubernetes


def term_matches(term: NodeSelectorTerm, labels: dict[str, str], name: str) -> bool:
    """All requirements of the term hold for the node ``name`` with ``labels``; an empty term matches none."""
    if not term.expressions and not term.fields:
        return False
    if not all(requirement_matches(r, labels) for r in term.expressions):
        return False
    if not term.fields:
        return True
    fields = {NAME_FIELD: name}
    return all(requirement_matches(r, fields) for r in term.fields)


def selector_matches(node_selector: tuple[tuple[str, str], ...], labels: dict[str, str]) -> bool:
    """``nodeSelector`` (as sorted pairs): every label equal."""
    # a plain loop, not all() over a generator: the scheduler calls this per node
    for key, value in node_selector:  # noqa: SIM110
        if labels.get(key) != value:
            return False
    return True


def node_matches(node_selector: tuple[tuple[str, str], ...], required: tuple[NodeSelectorTerm, ...] | None,
                 labels: dict[str, str], name: str) -> bool:
    """Kubernetes' ``RequiredNodeAffinity.Match``: the nodeSelector and (when set) one required term."""
    if not selector_matches(node_selector, labels):
        return False
    return required is None or any(term_matches(t, labels, name) for t in required)


# -- parsing ---------------------------------------------------------------------------------------
def requirement_of(expr: Any) -> SelectorRequirement:
    if not isinstance(expr, dict):
        return SelectorRequirement("", "Invalid")
    return SelectorRequirement(str(expr.get("key", "")), str(expr.get("operator", "")),
                               tuple(str(v) for v in expr.get("values") or ()))


def term_of(term: Any) -> NodeSelectorTerm:
    if not isinstance(term, dict):
        return NodeSelectorTerm()
    return NodeSelectorTerm(tuple(requirement_of(e) for e in term.get("matchExpressions") or ()),
                            tuple(requirement_of(e) for e in term.get("matchFields") or ()))


def node_affinity_of(spec: Any) -> dict[str, Any]:
    """A pod spec's ``affinity.nodeAffinity`` (empty when absent or malformed)."""
    affinity = spec.get("affinity") if isinstance(spec, dict) else None
    node_affinity = affinity.get("nodeAffinity") if isinstance(affinity, dict) else None
    return node_affinity if isinstance(node_affinity, dict) else {}


def required_terms_of(spec: Any) -> tuple[NodeSelectorTerm, ...] | None:
    """A pod spec's required node affinity terms; None when it has none (every node matches)."""
    required = node_affinity_of(spec).get("requiredDuringSchedulingIgnoredDuringExecution")
    if not isinstance(required, dict):
        return None
    return tuple(term_of(t) for t in required.get("nodeSelectorTerms") or ())


def node_selector_of(spec: Any) -> tuple[tuple[str, str], ...]:
    """A pod spec's ``nodeSelector`` as sorted pairs."""
    selector = spec.get("nodeSelector") if isinstance(spec, dict) else None
    if not isinstance(selector, dict):
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in selector.items()))


def named_nodes(terms: tuple[NodeSelectorTerm, ...] | None) -> frozenset[str] | None:
    """The only nodes the required terms can match by name, or None when any node may match.

    Kubernetes' NodeAffinity PreFilter: a term's ``metadata.name In`` requirements (intersected) bound the
    nodes it matches; the terms are ORed, so the union; one term without such a requirement leaves every
    node possible. Lets the scheduler look at one node for a DaemonSet pod instead of all of them."""
    if terms is None:
        return None
    names: set[str] = set()
    for term in terms:
        term_names: set[str] | None = None
        for req in term.fields:
            if req.key == NAME_FIELD and req.operator == "In":
                values = set(req.values)
                term_names = values if term_names is None else term_names & values
        if term_names is None:
            return None
        names |= term_names
    return frozenset(names)


def pinned_node(spec: Any) -> str | None:
    """The node a pod is pinned to: ``nodeName``, else the single node its required affinity names
    (one term whose ``matchFields`` is ``metadata.name In [one name]``), as Kubernetes'
    ``GetTargetNodeName`` reads a DaemonSet pod before the scheduler binds it."""
    if not isinstance(spec, dict):
        return None
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    fast = _pinned_fast(spec)
    if fast is not None:
        return fast
    terms = required_terms_of(spec)
    if not terms:
        return None
    for term in terms:
        for req in term.fields:
            if req.key == NAME_FIELD and req.operator == "In" and len(req.values) == 1:
                return req.values[0]
    return None


def _pinned_fast(spec: dict[str, Any]) -> str | None:
    """The shape ``pin_to_node`` writes, read without parsing (a controller reads it for every pod)."""
    try:
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        (only,) = terms
        (req,) = only["matchFields"]
        if req["key"] == NAME_FIELD and req["operator"] == "In" and len(req["values"]) == 1:
            return str(req["values"][0])
    except (KeyError, TypeError, ValueError):
        pass
    return None


def pin_to_node(spec: dict[str, Any], node: str) -> None:
    """Pin a pod spec to ``node`` by required node affinity on ``metadata.name``, in place.

    Kubernetes' ``ReplaceDaemonSetPodNodeNameNodeAffinity``: the required terms are replaced by one term
    naming the node (the caller has already checked the node satisfies the original terms), so the
    scheduler, not the controller, binds the pod and accounts for its resources."""
    affinity = spec.get("affinity")
    if not isinstance(affinity, dict):
        affinity = spec["affinity"] = {}
    node_affinity = affinity.get("nodeAffinity")
    if not isinstance(node_affinity, dict):
        node_affinity = affinity["nodeAffinity"] = {}
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": NAME_FIELD, "operator": "In", "values": [node]}]}]}
