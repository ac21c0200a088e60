"""Pure checkers of recorded histories: nothing here does I/O, sleeps or reads a clock."""

from tests.chaos.checkers.history import Event, EventType, Operation, pair_events
from tests.chaos.checkers.leadership import LeaderClaim, LeaseRecord, check_lease_history, check_one_leader
from tests.chaos.checkers.linearizability import (
    CasOp,
    CheckResult,
    RegisterState,
    check_register,
)
from tests.chaos.checkers.promises import (
    PodObservation,
    Violation,
    WatchRecord,
    check_binds,
    check_lost_creates,
    check_lost_writes,
    check_watch_stream,
    deployment_lag,
)

__all__ = [
    "CasOp",
    "CheckResult",
    "Event",
    "EventType",
    "LeaderClaim",
    "LeaseRecord",
    "Operation",
    "PodObservation",
    "RegisterState",
    "Violation",
    "WatchRecord",
    "check_binds",
    "check_lease_history",
    "check_lost_creates",
    "check_lost_writes",
    "check_one_leader",
    "check_register",
    "check_watch_stream",
    "deployment_lag",
    "pair_events",
]
