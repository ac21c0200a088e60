"""The cluster's subscribable streams, both plain JetStream streams any NATS client can read.

- ``SHOAL_CHANGES`` — every object change, as written: the API actor that made a write publishes it, once
  acknowledged, to ``shoal.changes.<resource>.<ns>.<name>`` (headers ``Nats-Sequence`` = resourceVersion,
  ``Nats-Last-Sequence`` = the revision replaced, ``KV-Operation: DEL`` on deletion; ``Store._tell_change``).
  Core subscribers see them live; the stream keeps them for a while. (The bucket's own republish did this
  before, but its copies carried the write's compare-and-swap header, which this stream checked against its
  own sequences: once they differed, updates were refused here and lost.)
- ``SHOAL_EVENTS`` — the store of cluster Events (``events_store.py``): one subject per Event,
  ``shoal.events.<ns>.<Kind>.<name>.<event>``, each message a msgpack envelope
  ``{"v":1,"type":"ADDED"|"MODIFIED"|"DELETED","object":<Event>}``; the latest version of each Event is
  kept for ``events_max_age`` (1 h, Kubernetes' ``--event-ttl``), in memory (see ``EVENTS_STORAGE``).
- ``SHOAL_AUDIT`` — one record per mutating request and per refusal (``audit.py``), on
  ``shoal.audit.<allowed|refused>.<verb>.<resource>``; kept a week (256 MiB at most).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import nats.js.errors
from nats.aio.client import Client
from nats.js import api

from protocol import subjects

CHANGES_MAX_BYTES = 64 * 1024 * 1024
"""The changes stream is in memory (a file stream would add an fsync to every write): at 1,000 writes/s of
~1.3 KiB pods this keeps the last ~50 s, and a NATS server holds ~3x its size (measured: 256 MiB of changes
kept a server at ~720 MiB resident, 64 MiB at ~250 MiB, with 150,000 pods in the datastore)."""
CHANGES_STREAM = "SHOAL_CHANGES"
CHANGES_PREFIX = "shoal.changes"


async def _ensure(js: Any, config: api.StreamConfig) -> None:
    try:
        await js.stream_info(config.name)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(config)
        except nats.js.errors.ServiceUnavailableError:
            raise  # no JetStream quorum yet: the caller waits
        except nats.js.errors.APIError:
            await js.stream_info(config.name)  # created concurrently by another API actor


EVENTS_MAX_BYTES = 256 * 1024 * 1024
EVENTS_STORAGE = api.StorageType.MEMORY
"""Events are observations kept an hour, not desired state: in memory they cost no fsync (measured here:
~7,900 publishes/s in memory against ~1,000/s to a file stream with ``sync_interval: always``), and with
three replicas they survive the loss of one server. A NATS restart of a one-server cluster forgets them."""


async def ensure_streams(nc: Client, *, replicas: int = 1, events_max_age: float = 3600.0,
                         events_max_bytes: int = EVENTS_MAX_BYTES, changes_max_age: float = 900.0,
                         changes_max_bytes: int = CHANGES_MAX_BYTES) -> None:
    js = nc.jetstream()
    events = api.StreamConfig(
        name=subjects.EVENTS_STREAM, subjects=[f"{subjects.EVENTS_PREFIX}.>"], storage=EVENTS_STORAGE,
        max_age=events_max_age, max_bytes=events_max_bytes, num_replicas=replicas, max_msgs_per_subject=1,
        allow_direct=True, discard=api.DiscardPolicy.OLD, description="Shoal cluster Events, one subject each")
    await _ensure(js, events)
    info = await js.stream_info(subjects.EVENTS_STREAM)
    wanted = dataclasses.replace(info.config, max_msgs_per_subject=1, allow_direct=True,
                                 max_bytes=events_max_bytes, max_age=events_max_age)
    if wanted != info.config:
        # made by an older version or with other limits: the API actors' settings win (the latest started)
        await js.update_stream(wanted)
    await _ensure(js, api.StreamConfig(
        name=CHANGES_STREAM, subjects=[f"{CHANGES_PREFIX}.>"], storage=api.StorageType.MEMORY,
        max_age=changes_max_age, max_bytes=changes_max_bytes, num_replicas=replicas,
        discard=api.DiscardPolicy.OLD, description="Shoal object changes, published by the API actors"))
    await _ensure(js, api.StreamConfig(
        name=subjects.AUDIT_STREAM, subjects=[f"{subjects.AUDIT_PREFIX}.>"], storage=api.StorageType.FILE,
        max_age=7 * 24 * 3600.0, max_bytes=256 * 1024 * 1024, num_replicas=replicas,
        discard=api.DiscardPolicy.OLD, description="Shoal audit: every mutating request and every refusal"))

