"""The console's HTTP side without a browser: which paths are public, the files it serves (every one shipped
as package data), and nothing outside ``ui/``."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from actors.gateway import console

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("path", "accept", "public"), [
    ("/ui/", "", True), ("/ui/views/pod.js", "*/*", True), ("/ui", "", True),
    ("/", "text/html,application/xhtml+xml", True), ("/", "application/json", False),
    ("/api/v1/pods", "text/html", False), ("/uix", "", False),
])
def test_public_paths(path: str, accept: str, public: bool) -> None:
    assert console.is_public(path, accept) is public


def test_files_are_read_once_and_typed() -> None:
    files = console.Console().files
    assert {"index.html", "app.js", "api.js", "actions.js", "util.js", "style.css", "views/cluster.js",
            "views/workloads.js", "views/pod.js", "views/events.js"} <= set(files)
    assert files["app.js"][1] == "text/javascript" and files["style.css"][1] == "text/css"
    assert not any(name.startswith(("..", "/")) for name in files)


def test_every_console_file_is_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "actors.gateway"]
    for name in console.Console().files:
        assert any(fnmatch.fnmatch(f"ui/{name}", p) and f"ui/{name}".count("/") == p.count("/") for p in patterns), \
            f"ui/{name} is not in pyproject's package-data for actors.gateway"
