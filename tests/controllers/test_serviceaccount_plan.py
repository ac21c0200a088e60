"""ServiceAccount decisions: a default account and its token Secret in every active namespace."""

from __future__ import annotations

from actors.controllers.serviceaccount_plan import (
    SA_NAME_ANNOTATION,
    SA_UID_ANNOTATION,
    TOKEN_TYPE,
    CreateServiceAccount,
    CreateTokenSecret,
    DeleteSecret,
    SetSecrets,
    plan,
)
from protocol.objects import Obj


def ns(phase: str = "Active", deleting: bool = False) -> Obj:
    m: Obj = {"name": "team"}
    if deleting:
        m["deletionTimestamp"] = "x"
    return {"kind": "Namespace", "metadata": m, "status": {"phase": phase}}


def account(uid: str = "sa1", secrets: list[Obj] | None = None) -> Obj:
    a: Obj = {"apiVersion": "v1", "kind": "ServiceAccount",
              "metadata": {"name": "default", "namespace": "team", "uid": uid, "resourceVersion": "3"}}
    if secrets is not None:
        a["secrets"] = secrets
    return a


def token(name: str, uid: str = "sa1") -> Obj:
    return {"kind": "Secret", "type": TOKEN_TYPE, "metadata": {
        "name": name, "namespace": "team", "annotations": {SA_NAME_ANNOTATION: "default", SA_UID_ANNOTATION: uid}}}


def test_creates_account_only_in_active_namespaces() -> None:
    [action] = plan(ns(), None, [], suffix="abcde")
    assert isinstance(action, CreateServiceAccount)
    assert action.account["metadata"] == {"name": "default", "namespace": "team"}
    assert plan(ns("Terminating", deleting=True), None, [], suffix="abcde") == []
    assert plan(None, None, [], suffix="abcde") == []
    assert plan(ns(), None, [], suffix="abcde", expectations_satisfied=False) == []


def test_creates_token_secret_then_lists_it() -> None:
    [action] = plan(ns(), account(), [], suffix="abcde")
    assert isinstance(action, CreateTokenSecret)
    s = action.secret
    assert s["type"] == TOKEN_TYPE and s["metadata"]["name"] == "default-token-abcde"
    assert s["metadata"]["annotations"] == {SA_NAME_ANNOTATION: "default", SA_UID_ANNOTATION: "sa1"}
    assert s["metadata"]["ownerReferences"][0]["uid"] == "sa1"
    assert "data" not in s  # the API actor signs the token
    [action] = plan(ns(), account(), [token("default-token-abcde")], suffix="zzzzz")
    assert isinstance(action, SetSecrets)
    assert action.account["secrets"] == [{"name": "default-token-abcde"}]
    assert plan(ns(), account(secrets=[{"name": "default-token-abcde"}]), [token("default-token-abcde")],
                suffix="z") == []


def test_stale_tokens_and_references_are_cleaned() -> None:
    secrets = [token("default-token-old", uid="sa0"), token("default-token-new"),
               {"kind": "Secret", "type": "Opaque", "metadata": {"name": "registry"}}]
    refs = [{"name": "default-token-old"}, {"name": "registry"}, {"name": "default-token-gone"},
            {"name": "elsewhere"}]
    actions = plan(ns(), account(secrets=refs), secrets, suffix="z")
    assert actions[0] == DeleteSecret("default-token-old")
    assert isinstance(actions[1], SetSecrets)
    assert actions[1].account["secrets"] == [{"name": "registry"}, {"name": "elsewhere"},
                                             {"name": "default-token-new"}]
