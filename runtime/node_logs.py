"""Reading a pod's container logs from its node's kubelet over NATS (the client side of ``shoal logs``).

``fetch_logs`` finds the pod's node with a ``get`` through the API, then asks that node's kubelet on
``shoal.node.<node>.logs`` (see ``agents/kubelet/logs_server.py`` for the message format) and yields the
lines as they arrive. Errors are the protocol's typed errors: NotFound (no such pod or container),
BadRequest (pod not scheduled yet; container name needed), Unavailable (no kubelet answers for that node,
or the stream broke off). With ``follow`` the iterator ends when the container stops; leave it early with
``break`` inside ``contextlib.aclosing(...)`` so the kubelet is told to stop streaming at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from nats.errors import TimeoutError as NatsTimeout

from protocol import codec, subjects
from protocol.errors import BadRequest, Unavailable
from runtime.client import ApiClient

SILENCE_LIMIT = 15.0
"""A following kubelet sends an empty message after 5 s of silence; this much silence means it is gone."""


async def fetch_logs(
    client: ApiClient,
    namespace: str,
    pod: str,
    container: str | None = None,
    tail: int | None = None,
    follow: bool = False,
    previous: bool = False,
    *,
    timestamps: bool = False,
    since: float | None = None,
    limit_bytes: int | None = None,
    timeout: float = 10.0,
) -> AsyncGenerator[str, None]:
    await client.authorize_stream("log", namespace, pod)  # an impersonating client's user must be allowed
    obj = await client.get("Pod", pod, namespace)
    node = (obj.get("spec") or {}).get("nodeName")
    if not node:
        raise BadRequest(f'pod "{pod}" is not scheduled to a node yet: no logs to show',
                         {"kind": "Pod", "name": pod, "namespace": namespace})
    nc = client.nc
    subject = subjects.node_agent(str(node), "logs")
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, pending_msgs_limit=100_000, pending_bytes_limit=256 * 1024 * 1024)
    request: dict[str, Any] = {"namespace": namespace, "pod": pod, "inbox": inbox, "follow": follow,
                               "previous": previous}
    if container is not None:
        request["container"] = container
    if tail is not None:
        request["tail"] = tail
    if timestamps:
        request["timestamps"] = True
    if since is not None:
        request["since"] = since
    if limit_bytes is not None:
        request["limit_bytes"] = limit_bytes
    finished = False
    try:
        await nc.publish(subject, codec.encode(request), reply=inbox)
        expected = 1
        while True:
            try:
                msg = await sub.next_msg(timeout=timeout if expected == 1 else SILENCE_LIMIT)
            except NatsTimeout:
                raise Unavailable(f"the kubelet of node {node} did not answer a logs request within "
                                  f"{timeout if expected == 1 else SILENCE_LIMIT}s") from None
            if msg.headers and msg.headers.get("Status") == "503":
                raise Unavailable(f"no kubelet serves node {node}: is its agent running?")
            reply = codec.check_reply(codec.decode(msg.data))
            if reply.get("seq") != expected:
                raise Unavailable(f"the log stream from node {node} lost messages; retry")
            expected += 1
            for line in reply.get("lines") or []:
                yield str(line)
            if not reply.get("more"):
                finished = True
                return
    finally:
        if not finished:
            with contextlib.suppress(Exception):
                await nc.publish(subject, codec.encode({"cancel": inbox}))
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
