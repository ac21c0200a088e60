"""The serviceaccount controller (with Kubernetes' token controller folded in): every active namespace
gets a ``default`` ServiceAccount, recreated if deleted, and a token Secret ``default-token-xxxxx``
listed in its ``secrets``; token Secrets of an earlier account of that name are deleted.

Keys are namespace names. Token Secret names are random, so creating twice would leave two Secrets:
expectations (per namespace) hold further creations until the informers have seen ours.
"""

from __future__ import annotations

import contextlib

from actors.controllers.base import ControllerContext
from actors.controllers.expectations import Expectations
from actors.controllers.manager import register
from actors.controllers.replication_index import NamespaceIndex
from actors.controllers.serviceaccount_plan import (
    DEFAULT,
    TOKEN_TYPE,
    CreateServiceAccount,
    CreateTokenSecret,
    DeleteSecret,
    SetSecrets,
    plan,
    random_suffix,
)
from protocol.errors import AlreadyExists, Forbidden, NotFound
from protocol.objects import Obj, name_of, namespace_of
from runtime.workqueue import WorkQueue, run_workers


class ServiceAccountController:
    name = "serviceaccount"

    def __init__(self) -> None:
        self.running = False
        self.queue = WorkQueue()
        self.expectations = Expectations(ttl=60.0)
        self.secrets_by_ns = NamespaceIndex()

    def setup(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.log = ctx.log.bind(controller=self.name)
        self.namespaces = ctx.informers.informer("Namespace")
        self.accounts = ctx.informers.informer("ServiceAccount")
        self.secrets = ctx.informers.informer("Secret")
        self.namespaces.add_handler(self._on_namespace)
        self.accounts.add_handler(self._on_account)
        self.secrets.add_handler(self.secrets_by_ns.handle)
        self.secrets.add_handler(self._on_secret)

    async def run(self) -> None:
        self.running = True
        await run_workers(self.queue, self.reconcile, workers=2, log=self.log)

    def _on_namespace(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None:
            return
        if event == "DELETED":
            self.expectations.forget(name_of(obj))
        else:
            self.queue.add(name_of(obj))

    def _on_account(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None or name_of(obj) != DEFAULT:
            return
        namespace = namespace_of(obj) or ""
        if event == "ADDED":
            self.expectations.creation_observed(namespace)
        self.queue.add(namespace)

    def _on_secret(self, event: str, old: Obj | None, new: Obj | None) -> None:
        obj = new if new is not None else old
        if obj is None or obj.get("type") != TOKEN_TYPE:
            return
        namespace = namespace_of(obj) or ""
        if event == "ADDED":
            self.expectations.creation_observed(namespace)
        self.queue.add(namespace)

    async def reconcile(self, key: str) -> float | None:
        account = self.accounts.get(f"{key}/{DEFAULT}")
        actions = plan(self.namespaces.get(key), account, self.secrets_by_ns.in_namespace(key),
                       suffix=random_suffix(), expectations_satisfied=self.expectations.satisfied(key))
        for action in actions:
            if isinstance(action, CreateServiceAccount | CreateTokenSecret):
                obj = action.account if isinstance(action, CreateServiceAccount) else action.secret
                self.expectations.expect_creations(key, 1)
                try:
                    await self.client.create(obj)
                except AlreadyExists:
                    self.expectations.creation_observed(key)  # already there: our cache will show it
                except (Forbidden, NotFound):
                    self.expectations.creation_observed(key)  # namespace terminating or gone
                    return None
                except Exception:
                    self.expectations.creation_observed(key)
                    raise
                self.log.info("created", kind=obj["kind"], namespace=key, name=name_of(obj))
            elif isinstance(action, DeleteSecret):
                with contextlib.suppress(NotFound):
                    await self.client.delete("Secret", action.name, key)
            elif isinstance(action, SetSecrets):
                await self.client.update(action.account)
        return None


register(ServiceAccountController.name, ServiceAccountController)
