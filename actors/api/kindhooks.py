"""The API actor's per-kind hooks that need I/O, keyed by kind (the pure rest of a kind is its strategy in
``protocol.kinds``): a Service's cluster IP and node ports are reserved in the datastore, a token Secret
is signed with the cluster's key; Events are stored in the event stream, not the datastore. Admission plugins that read
other objects are create hooks too: a Pod naming a ServiceAccount that does not exist is refused (the
ServiceAccount plugin), a PersistentVolumeClaim naming no class gets the default StorageClass (the
DefaultStorageClass plugin). A kind without an entry has no such hooks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from actors.api import tokens
from actors.api.allocator import ServiceAllocator
from actors.api.cache import WatchCache
from actors.api.defaults import random_suffix
from protocol import codec, podidentity
from protocol.errors import Forbidden, Invalid, Unavailable
from protocol.kinds import KindInfo, by_kind
from protocol.kinds.storage import is_default_class
from protocol.objects import Obj, meta, name_of, namespace_of
from protocol.selectors import parse_field_selector, parse_label_selector


class HookHost(Protocol):
    """What hooks may use of the API service."""

    allocator: ServiceAllocator
    token_keys: tokens.TokenKeys | None
    cache: WatchCache

    async def get(self, info: KindInfo, namespace: str | None, name: str) -> Obj: ...

    async def lookup(self, info: KindInfo, namespace: str | None, name: str) -> Obj | None: ...

    async def caught_up(self) -> None: ...


ObjectHook = Callable[[HookHost, Obj], Awaitable[None]]


@dataclass(frozen=True)
class KindHooks:
    prepare_create: ObjectHook | None = None
    """Last step before a create is written, its name chosen (may change the object, raise)."""
    reserve: ObjectHook | None = None
    """Take what the object holds apart from its key (addresses); given back by ``release``."""
    release: ObjectHook | None = None
    """Give back what ``reserve`` took: when a create fails, and when the object is finally deleted."""
    stream_stored: bool = False
    """Stored in the event stream (``SHOAL_EVENTS``, ``events_store.py``) instead of the datastore."""


async def _sign_token(host: HookHost, secret: Obj) -> None:
    """Sign a service-account token into a new token Secret: the key never leaves the API actors."""
    if not tokens.is_token_secret(secret):
        return
    if host.token_keys is None:
        raise Unavailable("this API actor has no signing key yet; retry")
    sa_name = (meta(secret).get("annotations") or {}).get(tokens.SA_NAME_ANNOTATION)
    if not sa_name:
        raise Invalid(f"a token secret needs the {tokens.SA_NAME_ANNOTATION} annotation",
                      {"causes": [{"field": "metadata.annotations", "message": "Required value"}]})
    account = await host.get(by_kind("ServiceAccount"), meta(secret).get("namespace"), str(sa_name))
    signed = tokens.fill_token_secret(secret, str(meta(account).get("uid")), host.token_keys.sign)
    secret.clear()
    secret.update(signed)


async def _allocate(host: HookHost, service: Obj) -> None:
    await host.allocator.allocate(service)


async def _release(host: HookHost, service: Obj) -> None:
    await host.allocator.release(service)


DEFAULT_ACCOUNT_ATTEMPTS = 10
"""The ``default`` ServiceAccount is looked up this many times, 0.1 s apart, before a pod naming it is refused:
the serviceaccount controller creates it just after its namespace (Kubernetes' plugin retries the same way)."""


async def _admit_service_account(host: HookHost, pod: Obj) -> None:
    """Kubernetes' ServiceAccount admission: the pod runs as its account (``default`` when it names none) and
    gets the projected token volume unless automounting is off (``protocol.podidentity``).

    An account the pod names must exist: ``default`` is looked up for about a second (the serviceaccount
    controller creates it just after its namespace, and Kubernetes' plugin waits the same way), any other
    once; missing, the pod is refused. A pod naming no account in a namespace whose ``default`` account does
    not exist (no serviceaccount controller, e.g. a bare API in tests) is admitted without the volume."""
    spec = pod.setdefault("spec", {})
    named = spec.get("serviceAccountName") or spec.get("serviceAccount")
    name = podidentity.account_name(pod)
    spec["serviceAccountName"] = name
    namespace = namespace_of(pod)
    accounts = by_kind("ServiceAccount")
    attempts = DEFAULT_ACCOUNT_ATTEMPTS if named == podidentity.DEFAULT_ACCOUNT else 1
    account = None
    for attempt in range(attempts):
        account = await host.lookup(accounts, namespace, name)
        if account is not None or attempt + 1 == attempts:
            break
        await asyncio.sleep(0.1)
    if account is None:
        if named:
            raise Forbidden(f'pods "{name_of(pod) or meta(pod).get("generateName") or ""}" is forbidden: error '
                            f'looking up service account {namespace}/{name}: serviceaccount "{name}" not found',
                            {"kind": "ServiceAccount", "name": name, "namespace": namespace})
        return
    if podidentity.automount(pod, account):
        podidentity.add_token_volume(pod, random_suffix(5))


async def _default_storage_class(host: HookHost, claim: Obj) -> None:
    """Kubernetes' DefaultStorageClass admission: a claim naming no class (absent, not "") gets the default
    one, the newest when several are marked default; none when there is no default class."""
    spec = claim.get("spec")
    if not isinstance(spec, dict) or spec.get("storageClassName") is not None:
        return
    defaults: list[tuple[str, str]] = []
    await host.caught_up()  # a class made default just before this claim counts
    for entry in host.cache.select("storageclasses", None, parse_label_selector(None), parse_field_selector(None)):
        sc = codec.unpackb(entry.raw) if entry.raw else {}
        if isinstance(sc, dict) and is_default_class(sc):
            defaults.append((str(meta(sc).get("creationTimestamp") or ""), name_of(sc)))
    if defaults:
        spec["storageClassName"] = max(defaults)[1]


HOOKS: dict[str, KindHooks] = {
    "Pod": KindHooks(prepare_create=_admit_service_account),
    "PersistentVolumeClaim": KindHooks(prepare_create=_default_storage_class),
    "Secret": KindHooks(prepare_create=_sign_token),
    "Service": KindHooks(reserve=_allocate, release=_release),
    "Event": KindHooks(stream_stored=True),
}
NO_HOOKS = KindHooks()


def hooks_for(info: KindInfo) -> KindHooks:
    return HOOKS.get(info.kind, NO_HOOKS)
