"""The benchmark suite: every benchmark in one command, one table, one JSON file.

Run: ``.venv/bin/python -m bench.suite --quick`` (under two minutes: a smoke run of every figure) or
``.venv/bin/python -m bench.suite`` (the full sizes; see docs/BENCHMARKS.md). Each benchmark runs in
its own process tree and writes its figures as JSON; ``--json PATH`` (default bench-results.json)
collects them all. Figures, not asserts: each comes with its baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

QUICK: dict[str, list[str]] = {
    "api": ["bench.bench_api", "--n", "300", "--concurrency", "32"],
    "watch": ["bench.bench_watch", "--n", "600", "--rate", "300"],
    "proxy": ["bench.bench_proxy", "--requests", "500", "--megabytes", "50"],
    "scale": ["bench.bench_scale", "--nodes", "100", "--pods", "1000"],
    "pod_startup": ["bench.bench_pod_startup", "--n", "5"],
}
FULL: dict[str, list[str]] = {
    "api": ["bench.bench_api", "--n", "5000", "--concurrency", "64"],
    "watch": ["bench.bench_watch", "--n", "20000", "--rate", "1000"],
    "proxy": ["bench.bench_proxy", "--requests", "20000", "--megabytes", "1000"],
    "scheduler": ["bench.bench_scheduler", "--nodes", "5000", "--pods", "20000"],
    "scale_1k": ["bench.bench_scale", "--nodes", "1000", "--pods", "1000"],
    "scale_10k": ["bench.bench_scale", "--nodes", "1000", "--pods", "10000"],
    "scale_50k": ["bench.bench_scale", "--nodes", "5000", "--pods", "50000", "--timeout", "3600"],
    "pod_startup": ["bench.bench_pod_startup", "--n", "30"],
}


def summarize(name: str, figures: Any) -> list[str]:
    """The headline of one benchmark's JSON, as ``name: key=value`` lines."""
    if isinstance(figures, list):  # bench_api: one dict per measure, plus ratios
        lines = []
        for row in figures:
            if row.get("name") == "ratios":
                lines += [f"{name}: {k} = {v}x" for k, v in row.items() if k != "name"]
            elif {"p50_ms", "p99_ms", "per_s"} <= set(row):
                lines.append(f"{name}: {row['name']}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
                             f"{row['per_s']}/s")
            else:
                lines.append(f"{name}: " + ", ".join(f"{k}={_short(v)}" for k, v in row.items()))
        return lines
    return [f"{name}: " + ", ".join(f"{k}={_short(v)}" for k, v in figures.items())]


def _short(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float) else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    parser.add_argument("--only", default="", help="comma-separated benchmarks to run")
    parser.add_argument("--json", default="bench-results.json")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    chosen = [n for n in plan if not args.only or n in args.only.split(",")]
    results: dict[str, Any] = {"mode": "quick" if args.quick else "full", "started": time.time()}
    failures = 0
    with tempfile.TemporaryDirectory(prefix="shoal-suite-") as tmp:
        for index, name in enumerate(chosen, 1):
            module, *rest = plan[name]
            if name == "pod_startup" and shutil.which("podman") is None:
                print(f"[{index}/{len(chosen)}] {name}: skipped (podman is not installed)", flush=True)
                results[name] = {"skipped": "podman is not installed"}
                continue
            out = Path(tmp) / f"{name}.json"
            print(f"[{index}/{len(chosen)}] {name}: python -m {module} {' '.join(rest)}", flush=True)
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", module, *rest, "--json", str(out)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
            took = time.monotonic() - started
            if done.returncode != 0 or not out.exists():
                failures += 1
                print(f"    failed after {took:.0f}s (exit {done.returncode}):\n" + done.stdout[-2000:], flush=True)
                results[name] = {"failed": done.returncode}
                continue
            results[name] = json.loads(out.read_text())
            print(f"    done in {took:.0f}s", flush=True)
    print("\nresults")
    for name in chosen:
        if isinstance(results.get(name), dict) and ("skipped" in results[name] or "failed" in results[name]):
            print(f"{name}: {results[name]}")
            continue
        for line in summarize(name, results[name]):
            print(line)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {args.json}")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
