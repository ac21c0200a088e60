"""The processes of a ``bench_scale`` run by name, and their per-process figures summed by role.

A run starts ``api_actors`` API actor processes (one NATS queue group: ``bench.common.cluster`` gives each
the same arguments), the hollow-node processes and, unless the pods are created as a backlog first, the
scheduler, in that order. The API actors are named ``api-1``, ``api-2``…; every figure reported for ``api``
(resident memory, CPU seconds, GC seconds) is the sum over them, so control-plane memory and CPU stay
comparable between runs with one API actor and runs with several, and each one is listed on its own too.
"""

from __future__ import annotations

import os

API = "api"


def process_names(api_actors: int, hollow: int, scheduler: bool) -> list[str]:
    """The names of the processes ``cluster(api_actors=..., extra=hollow + [scheduler])`` starts, in order."""
    if api_actors < 1:
        raise ValueError(f"a run needs at least one API actor, not {api_actors}")
    return ([f"{API}-{k}" for k in range(1, api_actors + 1)] + [f"hollow-{k}" for k in range(hollow)]
            + (["scheduler"] if scheduler else []))


def role(name: str) -> str:
    """``api`` for every API actor (``api-1``, ``api-2``…), the name itself for any other process."""
    return API if name == API or name.startswith(f"{API}-") else name


def by_role(per_process: dict[str, float]) -> dict[str, float]:
    """Per-process figures summed by role (every API actor into ``api``), in the order roles first appear."""
    out: dict[str, float] = {}
    for name, value in per_process.items():
        out[role(name)] = round(out.get(role(name), 0.0) + value, 1)
    return out


def api_processes(per_process: dict[str, float]) -> dict[str, float]:
    """The figure of each API actor process alone (``api-1``, ``api-2``…)."""
    return {name: value for name, value in per_process.items() if role(name) == API}


def renice(pid: int, niceness: int) -> None:
    """Set ``niceness`` on every thread of ``pid`` (Linux keeps a nice value per thread; threads started later
    take their creator's). The hollow processes stand for other machines: at a higher niceness they take the CPU
    the control plane leaves, so a figure shows the control plane's latency, not a share of 2 cores among 5
    busy processes."""
    for task in os.listdir(f"/proc/{pid}/task"):
        os.setpriority(os.PRIO_PROCESS, int(task), niceness)
