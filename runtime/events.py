"""Recording Kubernetes-style Events through the API, deduplicated as client-go's recorder does:
the same (object, type, reason, message) within the dedup window bumps ``count`` and
``lastTimestamp`` on one Event instead of creating another."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from protocol.errors import AlreadyExists, Conflict, NotFound, ShoalError
from protocol.objects import Obj, format_micro_time, format_time, meta, name_of, namespace_of, uid_of
from runtime.client import ApiClient

DEDUP_WINDOW = 600.0


class EventRecorder:
    def __init__(self, client: ApiClient, component: str, *, host: str | None = None, log: Any = None) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.log = log
        self._seen: dict[str, tuple[float, Obj]] = {}

    async def record(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record an Event about ``obj``; failures are logged, never raised (events are best effort)."""
        namespace = namespace_of(obj) or "default"
        identity = f"{obj.get('kind')}/{namespace}/{name_of(obj)}/{uid_of(obj)}/{type_}/{reason}/{message}"
        digest = hashlib.sha1(identity.encode()).hexdigest()[:16]
        now = time.time()
        try:
            seen = self._seen.get(digest)
            if seen is not None and now - seen[0] < DEDUP_WINDOW:
                event = seen[1]
                event["count"] = int(event.get("count") or 1) + 1
                event["lastTimestamp"] = format_time(now)
                try:
                    event = await self.client.update(event)
                except (NotFound, Conflict):
                    event = await self._create(obj, namespace, digest, type_, reason, message, now)
            else:
                event = await self._create(obj, namespace, digest, type_, reason, message, now)
            self._seen[digest] = (now, event)
            if len(self._seen) > 4096:
                cutoff = now - DEDUP_WINDOW
                self._seen = {k: v for k, v in self._seen.items() if v[0] > cutoff}
        except ShoalError as exc:
            if self.log is not None:
                self.log.warning("could not record event", reason=reason, error=str(exc))

    async def _create(self, obj: Obj, namespace: str, digest: str, type_: str, reason: str, message: str,
                      now: float) -> Obj:
        event: Obj = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name_of(obj)}.{digest}", "namespace": namespace},
            "involvedObject": {"kind": obj.get("kind"), "name": name_of(obj), "namespace": namespace_of(obj),
                               "uid": uid_of(obj), "apiVersion": obj.get("apiVersion"),
                               "resourceVersion": meta(obj).get("resourceVersion")},
            "reason": reason, "message": message, "type": type_, "count": 1,
            "firstTimestamp": format_time(now), "lastTimestamp": format_time(now),
            "eventTime": format_micro_time(now),
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "reportingComponent": self.component,
        }
        try:
            return await self.client.create(event)
        except AlreadyExists:
            current = await self.client.get("Event", name_of(event), namespace)
            current["count"] = int(current.get("count") or 1) + 1
            current["lastTimestamp"] = format_time(now)
            current["message"] = message
            return await self.client.update(current)
