"""Which pods ``shoal drain`` evicts, skips or refuses: kubectl's drain filters (``k8s.io/kubectl/pkg/drain``), pure.

Each pod of the node goes through the filters in kubectl's order; the first that does not let it go
decides:

- **DaemonSet**: a pod controlled by a DaemonSet is never evicted (its controller would put it back at
  once, and it tolerates ``unschedulable``). With ``--ignore-daemonsets`` it is skipped with a warning;
  without it the drain is refused. A finished one may go. One whose DaemonSet is gone is an orphan: it
  goes with ``--force`` (warned), else refused.
- **mirror pods** (``kubernetes.io/config.mirror``, static pods): skipped silently, their kubelet owns them.
- **local storage**: a pod with an ``emptyDir`` volume loses its data; refused without
  ``--delete-emptydir-data`` (warned with it). A finished one may go.
- **unmanaged**: a pod with no controller is not re-created anywhere; refused without ``--force`` (warned
  with it). A finished one may go.

``classify(pods, options, daemonsets)`` returns a ``DrainPlan``: the pods to evict, and the warnings and
errors grouped by message as kubectl prints them (``cannot delete Pods that declare no controller (use
--force to override): default/a, default/b``). ``daemonsets`` says which DaemonSets exist, by
``(namespace, name)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from protocol.objects import Obj, controller_of, name_of, namespace_of, pod_is_terminal

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"

DAEMONSET_FATAL = "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "cannot delete Pods with local storage (use --delete-emptydir-data to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "cannot delete Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"
ORPHAN_DAEMON_FATAL = "cannot delete Pods whose DaemonSet is gone (use --force to override)"
ORPHAN_DAEMON_WARNING = "deleting Pods whose DaemonSet is gone"


@dataclass(frozen=True, slots=True)
class DrainOptions:
    ignore_daemonsets: bool = False
    delete_emptydir_data: bool = False
    force: bool = False


@dataclass
class DrainPlan:
    evict: list[Obj] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    """Message -> ``ns/name`` of the pods it concerns, in pod order."""
    errors: dict[str, list[str]] = field(default_factory=dict)

    def warning_text(self) -> str:
        """kubectl's one ``Warning:`` line: ``msg: ns/a, ns/b; msg2: ns/c``; empty when there are none."""
        return "; ".join(f"{msg}: {', '.join(pods)}" for msg, pods in self.warnings.items())

    def error_lines(self) -> list[str]:
        return [f"{msg}: {', '.join(pods)}" for msg, pods in self.errors.items()]


def _ref(pod: Obj) -> str:
    return f"{namespace_of(pod)}/{name_of(pod)}"


def _has_empty_dir(pod: Obj) -> bool:
    return any(isinstance(v, dict) and "emptyDir" in v for v in (pod.get("spec") or {}).get("volumes") or [])


def verdict(pod: Obj, options: DrainOptions, daemonsets: set[tuple[str, str]]) -> tuple[bool, str | None, str | None]:
    """(evict it, warning, error) for one pod; at most one of warning and error."""
    finished = pod_is_terminal(pod)
    warnings: list[str] = []
    owner = controller_of(pod)
    if owner is not None and owner.get("kind") == "DaemonSet" and not finished:
        if (namespace_of(pod) or "", str(owner.get("name"))) not in daemonsets:
            if not options.force:
                return False, None, ORPHAN_DAEMON_FATAL
            warnings.append(ORPHAN_DAEMON_WARNING)
        elif not options.ignore_daemonsets:
            return False, None, DAEMONSET_FATAL
        else:
            return False, DAEMONSET_WARNING, None
    if ((pod.get("metadata") or {}).get("annotations") or {}).get(MIRROR_ANNOTATION) is not None:
        return False, None, None
    if _has_empty_dir(pod) and not finished:
        if not options.delete_emptydir_data:
            return False, None, LOCAL_STORAGE_FATAL
        warnings.append(LOCAL_STORAGE_WARNING)
    if owner is None and not finished:
        if not options.force:
            return False, None, UNMANAGED_FATAL
        warnings.append(UNMANAGED_WARNING)
    return True, (warnings[-1] if warnings else None), None


def classify(pods: Iterable[Obj], options: DrainOptions, daemonsets: set[tuple[str, str]]) -> DrainPlan:
    plan = DrainPlan()
    for pod in pods:
        evict, warning, error = verdict(pod, options, daemonsets)
        if error is not None:
            plan.errors.setdefault(error, []).append(_ref(pod))
            continue
        if warning is not None:
            plan.warnings.setdefault(warning, []).append(_ref(pod))
        if evict:
            plan.evict.append(pod)
    return plan
