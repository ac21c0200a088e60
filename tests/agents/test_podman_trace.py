"""The kubelet's Podman call trace (``--podman-trace``) and the start-time breakdown bench_pod_startup makes of it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from agents.kubelet.podman_trace import PodmanTrace, call_name, read_trace
from bench.bench_pod_startup import breakdown, union_seconds


@pytest.mark.parametrize(("method", "url", "name"), [
    ("post", "http://d/v4.0.0/libpod/containers/ab12cd/start", "POST /containers/{id}/start"),
    ("GET", "http://d/v4.0.0/libpod/containers/json?all=true&filters=x", "GET /containers/json"),
    ("POST", "http://d/v4.0.0/libpod/containers/create", "POST /containers/create"),
    ("POST", "http://d/v4.0.0/libpod/pods/create", "POST /pods/create"),
    ("GET", "http://d/v4.0.0/libpod/pods/shoal_web_default_u1/json", "GET /pods/{id}/json"),
    ("GET", "http://d/v4.0.0/libpod/images/docker.io%2Flibrary%2Fbusybox/exists", "GET /images/{id}/exists"),
    ("POST", "http://d/v4.0.0/libpod/images/pull?reference=x", "POST /images/pull"),
    ("GET", "http://d/v1.40/containers/stats", "GET /containers/stats"),
    ("GET", "http://d/v4.0.0/libpod/pods/json?filters=%7B%22label%22%3A+%5B%22io.shoal.managed%3Dtrue%22%2C+"
            "%22io.shoal.pod-name%3Dweb%22%5D%7D", "GET /pods/json (one pod)"),
    ("GET", "http://d/v4.0.0/libpod/pods/json?filters=%7B%22label%22%3A+%5B%22io.shoal.managed%3Dtrue%22%5D%7D",
     "GET /pods/json"),
])
def test_call_names_group_calls_of_one_kind(method: str, url: str, name: str) -> None:
    assert call_name(method, url) == name


def test_trace_writes_one_line_per_response_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    trace = PodmanTrace(path)
    response = SimpleNamespace(elapsed=SimpleNamespace(total_seconds=lambda: 0.25), status_code=204,
                               request=SimpleNamespace(method="POST", url="http://d/v4.0.0/libpod/pods/p1/start"))
    before = time.time()
    trace.hook(response)
    trace.close()
    trace.record("GET /x", 1.0, 0.1, 200)  # after close: dropped, not an error
    with path.open("a") as f:
        f.write('{"call": "torn')
    (call,) = read_trace(path)
    assert call["call"] == "POST /pods/{id}/start" and call["status"] == 204 and call["seconds"] == 0.25
    assert before - 0.25 - 0.01 <= call["start"] <= time.time() - 0.25 + 0.01
    assert read_trace(tmp_path / "absent.jsonl") == []
    assert json.loads(path.read_text().splitlines()[0])["call"] == "POST /pods/{id}/start"


def test_union_counts_overlapping_calls_once() -> None:
    assert union_seconds([]) == 0
    assert union_seconds([(0, 1), (0.5, 2), (3, 4), (3.2, 3.5)]) == pytest.approx(3.0)


def test_breakdown_splits_each_pod_window_and_counts_calls_per_pod() -> None:
    calls = [
        {"call": "GET /pods/json", "start": 10.1, "seconds": 0.1},
        {"call": "GET /containers/json", "start": 10.1, "seconds": 0.2},  # side by side with the first
        {"call": "POST /pods/create", "start": 10.4, "seconds": 0.2},
        {"call": "GET /pods/json", "start": 20.2, "seconds": 0.1},
        {"call": "GET /pods/json", "start": 15.0, "seconds": 0.1},  # outside every window: nobody's
    ]
    result = breakdown(calls, [(10.0, 11.0), (20.0, 20.5)])
    rows = {r["call"]: r for r in result["calls"]}
    assert rows["GET /pods/json"]["per_pod"] == 1.0 and rows["GET /pods/json"]["mean_ms"] == 100.0
    assert rows["POST /pods/create"]["ms_per_pod"] == 100.0  # 200 ms in one pod of two
    phases = result["phases"]
    assert phases["total"] == 750.0  # (1000 + 500) / 2
    assert phases["before first Podman call"] == 150.0  # (100 + 200) / 2
    assert phases["in Podman"] == pytest.approx(250.0)  # (200 + 200 + 100) / 2: the overlap counts once
    assert phases["kubelet between calls"] == pytest.approx(50.0)  # 10.3 .. 10.4 in the first pod
    assert phases["after last Podman call"] == pytest.approx(300.0)  # (400 + 200) / 2
    assert phases["Podman calls per pod"] == 2.0
    assert breakdown(calls, []) == {"calls": [], "phases": {}}
