"""``shoal keys``: an operator lists and rotates the token signing keys, and re-encrypts Secrets."""

from __future__ import annotations

from tests.cli.conftest import ShoalCli


def kids(out: str) -> dict[str, str]:
    """KID -> SIGNING (yes/no) of ``shoal keys`` output."""
    return {line.split()[0]: line.split()[-1] for line in out.splitlines()[1:] if line.strip()}


async def test_rotate_then_remove_the_old_signing_key(cli: ShoalCli) -> None:
    listed = await cli("keys", "signing")
    assert listed.rc == 0 and listed.out.split()[:3] == ["KID", "ADDED", "SIGNING"], listed
    (first, signing), = kids(listed.out).items()
    assert signing == "yes"
    rotated = await cli("keys", "rotate-signing")
    assert rotated.rc == 0, rotated
    after = kids(rotated.out)
    assert after[first] == "no" and list(after.values()).count("yes") == 1 and len(after) == 2
    active = next(k for k, v in after.items() if v == "yes")
    refused = await cli("keys", "remove-signing", "--", active)  # a key id may start with "-"
    assert refused.rc != 0 and "rotate first" in refused.err, refused
    removed = await cli("keys", "remove-signing", "--", first)
    assert removed.rc == 0 and kids(removed.out) == {active: "yes"}, removed
    usage = await cli("keys", "remove-signing")
    assert usage.rc != 0 and "key id" in usage.err, usage


async def test_rewrite_secrets_counts_them(cli: ShoalCli) -> None:
    created = await cli("apply", "-f", "-", stdin="apiVersion: v1\nkind: Secret\nmetadata:\n  name: s1\n"
                                                  "stringData:\n  a: b\n")
    assert created.rc == 0, created
    result = await cli("keys", "rewrite-secrets")
    assert result.rc == 0 and "secrets rewritten: 1" in result.out, result
