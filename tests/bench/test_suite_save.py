"""The suite writes its figures after every benchmark, so a full run stopped midway keeps what it measured."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.suite import Row, save


def test_figures_are_written_after_each_benchmark_and_marked_partial_until_the_end(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    results: dict[str, object] = {"mode": "full", "api": {"rate": 10.0}}
    rows = [Row("API create", "1 ms", "2 ms")]
    started = time.monotonic() - 5.0

    save(path, results, rows, started, finished=False)
    first = json.loads(path.read_text())
    assert first["partial"] is True and first["api"] == {"rate": 10.0}
    assert first["table"][0]["figure"] == "API create" and first["seconds"] >= 5.0

    results["watch"] = {"p99": 1.0}
    save(path, results, rows, started, finished=True)
    last = json.loads(path.read_text())
    assert last["partial"] is False and last["watch"] == {"p99": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left beside it
