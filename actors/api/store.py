"""The datastore: one JetStream KV bucket, written with compare-and-swap on each key's revision.

Writes are JetStream publishes to ``$KV.shoal.<key>`` with ``Nats-Expected-Last-Subject-Sequence``,
so the KV revision (the stream sequence) is the resourceVersion and a stale write is refused by the
server itself. A delete is a ``KV-Operation: DEL`` marker that carries the object's final state, so
watchers receive what was deleted. Reads use direct get (served by any replica).

Secrets are encrypted here, the only place values are written and read (``encryption.KeyRing``): every
value above this module is plaintext, every Secret value in the bucket is ciphertext.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from actors.api.encryption import KeyRing
from actors.api.groupcommit import GroupCommit
from actors.api.streams import CHANGES_PREFIX
from protocol import keys
from protocol.codec import MAX_OBJECT_BYTES
from protocol.errors import AlreadyExists, Conflict, Unavailable

STREAM = f"KV_{keys.BUCKET}"
KV_OP = "KV-Operation"
EXPECTED_LAST = "Nats-Expected-Last-Subject-Sequence"
WRONG_LAST_SEQUENCE = 10071
"""JetStream's err_code for a write whose expected last sequence is not the subject's ("wrong last
sequence: {seq}"): a lost compare-and-swap."""
IN_FLIGHT = 10164
"""A replicated stream refusing a write because another write of the same subject is in flight ("wrong last
sequence", no number). Not yet a lost race: the other write may still fail, and until it commits a read
returns the old revision, so answering Conflict here broke linearizability (chaos seed 395483). The write
was never proposed: it is sent again until the other one settles (then 10071 or success)."""
DUPLICATE_IN_PROCESS = 10158
"""This very write (its ``Nats-Msg-Id``) is already being proposed: sent again, it is answered once it settles."""
IN_FLIGHT_RETRIES = 20
MSG_ID = "Nats-Msg-Id"
DEDUPE_WINDOW = 30.0
"""Seconds the bucket remembers each write's id: a write sent again within it is acknowledged once, with the
revision it got the first time (``PubAck.duplicate``), never applied twice."""
UNGATED: contextlib.nullcontext[None] = contextlib.nullcontext()
"""What a write that waits for no bulk slot enters instead (stateless: shared by all)."""
_LAST_SEQUENCE = re.compile(r"wrong last sequence: (\d+)")
IDLE_HEARTBEAT = 1.0
"""Seconds between the server's idle heartbeats to the watch cache's consumer: nats-py recreates an ordered
consumer after two missed ones (was 5 s: ~10 s of changes lost when its NATS server died, finding 1)."""


class Refusal(enum.Enum):
    CONFLICT = "conflict"
    AGAIN = "again"
    UNAVAILABLE = "unavailable"


def refusal(err_code: int | None, description: str | None, expected: int | None) -> Refusal:
    """What a JetStream refusal of a write that expected revision ``expected`` of its key means.

    10071 names the subject's last sequence as the answering server knows it. Below ``expected`` (a revision
    already committed and read), that server is behind: a leader that lost its place at a partition's heal,
    while the real one may have taken this very write (chaos soak seed 9, session 10: Conflict answered for
    writes that were committed). The write is sent again with its id; the real leader answers duplicate
    (done), in process (again), or judges it (finding 12). Otherwise 10071 is a lost race. 10164 (another
    write of the key in flight, this one not proposed) and 10158 (this write in process) are sent again."""
    if err_code == WRONG_LAST_SEQUENCE:
        found = _LAST_SEQUENCE.search(description or "")
        if found is not None and expected is not None and int(found.group(1)) < expected:
            return Refusal.AGAIN
        return Refusal.CONFLICT
    if err_code in (IN_FLIGHT, DUPLICATE_IN_PROCESS):
        return Refusal.AGAIN
    return Refusal.UNAVAILABLE


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    revision: int
    value: bytes
    deleted: bool
    expected: int | None = None
    """The revision of the key this write replaced (its ``Nats-Expected-Last-Subject-Sequence``: 0 for a
    create), when the follower read it: a feed that delivered the key at another revision skipped some."""


@dataclass(frozen=True)
class StoreSettings:
    replicas: int = 1
    history: int = 1
    """One revision per key: watches resume from the API actors' event window, not from KV history."""
    max_bytes: int = -1
    timeout: float = 5.0
    bulk_writes: int = 0
    """Bulk writes (those ``Store``'s ``is_bulk`` names: the ``system`` lane's binds, status writes, controllers'
    writes) sent to the stream at once; more wait here, so the stream's write queue, where every write waits
    its turn (an fsync each), stays short for the writes of people and heartbeats, which never wait here.
    0: no bound."""
    group_commit: int = 2
    """Writes waiting for one another leave together as one atomic batch (``groupcommit.py``), with this many
    sends in flight at once; 0: every write alone. A single replica's stream only: on a replicated stream a
    write's refusals and retries (a key's write in flight, a leader behind the others) are what the chaos suite
    checks, and batches there are neither checked nor measured."""


def delivery_position(msg: Msg) -> tuple[int, int]:
    """``(stream sequence, messages pending)`` of a message a push consumer delivered, read from its reply
    subject ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`` without
    building nats-py's ``Metadata`` (a date and three objects per change); other forms through nats-py."""
    tokens: list[str] = msg.reply.split(".") if msg.reply else []
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
        return int(tokens[5]), int(tokens[8])
    md = msg.metadata
    return int(md.sequence.stream), int(md.num_pending)


async def open_bucket(js: JetStreamContext, config: api.KeyValueConfig) -> KeyValue:
    """The KV bucket ``config.bucket``, created with ``config`` if absent (several API actors may race here:
    whoever loses opens the winner's)."""
    try:
        return await js.key_value(config.bucket)
    except nats.js.errors.BucketNotFoundError:
        pass
    try:
        return await js.create_key_value(config)
    except nats.js.errors.ServiceUnavailableError:
        raise  # no JetStream quorum yet: the caller waits
    except nats.js.errors.APIError:
        return await js.key_value(config.bucket)  # another actor created it first


class Store:
    def __init__(self, nc: Client, settings: StoreSettings | None = None, keyring: KeyRing | None = None,
                 is_bulk: Callable[[], bool] | None = None, person: Callable[[], str | None] | None = None) -> None:
        """``is_bulk``: whether the write being made is bulk work (it may wait for the others). ``person``: the
        flow (connection) of the person whose write is being made, None for a component's (see ``GroupCommit``)."""
        self.keyring = keyring or KeyRing.plaintext()
        self.undecryptable = 0
        """Records the follower skipped because no configured key decrypts them."""
        self.nc = nc
        self.js = nc.jetstream(timeout=(settings or StoreSettings()).timeout)
        self._writer = secrets.token_hex(6)
        self._writes = itertools.count(1)
        self.settings = settings or StoreSettings()
        self._is_bulk = is_bulk
        self._person = person
        self._bulk = asyncio.Semaphore(self.settings.bulk_writes) if self.settings.bulk_writes > 0 else None
        self.group = (GroupCommit(nc, self.js, timeout=self.settings.timeout,
                                  slots=self.settings.group_commit)
                      if self.settings.group_commit > 0 and self.settings.replicas == 1 else None)

    async def open(self) -> None:
        """Create the bucket if absent (idempotent: several API actors may race here)."""
        config = api.KeyValueConfig(
            bucket=keys.BUCKET, description="Shoal objects", history=self.settings.history,
            max_value_size=MAX_OBJECT_BYTES + 64 * 1024, storage=api.StorageType.FILE,
            replicas=self.settings.replicas, direct=True,
            max_bytes=self.settings.max_bytes if self.settings.max_bytes > 0 else None,
        )
        await open_bucket(self.js, config)
        await self._settle_config()

    async def _settle_config(self) -> None:
        """Buckets made by earlier versions republished every write to ``shoal.changes.>`` themselves, with
        the write's compare-and-swap header, which ``SHOAL_CHANGES`` then checked against its own sequences
        and refused (most changes were lost): the API actors publish the changes now (``_tell_change``). And
        write ids are remembered ``DEDUPE_WINDOW`` seconds (nats-py's default of 2 minutes costs nats-server
        memory for nothing: a write is sent again within a second). Group commit needs atomic batches allowed."""
        info = await self.js.stream_info(STREAM)
        atomic = self.group is not None
        if info.config.republish is not None or info.config.duplicate_window != DEDUPE_WINDOW or \
                (atomic and not info.config.allow_atomic):
            info.config.republish = None
            info.config.duplicate_window = DEDUPE_WINDOW
            info.config.allow_atomic = info.config.allow_atomic or atomic
            await self.js.update_stream(info.config)

    async def _publish(self, key: str, value: bytes, headers: dict[str, str]) -> int:
        value = self.keyring.encrypt(key, value)
        expected = int(headers[EXPECTED_LAST]) if EXPECTED_LAST in headers else None
        # the write's id: sent again (below), it is applied at most once
        write_id = f"{self._writer}-{next(self._writes)}"
        sent = {**headers, MSG_ID: write_id}
        doubted = False
        """A server behind the others refused this write: it may have been taken all the same."""
        bulk = self._is_bulk is not None and self._is_bulk()
        flow = self._person() if self._person is not None else None
        gate = self._bulk if self._bulk is not None and bulk else UNGATED
        for attempt in range(IN_FLIGHT_RETRIES):
            try:
                async with gate:
                    seq = await self._send(keys.KV_SUBJECT_PREFIX + key, value, sent, bulk, flow)
            except nats.js.errors.APIError as exc:
                answer = refusal(exc.err_code, exc.description, expected)
                if answer is Refusal.CONFLICT:
                    if not doubted:
                        raise Conflict(f"{key} was modified concurrently") from None
                    # the revision that beat it may be this very write
                    seq = await self._taken_as(key, exc.description, write_id)
                    await self._tell_change(key, value, headers, seq)
                    return seq
                if answer is Refusal.AGAIN:
                    doubted = doubted or exc.err_code == WRONG_LAST_SEQUENCE
                    await asyncio.sleep(0.002 * (attempt + 1))
                    continue
                raise Unavailable(f"datastore refused the write: {exc.description}") from None
            except (NatsTimeout, NoRespondersError, nats.js.errors.NoStreamResponseError) as exc:
                raise Unavailable(f"datastore did not acknowledge the write: {exc!r}; retry") from None
            await self._tell_change(key, value, headers, seq)
            return seq
        raise Unavailable(f"the datastore did not settle the write of {key} (another write in flight, or a "
                          "server behind the others answered); read it and retry")

    async def _send(self, subject: str, value: bytes, headers: dict[str, str], bulk: bool, flow: str | None) -> int:
        if self.group is not None:
            return await self.group.publish(subject, value, headers, bulk=bulk, person=flow)
        return int((await self.js.publish(subject, value, timeout=self.settings.timeout, headers=headers)).seq)

    async def _taken_as(self, key: str, description: str | None, write_id: str) -> int:
        """The revision a doubted write was taken at, when the revision its refusal names is that write (a
        single server checks the expected revision before the id, a cluster the id first); Conflict when it
        is another's; Unavailable when that revision cannot be read (already superseded): the write may or
        may not have been taken."""
        found = _LAST_SEQUENCE.search(description or "")
        if found is None:
            raise Conflict(f"{key} was modified concurrently")
        revision = int(found.group(1))
        try:
            msg = await self.js.get_msg(STREAM, seq=revision, direct=False)
        except (nats.js.errors.APIError, NatsTimeout, NoRespondersError) as exc:
            raise Unavailable(f"the datastore refused the write of {key} in a way that may hide its success "
                              f"and revision {revision} cannot be read ({exc!r}); read {key} and retry") from None
        if msg.subject == keys.KV_SUBJECT_PREFIX + key and (msg.headers or {}).get(MSG_ID) == write_id:
            return revision
        raise Conflict(f"{key} was modified concurrently")

    async def _tell_change(self, key: str, value: bytes, headers: dict[str, str], revision: int) -> None:
        """Publish an acknowledged write to ``shoal.changes.<key>`` (captured by ``SHOAL_CHANGES``) with the
        headers a KV republish has: ``Nats-Sequence`` (the resourceVersion), ``Nats-Subject``,
        ``Nats-Last-Sequence`` (the revision it replaced) and ``KV-Operation`` on deletion. A core publish:
        it costs the write no round trip; a crash between the write and this loses the change from the
        stream (its revision is missing: followers see the gap), never from the datastore."""
        told = {"Nats-Sequence": str(revision), "Nats-Subject": keys.KV_SUBJECT_PREFIX + key,
                "Nats-Last-Sequence": headers.get(EXPECTED_LAST, "0")}
        if KV_OP in headers:
            told[KV_OP] = headers[KV_OP]
        with contextlib.suppress(NatsError):
            await self.nc.publish(f"{CHANGES_PREFIX}.{key}", value, headers=told)

    async def get(self, key: str) -> Record | None:
        """The latest record of ``key`` (a deleted one included), or None.

        With one replica a direct get is exact. With several, a direct get may be answered by a replica
        that has not applied the latest write yet, so reads go to the stream leader: read-your-writes
        holds on a cluster too."""
        if self.settings.replicas > 1:
            return await self._leader_get(key)
        subject = f"$JS.API.DIRECT.GET.{STREAM}.{keys.KV_SUBJECT_PREFIX}{key}"
        try:
            msg = await self.nc.request(subject, b"", timeout=self.settings.timeout)
        except (NatsTimeout, NoRespondersError) as exc:
            raise Unavailable(f"datastore did not answer a read of {key}: {exc!r}") from None
        headers = msg.headers or {}
        status = headers.get("Status")
        if status == "404":
            return None
        if status:
            raise Unavailable(f"datastore read of {key} failed: {status} {headers.get('Description', '')}")
        return Record(key, int(headers["Nats-Sequence"]), self.keyring.decrypt(key, msg.data),
                      headers.get(KV_OP) in ("DEL", "PURGE"))

    async def _leader_get(self, key: str) -> Record | None:
        try:
            msg = await self.js.get_msg(STREAM, subject=keys.KV_SUBJECT_PREFIX + key, direct=False)
        except nats.js.errors.NotFoundError:
            return None
        except nats.js.errors.APIError as exc:
            if exc.code == 404:
                return None
            raise Unavailable(f"datastore read of {key} failed: {exc.description}") from None
        except (NatsTimeout, NoRespondersError) as exc:
            raise Unavailable(f"datastore did not answer a read of {key}: {exc!r}") from None
        headers = msg.headers or {}
        return Record(key, int(msg.seq or 0), self.keyring.decrypt(key, msg.data or b""),
                      headers.get(KV_OP) in ("DEL", "PURGE"))

    async def create(self, key: str, value: bytes) -> int:
        """Write ``key`` only if it does not exist (or exists only as a deletion marker)."""
        try:
            return await self._publish(key, value, {EXPECTED_LAST: "0"})
        except Conflict:
            pass
        current = await self.get(key)
        if current is not None and not current.deleted:
            raise AlreadyExists(f"{key} already exists")
        try:
            return await self._publish(key, value, {EXPECTED_LAST: str(current.revision if current else 0)})
        except Conflict:
            raise AlreadyExists(f"{key} already exists") from None

    async def update(self, key: str, value: bytes, revision: int) -> int:
        """Compare-and-swap: write only if ``key`` is still at ``revision``."""
        return await self._publish(key, value, {EXPECTED_LAST: str(revision)})

    async def delete(self, key: str, final_value: bytes, revision: int) -> int:
        """Compare-and-swap delete; the marker carries the object's final state for watchers."""
        return await self._publish(key, final_value, {KV_OP: "DEL", EXPECTED_LAST: str(revision)})

    async def rewrite(self, keys_: list[str]) -> dict[str, int]:
        """Write each key again as it is (compare-and-swap), so it is encrypted with the current primary key
        (key rotation). A key changed meanwhile was written with that key already: counted ``changed``."""
        counts = {"rewritten": 0, "changed": 0, "gone": 0}
        for key in keys_:
            record = await self.get(key)
            if record is None or record.deleted:
                counts["gone"] += 1
                continue
            try:
                await self.update(key, record.value, record.revision)
                counts["rewritten"] += 1
            except Conflict:
                counts["changed"] += 1
        return counts

    async def last_revision(self) -> int:
        info = await self.js.stream_info(STREAM)
        return int(info.state.last_seq)

    async def follow(self, on_record: Callable[[Record, int], Awaitable[None]]) -> Any:
        """Deliver the latest record of every key, then every change, in an ordered consumer.

        ``on_record(record, pending)``: ``pending`` is how many messages the server still holds for
        this consumer (0 once caught up). Returns the subscription.
        """

        async def handler(msg: Msg) -> None:
            revision, pending = delivery_position(msg)
            headers = msg.headers or {}
            key = msg.subject[len(keys.KV_SUBJECT_PREFIX):]
            try:
                value = self.keyring.decrypt(key, msg.data)
            except Exception:
                # a key missing from the configuration: never serve ciphertext; an unparsable key carries the
                # revision on (the cache ignores it)
                self.undecryptable += 1
                key, value = "", b""
            expected = headers.get(EXPECTED_LAST)
            record = Record(key, revision, value, headers.get(KV_OP) in ("DEL", "PURGE"),
                            int(expected) if expected is not None and expected.isdigit() else None)
            await on_record(record, pending)

        return await self.js.subscribe(
            keys.KV_SUBJECT_PREFIX + ">", cb=handler, ordered_consumer=True,
            deliver_policy=api.DeliverPolicy.LAST_PER_SUBJECT, idle_heartbeat=IDLE_HEARTBEAT,
            pending_msgs_limit=1_000_000, pending_bytes_limit=1024 * 1024 * 1024,
        )


