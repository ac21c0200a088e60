"""Pure decisions of the DaemonSet controller: one pod of a template on every eligible node.

Kubernetes' ``pkg/controller/daemon`` (``daemon_controller.go``, ``update.go``), as pure functions:

- ``node_fit(facts, node)``: should the node run a daemon pod (``should_run``), and may a pod already
  there keep running (``should_continue``)? The template's ``nodeName``, ``nodeSelector`` and required
  node affinity must match (``protocol.nodeaffinity``, the scheduler's rule); every NoSchedule/NoExecute
  taint must be tolerated for ``should_run``, every NoExecute taint for ``should_continue``. Tolerations are
  the template's plus the **default daemon tolerations** Kubernetes adds (``daemon_tolerations``):
  not-ready and unreachable NoExecute, disk/memory/pid-pressure and unschedulable NoSchedule, and
  network-unavailable NoSchedule for host-network pods. A cordon (``spec.unschedulable``) and a Ready
  condition that is False/Unknown count as the NoSchedule taints the scheduler reads them as.
- ``manage``: a node that should run a pod and has none gets one; a node whose pod may not continue
  loses it; extra pods on a node go (the oldest is kept; with ``maxSurge`` the oldest old and oldest
  new, until the new one is available); failed and succeeded pods are deleted (with a per-node back-off
  the controller keeps) and replaced. Pods pinned to a node that no longer exists are deleted
  (Kubernetes leaves scheduled ones to its pod GC, which Shoal does not have).
- ``rolling_update``: with ``RollingUpdate``, pods whose ``controller-revision-hash`` label is not the
  template's hash are replaced node by node: without surge, old pods are deleted while fewer than
  ``maxUnavailable`` nodes are unavailable (an unavailable old pod is replaced at once); with surge, new
  pods are created beside old ones on up to ``maxSurge`` nodes and the old ones deleted once the new are
  available. ``OnDelete`` replaces a pod only when someone deletes it. Both fenceposts are resolved from
  percentages of the desired node count rounding up; both 0 means ``maxUnavailable`` 1.
- ``compute_status``: desired/current/updated/misscheduled/ready/available/unavailable and
  ``observedGeneration``, counted as Kubernetes' ``updateDaemonSetStatus``.

Each daemon pod is pinned to its node by required node affinity on ``metadata.name`` (Kubernetes since
1.12), so the scheduler binds it and accounts for its resources. The revision is a template hash label
(``controller-revision-hash``), not a ControllerRevision object: there is no rollback history.
``plan_pass`` decides from the fit of every node and the DaemonSet's pods by node as the controller keeps
them between passes (``daemonset_cache``); ``plan`` evaluates both afresh from every node and the
namespace's pods, the reference the tests hold the kept state to. Nothing here does I/O;
``daemonset.py`` executes the actions.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

from actors.controllers.claim_plan import AdoptPod, ClaimPlan, ReleasePod, claim_actions, claim_plan
from actors.controllers.deployment_revisions import resolve_int_or_percent, template_hash
from actors.controllers.replication_plan import DeletePods, is_available, pod_from_template, ready_since
from protocol.nodeaffinity import (
    NodeSelectorTerm,
    node_matches,
    node_selector_of,
    pin_to_node,
    pinned_node,
    required_terms_of,
)
from protocol.objects import (
    Obj,
    controller_of,
    is_deleting,
    labels_of,
    meta,
    name_of,
    parse_time,
    pod_is_ready,
    uid_of,
)
from protocol.selectors import Selector, from_label_selector
from protocol.tolerations import (
    EXISTS,
    NO_EXECUTE,
    NO_SCHEDULE,
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    Taint,
    Toleration,
    find_untolerated_taint,
    taints_of,
    toleration_of,
)

HASH_LABEL = "controller-revision-hash"
BURST_REPLICAS = 250
"""Most pods created or deleted in one pass (kube-controller-manager's DaemonSet ``burstReplicas``)."""
DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"
ROLLING_UPDATE = "RollingUpdate"
ON_DELETE = "OnDelete"

_DEFAULT_TOLERATIONS: tuple[Obj, ...] = (
    {"key": NOT_READY, "operator": EXISTS, "effect": NO_EXECUTE},
    {"key": UNREACHABLE, "operator": EXISTS, "effect": NO_EXECUTE},
    {"key": DISK_PRESSURE, "operator": EXISTS, "effect": NO_SCHEDULE},
    {"key": MEMORY_PRESSURE, "operator": EXISTS, "effect": NO_SCHEDULE},
    {"key": PID_PRESSURE, "operator": EXISTS, "effect": NO_SCHEDULE},
    {"key": UNSCHEDULABLE, "operator": EXISTS, "effect": NO_SCHEDULE},
)
_HOST_NETWORK_TOLERATION: Obj = {"key": NETWORK_UNAVAILABLE, "operator": EXISTS, "effect": NO_SCHEDULE}
_FILTERED = (NO_SCHEDULE, NO_EXECUTE)
_EVICTING = (NO_EXECUTE,)


# -- actions ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreatePods:
    nodes: tuple[str, ...]
    """One new pod pinned to each of these nodes."""


Action = AdoptPod | ReleasePod | CreatePods | DeletePods


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    status: Obj = field(default_factory=dict)
    failed_nodes: list[str] = field(default_factory=list)
    """Nodes whose failed pod is deleted this pass: the controller advances their back-off."""
    requeue_after: float | None = None
    """Seconds until something time-bound changes (a pod turning available, a back-off ending)."""


# -- reading the DaemonSet once -------------------------------------------------------------------
def daemon_tolerations(spec: Obj) -> list[Obj]:
    """The template's tolerations plus the default daemon ones (Kubernetes'
    ``AddOrUpdateDaemonPodTolerations``): a toleration with a default's key, operator, value and effect
    is replaced by the default (so a ``tolerationSeconds`` on it goes: daemon pods are never evicted for
    these taints), the other defaults are appended."""
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    defaults = [*_DEFAULT_TOLERATIONS, *((_HOST_NETWORK_TOLERATION,) if spec.get("hostNetwork") else ())]
    for default in defaults:
        wanted = _identity(toleration_of(default))
        same = [i for i, t in enumerate(tolerations) if _identity(toleration_of(t)) == wanted]
        for i in same:
            tolerations[i] = dict(default)
        if not same:
            tolerations.append(dict(default))
    return tolerations


def _identity(t: Toleration) -> tuple[str, str, str, str]:
    """Kubernetes' ``MatchToleration``: the same key, operator, value and effect."""
    return t.key, t.operator, t.value, t.effect


@dataclass(frozen=True, slots=True)
class DaemonFacts:
    """What the plan reads of a DaemonSet, parsed once per pass rather than once per node."""

    selector: Selector
    node_name: str
    node_selector: tuple[tuple[str, str], ...]
    required_terms: tuple[NodeSelectorTerm, ...] | None
    tolerations: tuple[Toleration, ...]
    hash: str
    strategy: str
    max_surge: object
    max_unavailable: object
    min_ready_seconds: int


def daemon_hash(ds: Obj) -> str:
    """The ``controller-revision-hash`` of the DaemonSet's current template."""
    spec = ds.get("spec") or {}
    return template_hash(spec.get("template") or {}, (ds.get("status") or {}).get("collisionCount"))


def daemon_facts(ds: Obj) -> DaemonFacts:
    spec = ds.get("spec") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    strategy = spec.get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    return DaemonFacts(
        selector=from_label_selector(spec.get("selector")),
        node_name=str(pod_spec.get("nodeName") or ""),
        node_selector=node_selector_of(pod_spec),
        required_terms=required_terms_of(pod_spec),
        tolerations=tuple(toleration_of(t) for t in daemon_tolerations(pod_spec)),
        hash=daemon_hash(ds),
        strategy=str(strategy.get("type") or ROLLING_UPDATE),
        max_surge=rolling.get("maxSurge", 0),
        max_unavailable=rolling.get("maxUnavailable", 1),
        min_ready_seconds=int(spec.get("minReadySeconds") or 0),
    )


# -- which nodes ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NodeFit:
    should_run: bool
    """A daemon pod should be created on the node when it has none."""
    should_continue: bool
    """A daemon pod already on the node may stay."""


_NOTHING = NodeFit(False, False)
_RUN = NodeFit(True, True)
_CONTINUE_ONLY = NodeFit(False, True)


def node_taints(node: Obj) -> tuple[Taint, ...]:
    """The node's taints plus those its state implies for scheduling, as the scheduler reads them: a
    cordon is the unschedulable taint, a Ready condition False/Unknown the not-ready/unreachable one."""
    taints = taints_of(node)
    implied: list[Taint] = []
    if (node.get("spec") or {}).get("unschedulable"):
        implied.append(Taint(UNSCHEDULABLE, "", NO_SCHEDULE))
    for cond in (node.get("status") or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == "Ready" and cond.get("status") != "True":
            implied.append(Taint(NOT_READY if cond.get("status") == "False" else UNREACHABLE, "", NO_SCHEDULE))
    return (*taints, *implied) if implied else taints


def node_fit(facts: DaemonFacts, node: Obj) -> NodeFit:
    """Kubernetes' ``NodeShouldRunDaemonPod`` (see the module docstring)."""
    name = name_of(node)
    if facts.node_name and facts.node_name != name:
        return _NOTHING
    if not node_matches(facts.node_selector, facts.required_terms, labels_of(node), name):
        return _NOTHING
    taints = node_taints(node)
    if not taints or find_untolerated_taint(facts.tolerations, taints, _FILTERED) is None:
        return _RUN
    if find_untolerated_taint(facts.tolerations, taints, _EVICTING) is None:
        return _CONTINUE_ONLY
    return _NOTHING


# -- pods ---------------------------------------------------------------------------------------------
def created_at(pod: Obj) -> float:
    return parse_time(meta(pod).get("creationTimestamp")) or 0.0


_PHASE_ORDER = {"Running": 0, "Pending": 1, "Unknown": 2}


def oldest_first(pods: list[Obj]) -> list[Obj]:
    """Kubernetes' ``podByCreationTimestampAndPhase``: older first; among equals, running first, then name."""
    return sorted(pods, key=lambda p: (created_at(p), _PHASE_ORDER.get(_phase(p), 3), name_of(p)))


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_updated(pod: Obj, hash_: str) -> bool:
    return labels_of(pod).get(HASH_LABEL) == hash_


def pods_by_node(pods: list[Obj]) -> dict[str, list[Obj]]:
    """Claimed pods grouped by the node they are bound or pinned to (Kubernetes' ``getNodesToDaemonPods``):
    a finished pod being deleted is left out, a pod naming no node is ignored."""
    grouped: dict[str, list[Obj]] = {}
    for pod in pods:
        if is_deleting(pod) and _phase(pod) in ("Succeeded", "Failed"):
            continue
        node = pinned_node(pod.get("spec"))
        if node is not None:
            grouped.setdefault(node, []).append(pod)
    return grouped


def daemon_pod(ds: Obj, node: str, hash_: str) -> Obj:
    """A new daemon pod for ``node``: the template with the hash label, the default daemon tolerations
    and required node affinity on the node's name; named ``<daemonset>-xxxxx``."""
    pod = pod_from_template(ds)
    pod["metadata"]["labels"][HASH_LABEL] = hash_
    spec = pod["spec"] = copy.deepcopy(pod["spec"])
    spec["tolerations"] = daemon_tolerations(spec)
    pin_to_node(spec, node)
    return pod


# -- planning -------------------------------------------------------------------------------------------
def fenceposts(facts: DaemonFacts, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) for ``desired`` nodes: percentages round up; both 0 means 1 unavailable."""
    if facts.strategy != ROLLING_UPDATE:
        return 0, 0
    surge = resolve_int_or_percent(facts.max_surge, desired, round_up=True)
    unavailable = resolve_int_or_percent(facts.max_unavailable, desired, round_up=True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


@dataclass
class _Pass:
    """What one pass accumulates: nodes to create on, pods to delete, failed-pod bookkeeping."""

    create: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    failed_nodes: list[str] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)


def _manage_node(facts: DaemonFacts, name: str, fit: NodeFit, pods: list[Obj], surge_allowed: bool,
                 now: float, backoff: Mapping[str, float], out: _Pass) -> None:
    """Kubernetes' ``podsShouldBeOnNode`` for one node."""
    if fit.should_run and not pods:
        out.create.append(name)
        return
    if not fit.should_continue:
        out.delete.extend(name_of(p) for p in pods if not is_deleting(p))
        return
    running: list[Obj] = []
    for pod in pods:
        if is_deleting(pod):
            continue
        phase = _phase(pod)
        if phase == "Failed":
            until = backoff.get(name, 0.0)
            if until > now:  # replaced recently: wait, so a pod the kubelet rejects does not hot-loop
                out.waits.append(until - now)
                continue
            out.failed_nodes.append(name)
            out.delete.append(name_of(pod))
        elif phase == "Succeeded":
            out.delete.append(name_of(pod))
        else:
            running.append(pod)
    if not surge_allowed:
        if len(running) > 1:
            out.delete.extend(name_of(p) for p in oldest_first(running)[1:])
        return
    if len(running) <= 1:
        if not running and fit.should_run:
            out.create.append(name)
        return
    oldest_new: Obj | None = None
    oldest_old: Obj | None = None
    for pod in oldest_first(running):
        if is_updated(pod, facts.hash):
            if oldest_new is None:
                oldest_new = pod
                continue
        elif oldest_old is None:
            oldest_old = pod
            continue
        out.delete.append(name_of(pod))
    if oldest_new is not None and oldest_old is not None and (
            not pod_is_ready(oldest_old) or is_available(oldest_new, facts.min_ready_seconds, now)):
        out.delete.append(name_of(oldest_old))


def _updated_and_old(pods: list[Obj], hash_: str) -> tuple[Obj | None, Obj | None, bool]:
    """Kubernetes' ``findUpdatedPodsOnNode``: the node's live new and old pod; False when it has two of
    one kind (the manage pass cleans that node up first)."""
    new = old = None
    for pod in pods:
        if is_deleting(pod):
            continue
        if is_updated(pod, hash_):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def rolling_update(facts: DaemonFacts, eligible: Mapping[str, NodeFit], by_node: dict[str, list[Obj]],
                   now: float) -> tuple[list[str], list[str]]:
    """Kubernetes' ``rollingUpdate``: (old pods to delete, nodes to surge a new pod onto)."""
    desired = sum(1 for fit in eligible.values() if fit.should_run)
    surge, max_unavailable = fenceposts(facts, desired)
    nodes = sorted({*by_node, *(n for n, fit in eligible.items() if fit.should_run)})
    min_ready = facts.min_ready_seconds
    if surge == 0:
        unavailable = 0
        replace: list[str] = []
        candidates: list[str] = []
        for node in nodes:
            new, old, ok = _updated_and_old(by_node.get(node, []), facts.hash)
            if not ok or (new is None) == (old is None):
                unavailable += 1  # the manage pass creates or deletes here first
            elif new is not None:
                if not is_available(new, min_ready, now):
                    unavailable += 1
            elif old is not None:
                if not is_available(old, min_ready, now):
                    replace.append(name_of(old))  # unavailable anyway: replacing it costs nothing
                elif unavailable < max_unavailable:
                    candidates.append(name_of(old))
        room = min(max(max_unavailable - unavailable, 0), len(candidates))
        return [*replace, *candidates[:room]], []
    surging = 0
    allowed: list[str] = []
    candidate_nodes: list[str] = []
    delete: list[str] = []
    for node in nodes:
        new, old, ok = _updated_and_old(by_node.get(node, []), facts.hash)
        if not ok:
            surging += 1  # the manage pass cleans this node up first; count it as surging meanwhile
            continue
        if old is None:
            continue
        fit = eligible.get(node)
        if new is None:
            if fit is None or not fit.should_run:
                continue  # never surge onto a node that cannot run the pod
            if not is_available(old, min_ready, now):
                allowed.append(node)
            elif surging < surge:
                candidate_nodes.append(node)
        elif not is_available(new, min_ready, now):
            surging += 1  # waiting for the new pod to become available
        else:
            delete.append(name_of(old))
    room = min(max(surge - surging, 0), len(candidate_nodes))
    return delete, [*allowed, *candidate_nodes[:room]]


def eligibility_of(facts: DaemonFacts) -> tuple[object, ...]:
    """What of a DaemonSet decides which nodes fit it: a node's fit is recomputed when this changes."""
    return facts.node_name, facts.node_selector, facts.required_terms, facts.tolerations


def owned_by_node(ds: Obj, pods: list[Obj]) -> tuple[dict[str, list[Obj]], list[Obj]]:
    """``ds``'s pods (by controller reference) grouped by the node they are bound or pinned to (``""``:
    none), and the orphans (no controller) among ``pods``: what ``DaemonPodIndex`` keeps by handlers."""
    uid = uid_of(ds)
    owned: dict[str, list[Obj]] = {}
    orphans: list[Obj] = []
    for pod in pods:
        controller = controller_of(pod)
        if controller is None:
            orphans.append(pod)
        elif controller.get("uid") == uid:
            owned.setdefault(pinned_node(pod.get("spec")) or "", []).append(pod)
    return owned, orphans


def plan(ds: Obj, nodes: list[Obj], pods: list[Obj], now: float, *, expectations_satisfied: bool = True,
         backoff: Mapping[str, float] | None = None, burst: int = BURST_REPLICAS) -> Plan:
    """Decide one pass for ``ds`` over every node and the pods of its namespace, all evaluated afresh: the
    reference the controller's cached eligibility and pod index must agree with (``plan_pass``)."""
    facts = daemon_facts(ds)
    owned, orphans = owned_by_node(ds, pods)
    return plan_pass(ds, facts, {name_of(n): node_fit(facts, n) for n in nodes}, owned, orphans, now,
                     expectations_satisfied=expectations_satisfied, backoff=backoff, burst=burst)


def claim_by_node(ds: Obj, selector: Selector, owned: Mapping[str, list[Obj]], orphans: list[Obj]
                  ) -> tuple[list[AdoptPod | ReleasePod], dict[str, list[Obj]]]:
    """``claim_plan`` over the DaemonSet's pods by node (all controlled by it) and the orphans: the adoptions
    and releases, and the pods kept by node as ``pods_by_node`` groups them (a finished pod being deleted
    left out, a pod naming no node ignored). Costs the DaemonSet's own pods, not its namespace's."""
    keep_all = is_deleting(ds)  # its pods belong to the garbage collector then: none is released
    release: list[Obj] = []
    by_node: dict[str, list[Obj]] = {}
    for node, pods in owned.items():
        kept: list[Obj] = []
        for pod in pods:
            if not keep_all and not selector.matches(labels_of(pod)):
                release.append(pod)
            elif not (is_deleting(pod) and _phase(pod) in ("Succeeded", "Failed")):
                kept.append(pod)
        if node and kept:
            by_node[node] = kept
    adopt: list[Obj] = []
    if orphans:
        adopted = claim_plan(ds, selector, orphans)
        adopt = adopted.adopt
        for node, pods in pods_by_node(adopted.kept).items():
            by_node[node] = [*by_node.get(node, ()), *pods]
    return claim_actions(ClaimPlan(adopt=adopt, release=release)), by_node


def plan_pass(ds: Obj, facts: DaemonFacts, eligible: Mapping[str, NodeFit], owned: Mapping[str, list[Obj]],
              orphans: list[Obj], now: float, *, expectations_satisfied: bool = True,
              backoff: Mapping[str, float] | None = None, burst: int = BURST_REPLICAS) -> Plan:
    """Decide one pass for ``ds`` from its nodes' fit (``node_fit`` of every node, by name), its pods by
    node (``owned_by_node``) and its namespace's orphans.

    ``backoff`` maps a node to the time before which its failed pod is not replaced again. Creations and
    deletions happen only when the DaemonSet is not being deleted and earlier ones have all been
    observed (``expectations_satisfied``); the rolling update only in a pass where the manage step has
    nothing to do (Kubernetes runs it after manage, under the expectations manage just raised)."""
    claim, by_node = claim_by_node(ds, facts.selector, owned, orphans)
    result = Plan(actions=[*claim])
    if expectations_satisfied and not is_deleting(ds):
        surge, _ = fenceposts(facts, sum(1 for f in eligible.values() if f.should_run))
        work = _Pass()
        for name, fit in eligible.items():
            _manage_node(facts, name, fit, by_node.get(name, []), surge > 0, now, backoff or {}, work)
        for node, node_pods in by_node.items():
            if node not in eligible:  # pinned to a node that is gone
                work.delete.extend(name_of(p) for p in node_pods if not is_deleting(p))
        if not work.create and not work.delete and facts.strategy == ROLLING_UPDATE:
            work.delete, work.create = rolling_update(facts, eligible, by_node, now)
        if work.create:
            result.actions.append(CreatePods(tuple(work.create[:burst])))
        if work.delete:
            result.actions.append(DeletePods(tuple(work.delete[:burst])))
        result.failed_nodes = work.failed_nodes
        if work.waits:
            result.requeue_after = min(work.waits) + 0.05
    result.status = compute_status(ds, eligible, by_node, facts, now)
    wait = _next_available(by_node, facts.min_ready_seconds, now)
    if wait is not None:
        result.requeue_after = wait if result.requeue_after is None else min(result.requeue_after, wait)
    return result


def _next_available(by_node: dict[str, list[Obj]], min_ready: int, now: float) -> float | None:
    if min_ready <= 0:
        return None
    waits = [since + min_ready - now for pods in by_node.values() for p in pods
             if (since := ready_since(p)) is not None and since + min_ready > now]
    return max(0.1, min(waits)) + 0.05 if waits else None


def compute_status(ds: Obj, eligible: Mapping[str, NodeFit], by_node: dict[str, list[Obj]], facts: DaemonFacts,
                   now: float) -> Obj:
    """Kubernetes' ``updateDaemonSetStatus``: each node that should run a pod counts its oldest pod."""
    desired = current = ready = available = updated = misscheduled = 0
    for name, fit in eligible.items():
        pods = by_node.get(name)
        if not fit.should_run:
            if pods:
                misscheduled += 1
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = pods[0] if len(pods) == 1 else oldest_first(pods)[0]
        if pod_is_ready(pod):
            ready += 1
            if is_available(pod, facts.min_ready_seconds, now):
                available += 1
        if is_updated(pod, facts.hash):
            updated += 1
    return {
        "desiredNumberScheduled": desired, "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled, "numberReady": ready, "updatedNumberScheduled": updated,
        "numberAvailable": available, "numberUnavailable": desired - available,
        "observedGeneration": int(meta(ds).get("generation") or 0),
    }


def status_changed(previous: Obj, status: Obj) -> bool:
    return any(previous.get(k) != v for k, v in status.items())
