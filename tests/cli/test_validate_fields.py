"""``shoal apply/create --validate``: unknown fields refused (strict) or warned and dropped (default)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import ShoalCli


async def test_cli_validate_strict_refuses_unknown_fields(cli: ShoalCli, tmp_path: Path) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo}\ndata: {a: b}\ndta: {c: d}\n")
    strict = await cli("apply", "--validate=strict", "-f", str(path))
    assert strict.rc != 0 and 'unknown field "dta"' in strict.err, strict
    warned = await cli("create", "-f", str(path))
    assert warned.rc == 0 and 'unknown field "dta"' in warned.err, warned
