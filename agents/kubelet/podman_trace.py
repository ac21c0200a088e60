"""Timing every Podman API round trip of a kubelet, opt-in (``--podman-trace FILE``), for the benchmarks.

Each answered request becomes one JSON line ``{"call": "POST /pods/create", "start": <Unix s>, "seconds":
<until the answer's headers>, "status": 201}``: ``bench_pod_startup`` reads the file and says, pod by pod,
where the start time went, Podman call by call. Object ids and names in paths become ``{id}`` so that calls
of one kind group together; the query string is dropped. Nothing is recorded unless a trace is asked for.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote_plus, urlsplit

from agents.kubelet.cri import LABEL_POD_NAME

_VERSION = re.compile(r"^/v\d+(\.\d+)*")
_PREFIX = re.compile(r"^/libpod(?=/)")
# second segment of /containers/<id>/..., /pods/<id>/..., /images/<ref>/..., /networks/<name>/..., /exec/<id>/...
_OBJECT = re.compile(r"^/(containers|pods|images|networks|exec|volumes)/(?!json$|create$|stats$|prune$|pull$)[^/]+")


def call_name(method: str, url: str) -> str:
    """``POST http://d/v4.0.0/libpod/containers/ab12/start?x=1`` -> ``POST /containers/{id}/start``; a listing
    filtered on one pod's name label is told apart from a whole node's: ``GET /pods/json (one pod)``."""
    parts = urlsplit(url)
    path = _PREFIX.sub("", _VERSION.sub("", parts.path or "/"))
    path = _OBJECT.sub(lambda m: f"/{m.group(1)}/{{id}}", path)
    one_pod = path.endswith("/json") and LABEL_POD_NAME in unquote_plus(parts.query)
    return f"{method.upper()} {path}{' (one pod)' if one_pod else ''}"


class PodmanTrace:
    """Appends one line per Podman response to ``path``; ``hook`` is a ``requests`` response hook (it runs
    on the runtime's worker threads, hence the lock)."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed by close()
        self._lock = threading.Lock()

    def record(self, call: str, start: float, seconds: float, status: int) -> None:
        line = json.dumps({"call": call, "start": round(start, 6), "seconds": round(seconds, 6), "status": status})
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")

    def hook(self, response: Any, *_args: Any, **_kwargs: Any) -> None:
        seconds = response.elapsed.total_seconds()
        self.record(call_name(response.request.method or "", response.request.url or ""),
                    time.time() - seconds, seconds, int(response.status_code))

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_trace(path: Path) -> list[dict[str, Any]]:
    """The calls of a trace file, in the order they were answered (a torn last line is skipped)."""
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
