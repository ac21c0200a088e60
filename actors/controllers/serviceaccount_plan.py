"""Pure decisions of the serviceaccount controller: every active namespace has a ``default``
ServiceAccount with a token Secret listed in its ``secrets``.

The token Secret is created without ``data.token``: the API actor, which alone holds the signing key,
fills it in on create (``actors/api/tokens.py``). The annotation and type names below are the wire
contract shared with it (they belong in ``protocol`` once that package grows them).
"""

from __future__ import annotations

import secrets as _random
from dataclasses import dataclass

from protocol.objects import Obj, is_deleting, meta, name_of, namespace_of, owner_reference, uid_of

DEFAULT = "default"
TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True, slots=True)
class CreateServiceAccount:
    account: Obj


@dataclass(frozen=True, slots=True)
class CreateTokenSecret:
    secret: Obj


@dataclass(frozen=True, slots=True)
class DeleteSecret:
    name: str


@dataclass(frozen=True, slots=True)
class SetSecrets:
    account: Obj
    """The ServiceAccount with its new ``secrets`` list."""


Action = CreateServiceAccount | CreateTokenSecret | DeleteSecret | SetSecrets


def random_suffix(n: int = 5) -> str:
    return "".join(_random.choice(_SUFFIX_ALPHABET) for _ in range(n))


def namespace_active(namespace: Obj | None) -> bool:
    return (namespace is not None and not is_deleting(namespace)
            and (namespace.get("status") or {}).get("phase", "Active") == "Active")


def service_account(namespace: str, name: str = DEFAULT) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}


def token_secret(account: Obj, suffix: str) -> Obj:
    """A token Secret for ``account`` (``data.token`` is the API actor's to fill)."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": TOKEN_TYPE,
        "metadata": {
            "name": f"{name_of(account)}-token-{suffix}", "namespace": namespace_of(account),
            "annotations": {SA_NAME_ANNOTATION: name_of(account), SA_UID_ANNOTATION: uid_of(account)},
            "ownerReferences": [owner_reference(account, controller=False, block=False)],
        },
    }


def names_account(secret: Obj, account_name: str) -> bool:
    return (secret.get("type") == TOKEN_TYPE
            and (meta(secret).get("annotations") or {}).get(SA_NAME_ANNOTATION) == account_name)


def tokens_of(account: Obj, secrets: list[Obj]) -> list[Obj]:
    """The live token Secrets of this very account (uid annotation matching), oldest name first."""
    uid = uid_of(account)
    found = [s for s in secrets if names_account(s, name_of(account)) and not is_deleting(s)
             and (meta(s).get("annotations") or {}).get(SA_UID_ANNOTATION) == uid]
    return sorted(found, key=name_of)


def plan(namespace: Obj | None, account: Obj | None, secrets: list[Obj], *, suffix: str,
         expectations_satisfied: bool = True) -> list[Action]:
    """One pass for the namespace's ``default`` account, given the Secrets of the namespace."""
    if not namespace_active(namespace) or not expectations_satisfied:
        return []
    assert namespace is not None
    if account is None:
        return [CreateServiceAccount(service_account(name_of(namespace)))]
    if is_deleting(account):
        return []
    actions: list[Action] = [DeleteSecret(name_of(s)) for s in secrets
                             if names_account(s, name_of(account)) and not is_deleting(s)
                             and (meta(s).get("annotations") or {}).get(SA_UID_ANNOTATION) != uid_of(account)]
    tokens = tokens_of(account, secrets)
    if not tokens:
        actions.append(CreateTokenSecret(token_secret(account, suffix)))
        return actions
    token_names = {name_of(t) for t in tokens}
    by_name = {name_of(s): s for s in secrets}
    refs = [r for r in account.get("secrets") or [] if isinstance(r, dict)]
    kept = [r for r in refs if _keep_ref(r, account, token_names, by_name)]
    if not any(r.get("name") in token_names for r in kept):
        kept.append({"name": name_of(tokens[0])})
    if kept != refs:
        updated = {**account, "secrets": kept}
        actions.append(SetSecrets(updated))
    return actions


def _keep_ref(ref: Obj, account: Obj, token_names: set[str], by_name: dict[str, Obj]) -> bool:
    """Keep references to our live tokens and to Secrets that are not tokens of this account;
    drop references to our tokens that are gone (or belong to an earlier account of that name)."""
    name = str(ref.get("name") or "")
    if name in token_names:
        return True
    secret = by_name.get(name)
    if secret is None:
        return not name.startswith(f"{name_of(account)}-token-")
    return not names_account(secret, name_of(account))
