"""The Events stream keeps what the API actors are told to (--event-ttl, --events-max-mib), also when an
older version or other settings made it."""

from __future__ import annotations

import argparse

import nats

from actors.api.__main__ import _arguments, _settings
from actors.api.streams import EVENTS_MAX_BYTES, ensure_streams
from protocol import subjects
from runtime.nats_server import NatsServer


def test_the_flags_set_the_events_retention() -> None:
    parser = argparse.ArgumentParser()
    _arguments(parser)
    settings = _settings(parser.parse_args(["--event-ttl", "600", "--events-max-mib", "64"]))
    assert (settings.event_ttl, settings.events_max_bytes) == (600.0, 64 * 2**20)
    default = _settings(parser.parse_args([]))
    assert (default.event_ttl, default.events_max_bytes) == (3600.0, EVENTS_MAX_BYTES)


async def test_the_stream_takes_the_latest_retention(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        await ensure_streams(nc)
        info = await nc.jetstream().stream_info(subjects.EVENTS_STREAM)
        assert (info.config.max_age, info.config.max_bytes) == (3600.0, EVENTS_MAX_BYTES)
        await ensure_streams(nc, events_max_age=600.0, events_max_bytes=64 * 2**20)
        info = await nc.jetstream().stream_info(subjects.EVENTS_STREAM)
        assert (info.config.max_age, info.config.max_bytes) == (600.0, 64 * 2**20)
        assert info.config.max_msgs_per_subject == 1
    finally:
        await nc.close()
