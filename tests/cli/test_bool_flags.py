"""kubectl's ``--flag=true|false`` spelling for the CLI's boolean flags, on every command that has one."""

from __future__ import annotations

import pytest

from shoal.cli.main import build_parser
from shoal.cli.registry import normalize_bool_flags


@pytest.mark.parametrize(
    ("argv", "dest", "expected"),
    [
        (["get", "pods"], "watch", False),
        (["get", "pods", "-w"], "watch", True),
        (["get", "pods", "--watch=true"], "watch", True),
        (["get", "pods", "--watch=false"], "watch", False),
        (["events", "--watch=false"], "watch", False),
        (["events", "-w"], "watch", True),
        (["rollout", "status", "deploy/web"], "watch", True),
        (["rollout", "status", "deploy/web", "--watch=false"], "watch", False),
        (["delete", "pod", "x", "--wait=false"], "wait", False),
    ],
)
def test_bool_flags_accept_kubectl_spelling(argv: list[str], dest: str, expected: bool) -> None:
    args = build_parser().parse_args(normalize_bool_flags(argv))
    assert getattr(args, dest) is expected


def test_a_bad_bool_value_is_left_for_argparse_to_refuse() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(normalize_bool_flags(["get", "pods", "--watch=maybe"]))
