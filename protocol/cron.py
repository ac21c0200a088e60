"""Cron schedules of CronJobs: parsing (by ``cronsim``), time zones, and the schedule times in a span.

Pure functions shared by validation (a CronJob with an unusable schedule is refused) and the CronJob
controller. What Kubernetes accepts, we accept: five cron fields, or one of the macros in ``MACROS``;
``spec.timeZone`` is an IANA zone name. ``CRON_TZ=``/``TZ=`` prefixes are refused (Kubernetes' message),
and so is ``@every`` (not a cron schedule; Kubernetes accepts it through its cron library, we do not).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
          "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
MAX_MISSED = 100
"""Past this many missed schedules the controller warns (``TooManyMissedTimes``), as Kubernetes."""


class ScheduleError(ValueError):
    """A schedule or time zone that cannot be used; the message says why."""


def zone(name: str | None) -> tzinfo:
    """The time zone of ``spec.timeZone`` (UTC when unset); ScheduleError when unknown."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}") from exc


def cron_expression(schedule: str) -> str:
    """The five-field expression of ``schedule`` (a macro expanded); ScheduleError when it is not one."""
    text = schedule.strip()
    if "TZ=" in text.split(" ", 1)[0]:
        raise ScheduleError("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if text.startswith("@"):
        expanded = MACROS.get(text.lower())
        if expanded is None:
            raise ScheduleError(f"unsupported schedule macro {text!r}; supported: {', '.join(MACROS)}")
        return expanded
    fields = len(text.split())
    if fields != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {fields}: {text!r}")
    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ScheduleError(f"invalid schedule {text!r}: {exc}") from exc
    return text


def check_schedule(schedule: str, time_zone: str | None) -> None:
    """Raise ScheduleError when a CronJob's schedule or time zone is unusable."""
    cron_expression(schedule)
    zone(time_zone)


def local_time(epoch: float, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(epoch, tz)


def next_after(expr: str, tz: tzinfo, epoch: float) -> float:
    """The first schedule time strictly after ``epoch``."""
    return next(CronSim(expr, local_time(int(epoch), tz))).timestamp()


def most_recent(expr: str, tz: tzinfo, earliest: float, now: float) -> tuple[float | None, int]:
    """The latest schedule time in ``(earliest, now]`` and how many there are, counted up to
    ``MAX_MISSED + 1`` (past that the count says "more than 100", not the exact number)."""
    if earliest > now:
        return None, 0
    latest: float | None = None
    count = 0
    for moment in CronSim(expr, local_time(int(earliest), tz)):
        t = moment.timestamp()
        if t > now:
            return latest, count
        latest, count = t, count + 1
        if count > MAX_MISSED:
            break
    # many missed: the most recent one, walking back from the second after now (so ``now`` counts)
    back = next(CronSim(expr, local_time(int(now) + 1, tz), reverse=True)).timestamp()
    return back, count
