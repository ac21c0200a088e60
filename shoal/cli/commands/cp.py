"""``shoal cp SRC DEST``: copy files between this machine and a container, as ``kubectl cp`` does: a tar
stream over exec (the image needs ``tar``; busybox has it). One of SRC and DEST is ``[NAMESPACE/]POD:PATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import posixpath
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

from protocol.errors import Unavailable
from protocol.objects import name_of
from runtime.client import ApiClient
from runtime.node_stream import open_stream, run_exec
from shoal.cli.commands.logs import _container
from shoal.cli.errors import CliError, UsageError
from shoal.cli.registry import Command, add_namespace_flags
from shoal.cli.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC", help="a local path or [NAMESPACE/]POD:PATH")
    parser.add_argument("dest", metavar="DEST", help="a local path or [NAMESPACE/]POD:PATH")
    parser.add_argument("-c", "--container", default=None, help="the container (default: the pod's only one)")
    add_namespace_flags(parser, all_namespaces=False)


def remote(word: str, default_namespace: str) -> tuple[str, str, str] | None:
    """``[NAMESPACE/]POD:PATH`` as (namespace, pod, path); None for a local path."""
    if ":" not in word or word.startswith(("/", ".")):
        return None
    target, _, path = word.partition(":")
    namespace, slash, pod = target.rpartition("/")
    return (namespace if slash else default_namespace), pod, path


async def _exec(client: ApiClient, namespace: str, pod: str, container: str, command: list[str],
                stdin: bytes | None) -> bytes:
    out, err = bytearray(), bytearray()

    async def feed() -> AsyncIterator[bytes]:
        if stdin:
            yield stdin

    def collect(channel: int, data: bytes) -> None:
        (err if channel == 2 else out).extend(data)

    session = await open_stream(client, "exec", namespace, pod, container=container, command=command,
                                stdin=stdin is not None, tty=False)
    code = await run_exec(session, feed() if stdin is not None else None, collect)
    if code != 0:
        raise CliError(f"{' '.join(command)} in pod {pod} failed (exit {code}): {err.decode(errors='replace').strip()}")
    return bytes(out)


def pack(local: Path, arcname: str) -> bytes:
    if not local.exists():
        raise CliError(f"{local} does not exist")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(local, arcname=arcname or local.name)
    return buffer.getvalue()


def unpack(data: bytes, prefix: str, target: Path) -> None:
    """Extract the tar of ``prefix`` (a file or directory) as ``target``; nothing outside it, no links."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        for member in archive.getmembers():
            rest = member.name[len(prefix):].lstrip("/") if member.name.startswith(prefix) else member.name
            member.name = rest
            if member.issym() or member.islnk() or ".." in Path(rest).parts or os.path.isabs(rest):
                continue  # as kubectl: nothing written outside the destination
            if not rest:
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                member.name = target.name
                archive.extract(member, target.parent, filter="data")
                continue
            target.mkdir(parents=True, exist_ok=True)
            archive.extract(member, target, filter="data")


async def _run(session: Session, args: argparse.Namespace) -> int:
    src, dest = remote(args.src, session.namespace), remote(args.dest, session.namespace)
    if (src is None) == (dest is None):
        raise UsageError("one of SRC and DEST must be POD:PATH and the other a local path")
    client = await session.client()
    namespace, pod_name, path = src or dest  # type: ignore[misc]
    pod = await client.get("Pod", pod_name, namespace)
    container = _container(pod, args.container)
    try:
        if dest is not None:  # local -> pod: untar in the destination's directory, under its name
            packed = await asyncio.to_thread(pack, Path(args.src), posixpath.basename(path.rstrip("/")))
            directory = posixpath.dirname(path.rstrip("/")) or "."
            await _exec(client, namespace, name_of(pod), container, ["tar", "-xmf", "-", "-C", directory], packed)
            return 0
        data = await _exec(client, namespace, name_of(pod), container,
                           ["tar", "cf", "-", "-C", posixpath.dirname(path.rstrip("/")) or "/",
                            posixpath.basename(path.rstrip("/"))], None)
    except Unavailable as exc:
        raise CliError(f"cp with pod {pod_name}: {exc.message}") from None
    await asyncio.to_thread(unpack, data, posixpath.basename(path.rstrip("/")), Path(args.dest))
    return 0


COMMAND = Command(
    name="cp", help="copy files to and from containers", configure=_configure, run=_run,
    epilog="examples:\n  shoal cp ./config.txt web-7d9c-abcde:/tmp/config.txt\n"
           "  shoal cp web-7d9c-abcde:/var/log ./logs\n  shoal cp other-ns/db-0:/data/dump.sql ./dump.sql",
)
