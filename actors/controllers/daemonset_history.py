"""A DaemonSet's history, pure: one ControllerRevision per pod template it rolled out, numbered, pruned.

Kubernetes' ``constructHistory`` and ``cleanupHistory`` (``pkg/controller/daemon/update.go``):

- the current template's revision is ``<daemonset>-<hash>`` (the ``controller-revision-hash`` its pods
  carry), ``data`` the template, ``revision`` one above the highest so far; created when missing;
- a template rolled out again (an undo, or an edit back) keeps its revision object, whose number is raised
  above every other, so the newest revision is always the one running;
- old revisions beyond ``revisionHistoryLimit`` (default 10) are deleted, lowest number first, except
  those a live pod still runs (its hash label names them).

The hash stays the template hash the pods are labelled with (``daemonset_plan.daemon_hash``), so a
revision and its pods always agree. ``history_writes.write_history`` sends the writes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from actors.controllers.daemonset_plan import HASH_LABEL
from protocol.objects import Obj, controller_of, labels_of, meta, name_of, owner_reference, uid_of

DEFAULT_HISTORY_LIMIT = 10
CHANGE_CAUSE = "kubernetes.io/change-cause"
"""Copied from the DaemonSet when a revision is made, as Kubernetes does: ``rollout history`` shows it."""


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    create: Obj | None = None
    """The current template's revision, when it has none yet."""
    bump: tuple[str, int] | None = None
    """(name, number): the current template's revision, renumbered above the others."""
    delete: tuple[str, ...] = ()
    """Old revisions beyond the history limit that no live pod runs."""


def revision_name(ds: Obj, hash_: str) -> str:
    return f"{name_of(ds)}-{hash_}"


def revision_number(revision: Obj) -> int:
    value = revision.get("revision")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def revision_object(ds: Obj, hash_: str, number: int) -> Obj:
    """The ControllerRevision of ``ds``'s current template."""
    template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels[HASH_LABEL] = hash_
    revision_meta: Obj = {"name": revision_name(ds, hash_), "namespace": meta(ds).get("namespace") or "default",
                          "labels": labels, "ownerReferences": [owner_reference(ds, controller=True, block=True)]}
    cause = (meta(ds).get("annotations") or {}).get(CHANGE_CAUSE)
    if cause:
        revision_meta["annotations"] = {CHANGE_CAUSE: cause}
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": revision_meta,
            "data": {"spec": {"template": template}}, "revision": number}


def owned_revisions(ds: Obj, revisions: list[Obj]) -> list[Obj]:
    return [r for r in revisions if (controller_of(r) or {}).get("uid") == uid_of(ds)]


def history_plan(ds: Obj, revisions: list[Obj], live_pods: list[Obj], hash_: str) -> HistoryPlan:
    """What to write so ``ds``'s history holds its current template and at most the limit of old ones."""
    owned = owned_revisions(ds, revisions)
    name = revision_name(ds, hash_)
    current = next((r for r in owned if name_of(r) == name), None)
    top = max((revision_number(r) for r in owned), default=0)
    create = bump = None
    if current is None:
        create = revision_object(ds, hash_, top + 1)
    elif revision_number(current) < top:
        bump = (name, top + 1)
    limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
    keep = DEFAULT_HISTORY_LIMIT if not isinstance(limit, int) else max(0, limit)
    old = sorted((r for r in owned if name_of(r) != name), key=lambda r: (revision_number(r), name_of(r)))
    excess = len(old) - keep
    live = {labels_of(p).get(HASH_LABEL) for p in live_pods}
    delete = []
    for revision in old:
        if excess <= 0:
            break
        if labels_of(revision).get(HASH_LABEL) in live:
            continue
        delete.append(name_of(revision))
        excess -= 1
    return HistoryPlan(create, bump, tuple(delete))
