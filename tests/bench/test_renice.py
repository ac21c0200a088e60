"""``renice``: every thread of a process takes the niceness, and threads it starts later inherit it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.scale_processes import renice

CHILD = """
import threading, time, sys
threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
print("ready", flush=True)
sys.stdin.readline()
threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
print("more", flush=True)
time.sleep(30)
"""


def nice_of_threads(pid: int) -> list[int]:
    # field 19 of /proc/<pid>/task/<tid>/stat, counted after the ")" that ends the command name
    return [int(stat.read_text().rsplit(")", 1)[1].split()[16]) for stat in Path(f"/proc/{pid}/task").glob("*/stat")]


def test_renice_reaches_every_thread_and_later_ones() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        base = os.nice(0)  # the child starts at ours (a test runner may itself be niced)
        assert set(nice_of_threads(child.pid)) == {base}
        target = min(19, base + 7)
        renice(child.pid, target)
        assert len(nice_of_threads(child.pid)) == 2
        assert set(nice_of_threads(child.pid)) == {target}
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "more"
        time.sleep(0.1)
        assert len(nice_of_threads(child.pid)) == 3
        assert set(nice_of_threads(child.pid)) == {target}
    finally:
        child.kill()
        child.wait()
