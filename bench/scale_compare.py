"""Two sides of one ``bench_scale`` option, run alternately in one invocation and reported side by side.

``--compare-events`` (events off, then on) and ``--compare-api-actors`` (1 API actor, then 2) are the same
machinery: the sides alternate ``--repeat`` times, so that a noisy neighbour weighs on both; the run with the
best time of each side gives that side's figures, except the CPU seconds, which are the least of each side's
runs (CPU varies less than time, and the least is the cost without interference). The JSON has every figure
as ``<figure>_<side>`` (``all_running_s_off``, ``all_running_s_2``…), ``time_ratio`` and ``cpu_ratio`` (second
side / first), the ratio of every figure under ``ratios``, and every run under ``runs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Run = dict[str, Any]


@dataclass(frozen=True)
class Comparison:
    flag: str
    """The JSON key marking a comparison of this kind (``compare_events``)."""
    option: str
    """The ``bench_scale`` argument each side sets (``events``)."""
    sides: tuple[Any, Any]
    """The option's value on the first and the second side; ``str`` of each names the side in the JSON."""
    labels: tuple[str, str]
    """Each side as the printed table heads it."""

    @property
    def names(self) -> tuple[str, str]:
        return str(self.sides[0]), str(self.sides[1])


EVENTS = Comparison("compare_events", "events", ("off", "on"), ("events off", "events on"))
API_ACTORS = Comparison("compare_api_actors", "api_actors", (1, 2), ("1 API actor", "2 API actors"))


def _get(key: str) -> Callable[[Run], float]:
    return lambda r: float(r[key])


def _api(figure: str) -> Callable[[Run], float]:
    return lambda r: float(r[figure].get("api", 0.0))


FIGURES: tuple[tuple[str, str, Callable[[Run], float]], ...] = (
    ("all_running_s", "time to all Running (s)", _get("all_running_s")),
    ("running_per_s", "pods Running per second", lambda r: round(r["pods"] / max(1e-9, r["all_running_s"]), 1)),
    ("all_bound_s", "time to all bound (s)", _get("all_bound_s")),
    ("create_p99_ms", "API create p99 (ms)", _get("create_p99_ms")),
    ("probe_write_p50_ms", "paced probe write p50 (ms)", _get("probe_write_p50_ms")),
    ("probe_write_p99_ms", "paced probe write p99 (ms)", _get("probe_write_p99_ms")),
    ("oldest_lease_s", "oldest lease (s)", _get("oldest_lease_s")),
    ("nodes_lease_stale", "nodes whose lease went stale", _get("nodes_lease_stale")),
    ("datastore_writes_per_pod", "datastore writes per pod", _get("datastore_writes_per_pod")),
    ("pod_writes_per_pod", "pod writes per pod", _get("pod_writes_per_pod")),
    ("event_messages_per_pod", "event-stream messages per pod", _get("event_messages_per_pod")),
    ("rss_control_plane_mib", "control-plane RSS (MiB)", _get("rss_control_plane_mib")),
    ("api_rss_mib", "API actors' RSS (MiB)", _api("rss_mib")),
    ("api_gc_s", "API actors' GC (s)", _api("gc_s")),
)
"""Figures taken from the best-time run of each side: (JSON key, printed name, how to read it from a run)."""
CPU_FIGURES: tuple[tuple[str, str, Callable[[Run], float]], ...] = (
    ("cpu_total_s", "CPU of every process (s)", lambda r: float(sum(r["cpu_s"].values()))),
    ("api_cpu_s", "API actors' CPU (s)", _api("cpu_s")),
)
"""Figures taken as the least over each side's runs."""


def ratio(first: float, second: float) -> float | None:
    """``second / first`` to two places; None when the first side is 0 (no ratio to speak of)."""
    return round(second / first, 2) if first else None


def alternate(spec: Comparison, repeat: int, run_side: Callable[[Any], Run]) -> dict[str, list[Run]]:
    """``repeat`` pairs of runs, the first side then the second each time; ``run_side`` is given the value."""
    runs: dict[str, list[Run]] = {name: [] for name in spec.names}
    for _ in range(repeat):
        for value, name in zip(spec.sides, spec.names, strict=True):
            runs[name].append(run_side(value))
    return runs


def compare(spec: Comparison, runs: dict[str, list[Run]]) -> dict[str, Any]:
    """The runs of each side (at least one each) side by side, with the ratios (second side / first)."""
    first, second = spec.names
    best = {name: min(runs[name], key=lambda r: r["all_running_s"]) for name in spec.names}
    out: dict[str, Any] = {"nodes": best[second]["nodes"], "pods": best[second]["pods"], spec.flag: True,
                           "repeat": len(runs[second]),
                           "correct": all(r["correct"] for name in spec.names for r in runs[name])}
    for key, _, read in FIGURES:
        for name in spec.names:
            out[f"{key}_{name}"] = read(best[name])
    for key, _, read in CPU_FIGURES:
        for name in spec.names:
            out[f"{key}_{name}"] = round(min(read(r) for r in runs[name]), 1)
    out["time_ratio"] = round(out[f"all_running_s_{second}"] / max(1e-9, out[f"all_running_s_{first}"]), 2)
    out["cpu_ratio"] = round(out[f"cpu_total_s_{second}"] / max(1e-9, out[f"cpu_total_s_{first}"]), 2)
    out["ratios"] = {key: ratio(out[f"{key}_{first}"], out[f"{key}_{second}"]) for key, _, _ in FIGURES + CPU_FIGURES}
    out["runs"] = {name: runs[name] for name in spec.names}
    return out


def comparison_lines(spec: Comparison, result: dict[str, Any]) -> list[str]:
    """The comparison as a printed table: every figure, each side, and the ratio (second side / first)."""
    first, second = spec.names
    lines = [f"{spec.labels[1]} / {spec.labels[0]}, {result['nodes']:,} nodes / {result['pods']:,} pods, "
             f"best of {result['repeat']} each",
             f"  {'figure':<32} {spec.labels[0]:>14} {spec.labels[1]:>14} {'ratio':>7}"]
    for key, title, _ in FIGURES + CPU_FIGURES:
        r = result["ratios"][key]
        lines.append(f"  {title:<32} {result[f'{key}_{first}']:>14} {result[f'{key}_{second}']:>14} "
                     f"{'-' if r is None else f'x{r}':>7}")
    lines.append(f"  all Running x{result['time_ratio']}, CPU of every process x{result['cpu_ratio']}; "
                 f"correct: {'yes' if result['correct'] else 'NO'}")
    return lines
