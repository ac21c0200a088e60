"""The token signing keys, kept where no API verb can read them: the KV bucket ``shoal_system``.

Only API actors have access to that bucket (see the NATS permissions in deploy/README.md). The first API
actor to start creates the key set (create-only, so racing actors agree on one). The set (``keyset.py``)
holds several ES256 keys by ``kid``; one signs. Rotation and removal are compare-and-swap writes of the
whole set by whichever API actor is asked (``shoal.api.admin.rotate-signing-key`` /
``remove-signing-key``); every other API actor follows the stored set (a KV watch, re-read when quiet for
``REFRESH_SECONDS``) and re-reads it at once (at most once a second) when it meets a token signed by a key it
does not know yet, so a token signed by the new key is accepted everywhere as soon as it exists, and tokens of
the old keys stay valid until their key is removed.

(Before ES256, Shoal kept one HS256 secret under ``signing-key`` in the same bucket; it is no longer read.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import api
from nats.js.kv import KeyValue

from actors.api.keyset import KeySet
from actors.api.store import open_bucket
from protocol import jwt
from protocol.errors import Conflict
from protocol.objects import format_time

SYSTEM_BUCKET = "shoal_system"
KEYS_NAME = "signing-keys"
REFRESH_SECONDS = 5.0
"""An API actor whose watch of the key set was quiet this long re-reads it (in case the watch was lost)."""
CAS_RETRIES = 8
UNKNOWN_KID_REREAD = 1.0
"""A token naming a key this actor does not know makes it re-read the set at most once per this many seconds
(forged kids cost no more than that)."""


class SigningKeys:
    """One API actor's view of the stored key set: signs with the active key, verifies with any of them."""

    def __init__(self, kv: KeyValue, keyset: KeySet, *, clock: Callable[[], float]) -> None:
        self.kv = kv
        self.current = keyset
        self.clock = clock
        self._read_at = -UNKNOWN_KID_REREAD

    @staticmethod
    async def load(nc: Client, *, replicas: int = 1, clock: Callable[[], float]) -> SigningKeys:
        kv = await open_bucket(nc.jetstream(), api.KeyValueConfig(
            bucket=SYSTEM_BUCKET, history=1, storage=api.StorageType.FILE, replicas=replicas,
            description="Shoal API actors' private state"))
        try:
            await kv.create(KEYS_NAME, KeySet.fresh(format_time(clock())).encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            pass  # another API actor created it first (or it exists): read theirs
        keys = SigningKeys(kv, KeySet.fresh(""), clock=clock)
        await keys.refresh()
        return keys

    async def refresh(self) -> KeySet:
        self._read_at = time.monotonic()
        entry = await self.kv.get(KEYS_NAME)
        if not entry.value:
            raise RuntimeError(f"the {SYSTEM_BUCKET} bucket holds no signing keys")
        self.current = KeySet.decode(bytes(entry.value))
        return self.current

    async def follow(self) -> None:
        """Take every change of the stored set as it is written (a KV watch), and re-read it whenever the watch
        has been quiet for ``REFRESH_SECONDS`` (a watch lost in a reconnect must not leave old keys for good).
        A supervised task of the API actor."""
        while True:
            try:
                watcher = await self.kv.watch(KEYS_NAME)
            except Exception:
                await asyncio.sleep(REFRESH_SECONDS)
                continue
            try:
                while True:
                    try:
                        entry = await watcher.updates(timeout=REFRESH_SECONDS)  # type: ignore[no-untyped-call]
                    except nats.errors.TimeoutError:
                        await self.refresh()
                        continue
                    if entry is not None and entry.value:
                        self.current = KeySet.decode(bytes(entry.value))
            except Exception:
                await asyncio.sleep(1.0)  # NATS away for a moment: keep the keys we have, watch again
            finally:
                try:
                    await watcher.stop()  # type: ignore[no-untyped-call]
                except Exception:
                    pass

    def sign(self, claims: dict[str, Any]) -> str:
        return self.current.sign(claims)

    async def verify(self, token: Any) -> dict[str, Any]:
        """The claims of ``token`` if one of the keys signed it; a key this actor does not know yet (another
        actor just rotated) makes it re-read the set once before refusing."""
        kid = jwt.header_of(token)["kid"]
        if kid not in self.current.public_keys() and time.monotonic() - self._read_at >= UNKNOWN_KID_REREAD:
            await self.refresh()
        return jwt.verify(token, self.current.public_keys())

    async def rotate(self) -> KeySet:
        return await self._change(lambda keys: keys.rotated(format_time(self.clock())))

    async def remove(self, kid: Any) -> KeySet:
        return await self._change(lambda keys: keys.without(kid))

    async def _change(self, change: Callable[[KeySet], KeySet]) -> KeySet:
        for _ in range(CAS_RETRIES):
            entry = await self.kv.get(KEYS_NAME)
            changed = change(KeySet.decode(bytes(entry.value or b"")))
            try:
                await self.kv.update(KEYS_NAME, changed.encode(), last=entry.revision)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # another actor changed the set meanwhile: apply ours to theirs
            self.current = changed
            return changed
        raise Conflict("the signing keys kept changing under this request; retry")
