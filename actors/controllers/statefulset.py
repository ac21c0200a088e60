"""The StatefulSet controller: ordinal pods ``<set>-<i>``, each with its claims, created and replaced in order.

Watch handlers only enqueue StatefulSet keys (``namespace/name``): a set's own changes, its pods' changes
(by controller reference, or by selector for orphans), its ControllerRevisions coming and going.
``reconcile`` asks ``statefulset_plan.plan`` what to do and does it:

- adoption/release through ``controllerref.ControllerRefManager``;
- claims (``volumeClaimTemplates``) created before their pod -- only when the server serves the
  PersistentVolumeClaim kind (``CLAIMS_SUPPORTED``; without it the pods are made without claims' objects);
  an existing claim is kept, so a re-created pod mounts the claim its predecessor had;
- pod creations (Parallel: in slow-start batches, each pod after its claims) and deletions, with
  expectations (``expectations.Expectations``) blocking further ones
  until the cache has seen the earlier ones, so a stale cache never makes a pod twice or skips the order;
- the history: a ControllerRevision per template (``daemonset_history.history_plan``, named ``<set>-<hash>``
  as Kubernetes names them), whose templates re-create pods below the partition at the old revision;
- the status when it changed.
"""

from __future__ import annotations

import contextlib
import time

from actors.controllers.base import ControllerContext
from actors.controllers.daemonset_history import history_plan, owned_revisions
from actors.controllers.daemonset_plan import HASH_LABEL
from actors.controllers.history_writes import write_history
from actors.controllers.manager import register
from actors.controllers.podcontrol import create_in_batches
from actors.controllers.podowner import PodOwnerController
from actors.controllers.replication_index import NamespaceIndex
from actors.controllers.statefulset_plan import (
    CreateClaims,
    CreatePod,
    DeleteClaims,
    DeletePod,
    plan,
    status_changed,
    update_revision,
)
from protocol.errors import AlreadyExists, NotFound, ShoalError
from protocol.kinds import KINDS
from protocol.objects import (
    Obj,
    controller_of,
    is_deleting,
    labels_of,
    name_of,
    namespace_of,
    ref,
    split_ref,
    uid_of,
)
from runtime.informer import Informer

KIND = "StatefulSet"
CLAIM_KIND = "PersistentVolumeClaim"
CLAIMS_SUPPORTED = any(info.kind == CLAIM_KIND for info in KINDS)
"""Whether the server serves claims (the same registry as the API actor's): without, none are made."""


class StatefulSetError(ShoalError):
    """Some of a pass's writes failed; the set is retried with back-off."""

    retryable = True


class StatefulSetController(PodOwnerController):
    name = "statefulset"

    def __init__(self, *, workers: int = 2) -> None:
        super().__init__(KIND, workers=workers)
        self.revision_index = NamespaceIndex()
        self.claim_index = NamespaceIndex()

    # -- wiring -------------------------------------------------------------------------------
    def setup(self, ctx: ControllerContext) -> None:
        self.bind(ctx)
        self.pods: Informer = ctx.informers.informer("Pod")
        self.sets = self.watch_primary(KIND)
        self.revisions: Informer = ctx.informers.informer("ControllerRevision")
        self.revisions.add_handler(self.revision_index.handle)
        self.revisions.add_handler(self._on_revision)
        self.pods.add_handler(self.pod_index.handle)
        self.pods.add_handler(self._on_pod)
        self.sets.add_handler(self.owner_index.handle)
        self.sets.add_handler(self.on_primary)
        if CLAIMS_SUPPORTED:
            self.claims: Informer = ctx.informers.informer(CLAIM_KIND)
            self.claims.add_handler(self.claim_index.handle)

    # -- handlers: only enqueue keys and count observations -------------------------------------
    def _on_revision(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is not None and event != "MODIFIED" and (key := self.owner_key(obj)) is not None:
            self.queue.add(key)

    def _on_pod(self, event: str, old: Obj | None, new: Obj | None) -> None:
        """The set's own reading of a pod change, not ``PodOwnerController.on_pod``'s: a pod seen first while
        being deleted also counts as an observed creation, and a deleted orphan still concerns the sets whose
        selector matches it."""
        pod = new if new is not None else old
        if pod is None:
            return
        owner_key = self.owner_key(pod)
        going = event == "DELETED" or (is_deleting(pod) and (old is None or not is_deleting(old)))
        if going and owner_key is not None:
            self.expectations.deletion_observed(owner_key, ref(pod))
        if event == "ADDED" and owner_key is not None:
            self.expectations.creation_observed(owner_key)
        keys: set[str] = set()
        if owner_key is not None:
            keys.add(owner_key)
        elif controller_of(pod) is None:
            keys.update(self.matching(pod))
        changed = old is not None and (labels_of(old) != labels_of(pod) or controller_of(old) != controller_of(pod))
        if changed and old is not None and (old_key := self.owner_key(old)) is not None:
            keys.add(old_key)
        for key in keys:
            self.queue.add(key)

    # -- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        sts = self.sets.get(key)
        if sts is None:
            self.forget(key)
            return None
        namespace, _ = split_ref(key)
        revisions = owned_revisions(sts, self.revision_index.in_namespace(namespace))
        if not is_deleting(sts):
            try:
                await self._keep_history(sts, namespace, revisions)
            except ShoalError as exc:  # the history can wait for the next pass; the pods cannot
                self.log.info("statefulset history not written", statefulset=key, error=str(exc))
        templates = {name_of(r): ((r.get("data") or {}).get("spec") or {}).get("template") or {} for r in revisions}
        claims = {name_of(c) for c in self.claim_index.in_namespace(namespace)} if CLAIMS_SUPPORTED else None
        result = plan(sts, self.pod_index.in_namespace(namespace), claims, templates, time.time(),
                      expectations_satisfied=self.expectations.satisfied(key))
        errors: list[str] = []
        await self.claim_pods(sts, list(result.actions))
        creations: list[tuple[CreateClaims | None, CreatePod]] = []
        claims_first: CreateClaims | None = None
        for action in result.actions:
            if isinstance(action, CreateClaims):
                claims_first = action
            elif isinstance(action, CreatePod):
                creations.append((claims_first, action))
                claims_first = None
            else:
                try:
                    await self._act(sts, key, action)
                except ShoalError as exc:
                    errors.append(str(exc))
        if (error := await self._create_all(sts, key, creations)) is not None:
            errors.append(error)
        if status_changed(sts.get("status") or {}, result.status):
            with contextlib.suppress(NotFound):
                await self.client.patch(KIND, name_of(sts), {"status": result.status}, namespace, status=True)
        if errors:
            raise StatefulSetError(f"{KIND} {key}: " + "; ".join(errors[:3]))
        return result.requeue_after

    async def _create_all(self, sts: Obj, key: str, creations: list[tuple[CreateClaims | None, CreatePod]]
                          ) -> str | None:
        """Each pod after its claims; several pods (Parallel) in slow-start batches (1, 2, 4...), stopping
        at the first failing batch, as Kubernetes' StatefulSet controller creates them since 1.28."""
        _, failures = await create_in_batches(creations, lambda c: self._create_with_claims(sts, key, *c))
        for failure in failures:
            if not isinstance(failure, ShoalError):
                raise failure
        return str(failures[0]) if failures else None

    async def _create_with_claims(self, sts: Obj, key: str, claims: CreateClaims | None, pod: CreatePod) -> None:
        if claims is not None:
            await self._act(sts, key, claims)
        await self._create_pod(sts, key, pod.pod)

    async def _act(self, sts: Obj, key: str, action: object) -> None:
        namespace = namespace_of(sts)
        if isinstance(action, CreateClaims):
            for claim in action.claims:
                try:
                    await self.client.create(claim)
                except AlreadyExists:
                    continue  # made by an earlier pass the cache has not seen yet: it is the pod's claim
                except ShoalError as exc:
                    await self.ctx.recorder.record(sts, "Warning", "FailedCreate",
                                                   f"create Claim {name_of(claim)} for Pod in StatefulSet "
                                                   f"{name_of(sts)} failed error: {exc}")
                    raise
                await self.ctx.recorder.record(sts, "Normal", "SuccessfulCreate",
                                               f"create Claim {name_of(claim)} Pod in StatefulSet "
                                               f"{name_of(sts)} success")
        elif isinstance(action, CreatePod):
            await self._create_pod(sts, key, action.pod)
        elif isinstance(action, DeletePod):
            await self._delete_pod(sts, key, action.name)
        elif isinstance(action, DeleteClaims):
            for name in action.names:
                with contextlib.suppress(NotFound):
                    await self.client.delete(CLAIM_KIND, name, namespace)

    async def _create_pod(self, sts: Obj, key: str, pod: Obj) -> None:
        name = name_of(pod)
        self.expectations.expect_creations(key, 1)
        try:
            await self.client.create(pod)
        except ShoalError as exc:
            self.expectations.creation_observed(key)  # it will never be seen
            if isinstance(exc, AlreadyExists):
                return  # a pod of that name exists (our earlier one, or one still terminating): wait
            await self.ctx.recorder.record(sts, "Warning", "FailedCreate",
                                           f"create Pod {name} in StatefulSet {name_of(sts)} failed error: {exc}")
            raise
        await self.ctx.recorder.record(sts, "Normal", "SuccessfulCreate",
                                       f"create Pod {name} in StatefulSet {name_of(sts)} successful")

    async def _delete_pod(self, sts: Obj, key: str, name: str) -> None:
        pod_key = f"{namespace_of(sts)}/{name}"
        self.expectations.expect_deletions(key, [pod_key])
        try:
            await self.client.delete("Pod", name, namespace_of(sts))
        except ShoalError as exc:
            self.expectations.deletion_observed(key, pod_key)
            if isinstance(exc, NotFound):
                return
            await self.ctx.recorder.record(sts, "Warning", "FailedDelete",
                                           f"delete Pod {name} in StatefulSet {name_of(sts)} failed error: {exc}")
            raise
        await self.ctx.recorder.record(sts, "Normal", "SuccessfulDelete",
                                       f"delete Pod {name} in StatefulSet {name_of(sts)} successful")

    async def _keep_history(self, sts: Obj, namespace: str | None, revisions: list[Obj]) -> None:
        """The current template's ControllerRevision, its number, the pruning (``history_plan``)."""
        prefix = f"{name_of(sts)}-"
        live = [{"metadata": {"labels": {HASH_LABEL: labels_of(p).get(HASH_LABEL, "").removeprefix(prefix)}}}
                for p in self.pod_index.in_namespace(namespace)
                if (controller_of(p) or {}).get("uid") == uid_of(sts) and not is_deleting(p)]
        history = history_plan(sts, revisions, live, update_revision(sts).removeprefix(prefix))
        await write_history(self.client, history, namespace)


register("statefulset", StatefulSetController)
