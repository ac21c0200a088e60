"""The audit stream: a record of every mutating request and every refusal, on the JetStream stream
``SHOAL_AUDIT`` (subjects ``shoal.audit.<allowed|refused>.<verb>.<resource>``, see ``streams.py``).

A message is ``{"v": 1, "records": [record, ...]}`` (the records of one subject gathered over at most
``BATCH_WINDOW`` seconds, so a busy API actor adds one stream write per subject and window, not one per
request); a record::

    {"time": "2026-12-01T00:00:00.000000Z", "apiActor": "<id>",
     "user": "<as.user>" | "system:node:<N>" | "unknown", "connection": "<reply prefix>",
     "verb": "create", "resource": "pods", "namespace": "default", "name": "web",
     "outcome": "allowed" | "refused", "code": 201 | <HTTP status>, "reason": "<error code>", "message": "..."}

``user`` is the impersonated user of a request carrying ``as`` (the gateway's HTTP user, ``shoal --as``), the
user of a component's identity-scoped subject (``system:kube-scheduler``: NATS lets only that component
publish there), the node of a node-scoped subject (NATS lets only that node's kubelet publish there), else
``unknown`` (a trusted caller: the gateway's own work or the admin). Audited: every create, update, status, patch,
delete, bind, token (TokenRequest) and signing-key change (allowed or refused), and every other request refused
with something else than NotFound
(Forbidden, BadRequest, TooManyRequests, ...).

Best effort, never on the request path: ``record`` puts the record in a bounded queue (dropped and counted
when full) and one task publishes them with core NATS publishes (the stream captures them; nothing waits for
an acknowledgement).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from protocol import codec, keys, subjects
from protocol.errors import ErrorCode, ShoalError
from protocol.objects import format_time

MUTATING = frozenset({"create", "update", "status", "patch", "delete", "bind", "token"})
MUTATING_ADMIN = frozenset({"rewrite-secrets", "rotate-signing-key", "remove-signing-key"})
NOT_AUDITED_REFUSALS = frozenset({ErrorCode.NOT_FOUND, ErrorCode.EXPIRED})
QUEUE = 100_000
BATCH_WINDOW = 0.05
MAX_BATCH = 500


def describe(subject: str) -> tuple[str | None, str, str, str | None, str | None]:
    """``(node, verb, resource, namespace, name)`` of a request subject, as far as it goes (for records of
    requests whose subject does not even parse)."""
    node, tokens = subjects.split_api_subject(subject)
    rest = tokens[2:] if len(tokens) > 2 and tokens[:2] == ["shoal", "api"] else []
    rest += [""] * (4 - len(rest))
    verb, resource, namespace, name = rest[:4]
    return (keys.decode_token(node) if node else None, verb[:64], resource[:64],
            keys.decode_token(namespace) if namespace not in ("", keys.CLUSTER_SCOPE, subjects.ALL_NAMESPACES)
            else None, keys.decode_token(name) if name else None)


def scoped_user(subject: str) -> str | None:
    """The user of a component's identity-scoped subject ``shoal.user.<U>.api...``, else None."""
    _, user, _ = subjects.scope_of(subject)
    return keys.decode_token(user) if user else None


def audited(verb: str, resource: str, error: ShoalError | None) -> bool:
    if verb in MUTATING or (verb == "admin" and resource in MUTATING_ADMIN):
        return True
    return error is not None and error.code not in NOT_AUDITED_REFUSALS


class Auditor:
    def __init__(self, nc: Any, api_id: str, *, enabled: bool = True, queue: int = QUEUE) -> None:
        self.nc = nc
        self.api_id = api_id
        self.enabled = enabled
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=queue)
        self.published = 0
        self.dropped = 0

    def record(self, *, verb: str, resource: str, namespace: str | None, name: str | None,
               node: str | None, connection: str | None, error: ShoalError | None, user: str | None = None) -> None:
        if not self.enabled or not audited(verb, resource, error):
            return
        outcome = "refused" if error is not None else "allowed"
        entry: dict[str, Any] = {
            "time": format_time(time.time()), "apiActor": self.api_id,
            "user": user or (f"system:node:{node}" if node else "unknown"), "connection": connection or "",
            "verb": verb, "resource": resource, "namespace": namespace, "name": name, "outcome": outcome,
            "code": 200 if error is None else error.http_status,
        }
        if error is not None:
            entry["reason"] = str(error.code)
            entry["message"] = error.message[:1024]
        try:
            self.queue.put_nowait((subjects.audit_subject(outcome, verb or "unknown", resource or "unknown"),
                                   entry))
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        """Publish queued records, gathered per subject, until cancelled (the actor's supervisor runs it)."""
        while True:
            first = await self.queue.get()
            batches: dict[str, list[dict[str, Any]]] = {first[0]: [first[1]]}
            taken = 1
            while taken < MAX_BATCH and not self.queue.empty():
                subject, entry = self.queue.get_nowait()
                batches.setdefault(subject, []).append(entry)
                taken += 1
            for subject, records in batches.items():
                try:
                    await self.nc.publish(subject, codec.encode({"records": records}))
                    self.published += len(records)
                except Exception:
                    self.dropped += len(records)
            await asyncio.sleep(BATCH_WINDOW)

    def stats(self) -> dict[str, int]:
        return {"published": self.published, "dropped": self.dropped, "queued": self.queue.qsize()}
