"""A benchmark run on its own from a background shell (SIGINT ignored, as under ``nohup ... &``) stops through
its cleanup on SIGINT and on SIGTERM sent to it alone: neither the nats-server it started in a session of its
own nor its API actor outlives it (session 13: SIGINT did nothing, and SIGTERM left both running)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bench.test_suite_stop import ignore_sigint, processes_mentioning


def state_and_parent(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent pid from ``/proc``; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def running(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie is not)."""
    return {pid for pid in pids if (stat := state_and_parent(pid)) is not None and stat[0] != "Z"}


def alive_descendants(root: int) -> set[int]:
    """The processes below ``root`` that are running."""
    parents = {int(e.name): stat[1] for e in Path("/proc").iterdir()
               if e.name.isdigit() and (stat := state_and_parent(int(e.name))) is not None and stat[0] != "Z"}
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_benchmark_stopped_alone_leaves_no_server(tmp_path: Path, sig: signal.Signals) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    bench = subprocess.Popen([sys.executable, "-m", "bench.bench_watch", "--n", "200000", "--rate", "1000"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             preexec_fn=ignore_sigint, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not any("nats-server" in p for p in processes_mentioning(str(tmp_path))):
            assert time.monotonic() < deadline, "the benchmark never started its nats-server"
            assert bench.poll() is None, bench.communicate()[0]
            time.sleep(0.1)
        time.sleep(1.0)  # into its run, past the server's start
        children = alive_descendants(bench.pid)
        assert len(children) >= 2, children  # at least nats-server and the API actor
        bench.send_signal(sig)  # to the benchmark alone, not its process group
        output, _ = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
    assert bench.returncode != 0, output  # stopped, not finished
    deadline = time.monotonic() + 10
    while ((left := processes_mentioning(str(tmp_path))) or running(children)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], output
    assert running(children) == set(), output
