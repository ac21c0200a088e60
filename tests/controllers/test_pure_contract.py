"""Every controller and cloud plan module is under the import-linter "pure" contract, so a new
``*_plan.py`` cannot be added without it (lint-imports then checks it imports no I/O)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = "Controller and cloud decisions are pure: no nats, asyncio, runtime or structlog"


def test_every_plan_module_is_in_the_pure_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = {c["name"]: c for c in config["tool"]["importlinter"]["contracts"]}
    pure = contracts[CONTRACT]
    assert pure["type"] == "forbidden"
    assert {"nats", "asyncio", "runtime", "structlog"} <= set(pure["forbidden_modules"])
    wanted = {f"actors.{package}.{path.stem}" for package in ("controllers", "cloud")
              for path in (ROOT / "actors" / package).glob("*_plan.py")}
    wanted.add("actors.controllers.expectations")
    assert wanted - set(pure["source_modules"]) == set()
