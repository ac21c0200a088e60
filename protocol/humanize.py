"""Durations and ages printed the way kubectl prints them (``5s``, ``3m4s``, ``2h``, ``4d``)."""

from __future__ import annotations

import time

from protocol.objects import Obj, meta, parse_time


def duration(seconds: float) -> str:
    """kubectl's ``HumanDuration``: precise while small, coarser as it grows."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def since(timestamp: str | None, now: float | None = None) -> str:
    """Age of an RFC 3339 timestamp, ``<unknown>`` when there is none."""
    epoch = parse_time(timestamp)
    if epoch is None:
        return "<unknown>"
    return duration((now if now is not None else time.time()) - epoch)


def age(obj: Obj, now: float | None = None) -> str:
    return since(meta(obj).get("creationTimestamp"), now)
