"""A suite stopped while a benchmark runs stops that benchmark's whole process group: no nats-server, API
actor or pod is left behind (session 12: a suite ended with SIGTERM left a benchmark's servers, kubelet and
Podman pod running)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(("sig", "exits"), [
    (signal.SIGTERM, {128 + signal.SIGTERM}),
    # started in the background by a shell (SIGINT ignored), then interrupted: ``kill -INT`` still works
    (signal.SIGINT, {-signal.SIGINT, 128 + signal.SIGINT}),
])
def test_a_stopped_suite_stops_the_running_benchmark_and_its_servers(tmp_path: Path, sig: signal.Signals,
                                                                      exits: set[int]) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    suite = subprocess.Popen([sys.executable, "-m", "bench.suite", "--quick", "--only", "watch",
                              "--json", str(tmp_path / "out.json")],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             preexec_fn=ignore_sigint if sig == signal.SIGINT else None)
    try:
        deadline = time.monotonic() + 60
        while not any("nats-server" in p for p in processes_mentioning(str(tmp_path))):
            assert time.monotonic() < deadline, "the benchmark never started its nats-server"
            assert suite.poll() is None, suite.communicate()[0]
            time.sleep(0.1)
        suite.send_signal(sig)
        output, _ = suite.communicate(timeout=60)
    finally:
        if suite.poll() is None:
            suite.kill()
    assert suite.returncode in exits, output
    assert "the suite was stopped" in output
    deadline = time.monotonic() + 10
    while (left := processes_mentioning(str(tmp_path))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == []
