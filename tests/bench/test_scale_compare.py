"""bench_scale's pure parts for several API actors: the processes started and named, the per-process figures
summed by role, and the side-by-side comparison (``--compare-events``, ``--compare-api-actors``). No cluster."""

from __future__ import annotations

from typing import Any

import pytest

from bench.bench_scale import hollow_commands
from bench.common import process_commands
from bench.scale_compare import API_ACTORS, EVENTS, alternate, compare, comparison_lines, ratio
from bench.scale_processes import api_processes, by_role, process_names, role


def test_n_api_actors_get_the_same_command_first() -> None:
    hollow = hollow_commands(10, 2, 10.0)
    commands = process_commands(3, extra=[*hollow, ["actors.scheduler"]], api_args=["--no-audit"])
    assert commands[:3] == [["actors.api", "--no-audit"]] * 3
    assert commands[3:] == [*hollow, ["actors.scheduler"]]
    commands[0].append("--changed")  # each command its own list: one edited leaves the others alone
    assert commands[1] == ["actors.api", "--no-audit"]


@pytest.mark.parametrize(("api_actors", "hollow", "scheduler"), [(1, 1, True), (2, 2, True), (2, 1, False)])
def test_names_match_the_processes_started(api_actors: int, hollow: int, scheduler: bool) -> None:
    extra = hollow_commands(100, hollow, 10.0) + ([["actors.scheduler"]] if scheduler else [])
    names = process_names(api_actors, hollow, scheduler)
    commands = process_commands(api_actors, extra)
    assert len(names) == len(commands)
    for name, command in zip(names, commands, strict=True):
        assert (role(name) == "api") == (command[0] == "actors.api")
    assert names[:api_actors] == [f"api-{k}" for k in range(1, api_actors + 1)]
    assert ("scheduler" in names) == scheduler


def test_no_api_actor_is_refused() -> None:
    with pytest.raises(ValueError):
        process_names(0, 1, True)


def test_api_actors_are_summed_and_listed_each() -> None:
    rss = {"api-1": 400.0, "api-2": 250.5, "hollow-0": 900.0, "scheduler": 140.0}
    assert by_role(rss) == {"api": 650.5, "hollow-0": 900.0, "scheduler": 140.0}
    assert api_processes(rss) == {"api-1": 400.0, "api-2": 250.5}
    assert by_role({"api-1": 400.0, "scheduler": 140.0}) == {"api": 400.0, "scheduler": 140.0}
    assert role("apiserver") == "apiserver"


def run(seconds: float, cpu_api: float, *, api_actors: int = 1, correct: bool = True) -> dict[str, Any]:
    return {"nodes": 200, "pods": 2000, "all_running_s": seconds, "all_bound_s": seconds - 1,
            "create_p99_ms": 40.0, "probe_write_p50_ms": 5.0, "probe_write_p99_ms": 80.0, "oldest_lease_s": 12.0,
            "nodes_lease_stale": 0, "datastore_writes_per_pod": 5.0, "pod_writes_per_pod": 3.0,
            "event_messages_per_pod": 0.0, "rss_control_plane_mib": 500.0, "api_actors": api_actors,
            "rss_mib": {"api": 300.0, "scheduler": 100.0, "hollow-0": 800.0},
            "cpu_s": {"api": cpu_api, "scheduler": 10.0, "hollow-0": 20.0}, "gc_s": {"api": 1.0},
            "correct": correct}


def test_api_actor_comparison_takes_the_best_time_and_the_least_cpu() -> None:
    runs = {"1": [run(40.0, 30.0), run(50.0, 25.0)], "2": [run(20.0, 36.0, api_actors=2)]}
    result = compare(API_ACTORS, runs)
    assert result["compare_api_actors"] is True and result["repeat"] == 1 and result["correct"]
    assert (result["all_running_s_1"], result["all_running_s_2"]) == (40.0, 20.0)
    assert (result["running_per_s_1"], result["running_per_s_2"]) == (50.0, 100.0)
    assert (result["api_cpu_s_1"], result["api_cpu_s_2"]) == (25.0, 36.0)  # least of each side's runs
    assert (result["cpu_total_s_1"], result["cpu_total_s_2"]) == (55.0, 66.0)
    assert result["time_ratio"] == 0.5 and result["cpu_ratio"] == 1.2
    assert result["ratios"]["running_per_s"] == 2.0 and result["ratios"]["api_cpu_s"] == 1.44
    assert result["ratios"]["event_messages_per_pod"] is None  # 0 on the first side: no ratio
    assert result["runs"] == runs


def test_events_comparison_keeps_its_json_shape() -> None:
    result = compare(EVENTS, {"off": [run(40.0, 30.0)], "on": [run(44.0, 33.0, correct=False)]})
    assert result["compare_events"] is True and not result["correct"]
    for key in ("all_running_s", "all_bound_s", "datastore_writes_per_pod", "pod_writes_per_pod",
                "event_messages_per_pod", "create_p99_ms", "rss_control_plane_mib", "cpu_total_s"):
        assert f"{key}_off" in result and f"{key}_on" in result
    assert result["time_ratio"] == 1.1 and result["cpu_ratio"] == 1.05
    assert set(result["runs"]) == {"off", "on"}


def test_sides_alternate() -> None:
    seen: list[Any] = []

    def run_side(value: Any) -> dict[str, Any]:
        seen.append(value)
        return run(10.0, 1.0, api_actors=value)

    runs = alternate(API_ACTORS, 2, run_side)
    assert seen == [1, 2, 1, 2]
    assert [r["api_actors"] for r in runs["2"]] == [2, 2]


def test_table_shows_every_figure_with_its_ratio() -> None:
    lines = comparison_lines(API_ACTORS, compare(API_ACTORS, {"1": [run(40.0, 30.0)], "2": [run(20.0, 36.0)]}))
    assert "1 API actor" in lines[1] and "2 API actors" in lines[1]
    running = next(line for line in lines if "time to all Running" in line)
    assert running.split()[-3:] == ["40.0", "20.0", "x0.5"]
    assert next(line for line in lines if "event-stream" in line).endswith("-")
    assert lines[-1].startswith("  all Running x0.5, CPU of every process x1.1")


def test_ratio() -> None:
    assert ratio(2.0, 3.0) == 1.5
    assert ratio(0.0, 3.0) is None


def test_suite_rows_for_the_api_actor_comparison() -> None:
    from bench.suite import FULL, QUICK, table_rows

    assert "api_actors" in FULL and "api_actors_150k" in FULL and not any(n.startswith("api_actors") for n in QUICK)
    rows = table_rows("api_actors", compare(API_ACTORS, {"1": [run(40.0, 30.0)], "2": [run(20.0, 36.0)]}))
    assert rows[0].rate == "20 s" and rows[0].baseline == "1 API actor: 40 s" and rows[0].ratio == "0.50x"
