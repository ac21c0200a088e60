"""Writing and reading Events in the ``SHOAL_EVENTS`` stream, their store (``protocol/README.md``).

One subject per Event, ``shoal.events.<ns>.<Kind>.<name>.<event>``; the stream keeps each subject's latest
message, the envelope ``{"v":1,"type":"ADDED"|"MODIFIED"|"DELETED","object":<Event>}``, whose stream
sequence is the Event's ``resourceVersion``. Every write is compare-and-swap on the Event's subject
(``Nats-Expected-Last-Subject-Sequence``: 0 for a new Event), refused ``Conflict`` otherwise.

Used by the API actors (``actors/api/events_store.py``, the API face of Events) and by the event recorders
(``runtime/events.py``), which publish once, straight to the stream, without a request to an API actor and
without waiting for an acknowledgement (``publish_unacknowledged``: an Event's subject carries the name its
recorder gave it, nanoseconds included, so no other writer races it there but an API client on purpose).
"""

from __future__ import annotations

from typing import Any

import nats.js.errors
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from protocol import codec, subjects
from protocol.errors import Conflict, Unavailable
from protocol.objects import Obj

EXPECTED_LAST = "Nats-Expected-Last-Subject-Sequence"
WRONG_LAST_SEQUENCE = 10071
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


def subject_of(event: Obj) -> str:
    """Where ``event`` lives: ``shoal.events.<ns>.<Kind>.<name>.<event>`` (its own namespace, its object)."""
    m = event.get("metadata") or {}
    involved = event.get("involvedObject") or {}
    return subjects.event_subject(str(m.get("namespace") or "default"), str(involved.get("kind") or "Unknown"),
                                  str(involved.get("name") or "unknown"), str(m.get("name") or ""))


class EventStream:
    def __init__(self, nc: Client, *, timeout: float = 5.0) -> None:
        self.nc = nc
        self.js = nc.jetstream(timeout=timeout)
        self.writes = 0

    async def publish_unacknowledged(self, event: Obj, change: str) -> None:
        """Write ``event`` with a plain NATS publish the stream captures: no acknowledgement, no
        compare-and-swap (what an event recorder does with the Events it named; best effort)."""
        await self.nc.publish(subject_of(event), codec.encode({"type": change, "object": event}))
        self.writes += 1

    async def publish(self, event: Obj, change: str, expected: int | None) -> int:
        """Write ``event`` (without ``resourceVersion``) if its subject is at ``expected`` (None: whatever it
        is at); its new sequence, once the stream has it."""
        subject = subject_of(event)
        try:
            ack = await self.js.publish(subject, codec.encode({"type": change, "object": event}),
                                        stream=subjects.EVENTS_STREAM,
                                        headers={EXPECTED_LAST: str(expected)} if expected is not None else None)
        except nats.js.errors.APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise Conflict(f"event {subject} was modified concurrently") from None
            raise Unavailable(f"event stream refused the write: {exc.description}") from None
        except (NatsTimeout, NoRespondersError, nats.js.errors.NoStreamResponseError) as exc:
            raise Unavailable(f"event stream did not acknowledge the write: {exc!r}; retry") from None
        self.writes += 1
        return int(ack.seq)

    async def last(self, subject: str) -> tuple[str, int, dict[str, Any]] | None:
        """The latest message on ``subject`` (wildcards allowed): (its subject, sequence, envelope)."""
        try:
            msg = await self.js.get_last_msg(subjects.EVENTS_STREAM, subject)
        except nats.js.errors.NotFoundError:
            return None
        except nats.js.errors.APIError as exc:
            if exc.code == 404:
                return None
            raise Unavailable(f"event stream read failed: {exc.description}") from None
        except (NatsTimeout, NoRespondersError) as exc:
            raise Unavailable(f"event stream did not answer a read: {exc!r}") from None
        return str(msg.subject), int(msg.seq or 0), codec.decode(msg.data or b"")
