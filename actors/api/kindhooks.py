"""The API actor's per-kind hooks that need I/O, keyed by kind (the pure rest of a kind is its strategy in
``protocol.kinds``): a Service's cluster IP and node ports are reserved in the datastore, a token Secret
is signed with the cluster's key; Events are published to the event stream. A kind without an entry has
no such hooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from actors.api import tokens
from actors.api.allocator import ServiceAllocator
from actors.api.defaults import random_suffix
from protocol import podidentity
from protocol.errors import Forbidden, Invalid, Unavailable
from protocol.kinds import KindInfo, by_kind
from protocol.objects import Obj, meta, namespace_of


class HookHost(Protocol):
    """What hooks may use of the API service."""

    allocator: ServiceAllocator
    signing_key: bytes | None

    async def get(self, info: KindInfo, namespace: str | None, name: str) -> Obj: ...

    async def lookup(self, info: KindInfo, namespace: str | None, name: str) -> Obj | None: ...


ObjectHook = Callable[[HookHost, Obj], Awaitable[None]]


@dataclass(frozen=True)
class KindHooks:
    prepare_create: ObjectHook | None = None
    """Last step before a create is written, its name chosen (may change the object, raise)."""
    reserve: ObjectHook | None = None
    """Take what the object holds apart from its key (addresses); given back by ``release``."""
    release: ObjectHook | None = None
    """Give back what ``reserve`` took: when a create fails, and when the object is finally deleted."""
    streamed: bool = False
    """Created and modified objects are also published to the event stream (``SHOAL_EVENTS``)."""


async def _sign_token(host: HookHost, secret: Obj) -> None:
    """Sign a service-account token into a new token Secret: the key never leaves the API actors."""
    if not tokens.is_token_secret(secret):
        return
    if host.signing_key is None:
        raise Unavailable("this API actor has no signing key yet; retry")
    sa_name = (meta(secret).get("annotations") or {}).get(tokens.SA_NAME_ANNOTATION)
    if not sa_name:
        raise Invalid(f"a token secret needs the {tokens.SA_NAME_ANNOTATION} annotation",
                      {"causes": [{"field": "metadata.annotations", "message": "Required value"}]})
    account = await host.get(by_kind("ServiceAccount"), meta(secret).get("namespace"), str(sa_name))
    signed = tokens.fill_token_secret(secret, str(meta(account).get("uid")), host.signing_key)
    secret.clear()
    secret.update(signed)


async def _admit_service_account(host: HookHost, pod: Obj) -> None:
    """Kubernetes' ServiceAccount admission: the pod runs as its account (refused when a named account does
    not exist) and gets the projected token volume unless automounting is off (``protocol.podidentity``).

    A namespace whose ``default`` account is not made yet (no serviceaccount controller running, e.g. a bare
    API in tests) admits pods without the volume instead of refusing them."""
    name = podidentity.account_name(pod)
    pod.setdefault("spec", {})["serviceAccountName"] = name
    account = await host.lookup(by_kind("ServiceAccount"), namespace_of(pod), name)
    if account is None:
        if name != podidentity.DEFAULT_ACCOUNT:
            raise Forbidden(f'error looking up service account {namespace_of(pod)}/{name}: serviceaccount "{name}" '
                            "not found", {"kind": "ServiceAccount", "name": name, "namespace": namespace_of(pod)})
        return
    if podidentity.automount(pod, account):
        podidentity.add_token_volume(pod, random_suffix(5))


async def _allocate(host: HookHost, service: Obj) -> None:
    await host.allocator.allocate(service)


async def _release(host: HookHost, service: Obj) -> None:
    await host.allocator.release(service)


HOOKS: dict[str, KindHooks] = {
    "Secret": KindHooks(prepare_create=_sign_token),
    "Pod": KindHooks(prepare_create=_admit_service_account),
    "Service": KindHooks(reserve=_allocate, release=_release),
    "Event": KindHooks(streamed=True),
}
NO_HOOKS = KindHooks()


def hooks_for(info: KindInfo) -> KindHooks:
    return HOOKS.get(info.kind, NO_HOOKS)
