"""Paging a list the way the Kubernetes API does (``limit`` and ``continue``), over a NATS list that answers
everything at once; pure.

The continue token is base64 JSON ``{"rv": N, "after": [namespace, name]}``: the next page lists again from
the API actors' cache at version N or newer (``resourceVersion`` as a floor, no datastore round trip) and
skips every object up to ``after`` in (namespace, name) order. Pages are therefore consistent in what they
skip, not one snapshot: an object created between pages behind the cursor is not seen (Kubernetes would
show page two from page one's snapshot).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from protocol.errors import BadRequest
from protocol.objects import Obj, meta


@dataclass(frozen=True, slots=True)
class Cursor:
    resource_version: int
    after: tuple[str, str]


def encode(cursor: Cursor) -> str:
    raw = json.dumps({"rv": cursor.resource_version, "after": list(cursor.after)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str) -> Cursor:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return Cursor(int(data["rv"]), (str(data["after"][0]), str(data["after"][1])))
    except (ValueError, KeyError, IndexError, TypeError):
        raise BadRequest(f"invalid continue token {token!r}") from None


def key(obj: Obj) -> tuple[str, str]:
    m = meta(obj)
    return str(m.get("namespace") or ""), str(m.get("name") or "")


def page(items: list[Obj], resource_version: int, limit: int | None, cursor: Cursor | None
         ) -> tuple[list[Obj], str, int | None]:
    """The page to answer, its continue token ("" on the last page) and how many items remain after it."""
    ordered = sorted(items, key=key)
    if cursor is not None:
        ordered = [o for o in ordered if key(o) > cursor.after]
    if not limit or len(ordered) <= limit:
        return ordered, "", None
    chosen = ordered[:limit]
    return chosen, encode(Cursor(resource_version, key(chosen[-1]))), len(ordered) - limit
