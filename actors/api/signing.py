"""The token signing key, kept where no API verb can read it: the KV bucket ``shoal_system``.

Only API actors have access to that bucket (see the NATS permissions in deploy/README.md). The first
API actor to start creates the key (create-only, so racing actors agree on one key).
"""

from __future__ import annotations

import nats.js.errors
from nats.aio.client import Client
from nats.js import api

from actors.api.store import open_bucket
from actors.api.tokens import new_key

SYSTEM_BUCKET = "shoal_system"
KEY_NAME = "signing-key"


async def load_signing_key(nc: Client, *, replicas: int = 1) -> bytes:
    kv = await open_bucket(nc.jetstream(), api.KeyValueConfig(
        bucket=SYSTEM_BUCKET, history=1, storage=api.StorageType.FILE, replicas=replicas,
        description="Shoal API actors' private state"))
    try:
        await kv.create(KEY_NAME, new_key())
    except nats.js.errors.KeyWrongLastSequenceError:
        pass
    entry = await kv.get(KEY_NAME)
    if not entry.value:
        raise RuntimeError(f"the {SYSTEM_BUCKET} bucket holds an empty signing key")
    return bytes(entry.value)
