"""``deploy/web`` or ``deploy web``: one named object, as the scale, rollout and logs commands take it."""

from __future__ import annotations

from protocol.kinds import KindInfo
from shoal.cli.errors import UsageError
from shoal.cli.resources import resolve_kind


def one_target(words: list[str], *, default_kind: str | None = None, allowed: tuple[str, ...] = ()) -> tuple[
        KindInfo, str]:
    if len(words) == 1 and "/" in words[0]:
        kind, _, name = words[0].partition("/")
    elif len(words) == 2:
        kind, name = words
    elif len(words) == 1 and default_kind:
        kind, name = default_kind, words[0]
    else:
        raise UsageError("name one object: TYPE/NAME or TYPE NAME (e.g. deploy/web)")
    info = resolve_kind(kind)
    if allowed and info.kind not in allowed:
        raise UsageError(f"{info.plural} cannot be used here; use one of: "
                         + ", ".join(sorted(a.lower() for a in allowed)))
    if not name:
        raise UsageError("the object's name is missing (TYPE/NAME)")
    return info, name
