"""Event (v1): a report about an object; listed by when it last happened."""

from __future__ import annotations

from typing import Any

from protocol.fielderrors import Errors
from protocol.humanize import since
from protocol.kinds.strategy import Column, Field, KindInfo, Strategy, as_dict, undescribed
from protocol.objects import Obj, meta, name_of, parse_time

INFO = KindInfo("Event", "v1", "events", "event", ("ev",))


def _validate(e: Errors, obj: Obj) -> None:
    if obj.get("spec") is not None:
        e.check(obj.get("spec"), "spec", dict)
    involved: Any = obj.get("involvedObject")
    if e.check(involved, "involvedObject", dict, required=True):
        e.check(involved.get("kind"), "involvedObject.kind", str, required=True)
        e.check(involved.get("name"), "involvedObject.name", str, required=True)
    e.check(obj.get("reason"), "reason", str)
    e.check(obj.get("message"), "message", str)
    e.enum(obj, "type", "type", ("Normal", "Warning"))
    e.integer(obj, "count", "count", 0)


def event_time(ev: Obj) -> str | None:
    value = ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp")
    return str(value) if value else meta(ev).get("creationTimestamp")


def event_object(ev: Obj) -> str:
    involved = as_dict(ev.get("involvedObject"))
    return f"{str(involved.get('kind') or '').lower()}/{involved.get('name')}"


def _by_time(ev: Obj) -> Any:
    return (parse_time(event_time(ev)) or 0.0, name_of(ev))


COLUMNS = (
    Column("LAST SEEN", lambda o, now: since(event_time(o), now), format="date"),
    Column("TYPE", lambda o, now: str(o.get("type") or "")),
    Column("REASON", lambda o, now: str(o.get("reason") or "")),
    Column("OBJECT", lambda o, now: event_object(o)),
    Column("MESSAGE", lambda o, now: str(o.get("message") or "").replace("\n", " ")),
)

STRATEGY = Strategy(
    INFO, description="Something that happened to an object.",
    schema=(
        Field("involvedObject", "object", "The object it is about.", required=True, fields=(
            Field("kind", "string", required=True), Field("name", "string", required=True),
            Field("namespace", "string"), Field("uid", "string"),
            *undescribed("apiVersion:string", "fieldPath:string", "resourceVersion:string"))),
        Field("reason", "string", "Why, in CamelCase."), Field("message", "string", "What, for a human."),
        Field("type", "string", "", enum=("Normal", "Warning")), Field("count", "integer", "Times it happened."),
        Field("firstTimestamp", "string"), Field("lastTimestamp", "string"),
        Field("source", "object", "The component that reported it."),
        *undescribed("action:string", "eventTime:string", "related", "reportingComponent:string",
                     "reportingInstance:string", "series"),
    ),
    columns=COLUMNS, sort_key=_by_time, validate=_validate,
)
