"""Running a command-line tool (``shoal``, ``kubectl``) as an asyncio subprocess in a test, and reading a
running one's output: the event loop keeps serving the in-process actors meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    rc: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.rc}\n--- stdout\n{self.out}--- stderr\n{self.err}"


async def run_tool(argv: Sequence[str], *, what: str, env: dict[str, str], cwd: Path | None = None,
                   stdin: str | None = None, timeout: float = 60) -> Result:
    """Run ``argv`` to its end (``stdin`` written to it, when given); a run longer than ``timeout`` seconds is
    killed and fails the test, naming the command as ``what``."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env, cwd=cwd)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"`{what}` did not finish within {timeout}s") from None
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def read_until(stream: asyncio.StreamReader | None, needle: str, timeout: float = 30) -> str:
    """Read lines until one contains ``needle``; return everything read."""
    assert stream is not None
    seen = ""

    async def reader() -> str:
        nonlocal seen
        while True:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"stream ended before {needle!r}; got:\n{seen}")
            seen += line.decode()
            if needle in line.decode():
                return seen

    try:
        return await asyncio.wait_for(reader(), timeout)
    except TimeoutError:
        raise AssertionError(f"no {needle!r} within {timeout}s; got:\n{seen}") from None
