"""The serviceaccount controller against a real API: a default account with a token Secret in every
active namespace, recreated when deleted."""

from __future__ import annotations

import asyncio

from actors.controllers.serviceaccount_plan import SA_NAME_ANNOTATION, SA_UID_ANNOTATION, TOKEN_TYPE
from protocol.errors import NotFound
from protocol.objects import Obj, meta
from runtime.client import ApiClient
from tests.conftest import ActorRunner
from tests.controllers.conftest import eventually, start_manager


async def account_with_token(client: ApiClient, ns: str) -> tuple[Obj, Obj] | None:
    """The default account once its ``secrets`` lists a token Secret of its own."""
    try:
        sa = await client.get("ServiceAccount", "default", ns)
    except NotFound:
        return None
    for ref in sa.get("secrets") or []:
        try:
            secret = await client.get("Secret", ref["name"], ns)
        except NotFound:
            continue
        annotations = meta(secret).get("annotations") or {}
        if secret.get("type") == TOKEN_TYPE and annotations.get(SA_UID_ANNOTATION) == meta(sa)["uid"]:
            return sa, secret
    return None


async def tokens(client: ApiClient, ns: str) -> list[Obj]:
    return [s for s in (await client.list("Secret", ns)).items if s.get("type") == TOKEN_TYPE]


async def test_default_account_in_every_namespace_and_recreated(client: ApiClient, runner: ActorRunner) -> None:
    await start_manager(runner, ["serviceaccount"])
    await eventually(lambda: account_with_token(client, "default"))  # system namespaces too
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    sa, secret = await eventually(lambda: account_with_token(client, "team"))
    name = meta(secret)["name"]
    assert name.startswith("default-token-") and len(name) == len("default-token-") + 5
    assert meta(secret)["annotations"][SA_NAME_ANNOTATION] == "default"
    await asyncio.sleep(0.5)
    assert len(await tokens(client, "team")) == 1  # expectations: never two

    await client.delete("ServiceAccount", "default", "team")

    async def recreated() -> tuple[Obj, Obj] | None:
        found = await account_with_token(client, "team")
        return found if found is not None and meta(found[0])["uid"] != meta(sa)["uid"] else None

    _, new_secret = await eventually(recreated)
    assert meta(new_secret)["name"] != name

    async def old_token_gone() -> bool:
        return [meta(s)["name"] for s in await tokens(client, "team")] == [meta(new_secret)["name"]]

    await eventually(old_token_gone)

    # a deleted token Secret is replaced and the reference follows
    await client.delete("Secret", meta(new_secret)["name"], "team")

    async def replaced() -> tuple[Obj, Obj] | None:
        found = await account_with_token(client, "team")
        return found if found is not None and meta(found[1])["name"] != meta(new_secret)["name"] else None

    sa3, _ = await eventually(replaced)
    assert len(sa3["secrets"]) == 1
