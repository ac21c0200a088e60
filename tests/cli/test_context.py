"""``runtime.context``: which server and credentials a client ends up with, from the environment and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.context import Context, ContextError, bus_config, load_context, same_servers, write_context

URL = "nats://127.0.0.1:4333"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("SHOAL_SERVER", "SHOAL_USER", "SHOAL_PASSWORD", "SHOAL_CREDS", "SHOAL_TOKEN", "SHOAL_TLS_CA",
                 "SHOAL_CONTEXT", "SHOAL_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def _write(path: Path, server: str = URL, user: str = "cli") -> Path:
    write_context(path, Context((server,), user, f"pw-{user}", None, "c"))
    return path


def test_default_state_dir_context_is_found_with_no_server_given(home: Path) -> None:
    _write(home / "data" / "shoal" / "context.json")
    bus = bus_config(None)
    assert (bus.servers, bus.user, bus.password) == ((URL,), "cli", "pw-cli")
    assert (home / "data" / "shoal" / "context.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("server", "used"), [
    (URL, True), ("nats://localhost:4333", True), ("127.0.0.1:4333", True), ("tls://127.0.0.1:4333", True),
    ("nats://127.0.0.1:4222", False), (f"{URL},nats://127.0.0.1:4444", False),
])
def test_credentials_go_only_to_the_contexts_server(home: Path, server: str, used: bool) -> None:
    _write(home / "data" / "shoal" / "context.json")
    bus = bus_config(server)
    assert bus.servers == tuple(server.split(","))  # the server given is the one
    assert (bus.user == "cli") is used


def test_order_environment_then_shoal_context_then_state_dir_then_config_home(home: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _write(home / "config" / "shoal" / "context.json", user="from-config")
    assert bus_config(None).user == "from-config"
    _write(home / "data" / "shoal" / "context.json", user="from-state")
    assert bus_config(None).user == "from-state"
    monkeypatch.setenv("SHOAL_STATE_DIR", str(home / "elsewhere"))
    _write(home / "elsewhere" / "context.json", user="from-elsewhere")
    assert bus_config(None).user == "from-elsewhere"
    monkeypatch.setenv("SHOAL_CONTEXT", str(_write(home / "explicit.json", user="explicit")))
    assert bus_config(None).user == "explicit"
    monkeypatch.setenv("SHOAL_USER", "env-user")
    monkeypatch.setenv("SHOAL_PASSWORD", "env-pw")
    bus = bus_config(None)
    assert (bus.user, bus.password, bus.servers) == ("env-user", "env-pw", ("nats://127.0.0.1:4222",))


def test_a_state_dir_context_for_another_server_falls_through_to_the_config_home(home: Path) -> None:
    _write(home / "data" / "shoal" / "context.json", server="nats://127.0.0.1:4222", user="local")
    _write(home / "config" / "shoal" / "context.json", user="remote")
    assert bus_config(URL).user == "remote"


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "is not JSON"), ("[]", "is not a JSON object"), ('{"server": "x", "user": "u"}', "no 'password'"),
    ('{"server": "", "user": "u", "password": "p"}', "no 'server'"),
    ('{"server": "x", "user": "u", "password": "p", "tls_ca": 3}', "'tls_ca' must be a string or null"),
])
def test_a_broken_context_is_a_typed_error_naming_the_file(home: Path, text: str, message: str) -> None:
    path = home / "data" / "shoal" / "context.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ContextError, match=message) as info:
        bus_config(None)
    assert str(path) in str(info.value)


def test_a_missing_shoal_context_is_an_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_CONTEXT", str(home / "nope.json"))
    with pytest.raises(ContextError, match="cannot read the context file"):
        bus_config(None)


def test_round_trip_and_endpoint_matching(home: Path) -> None:
    context = load_context(_write(home / "c.json"))
    assert context.servers == (URL,) and context.cluster == "c" and context.path == home / "c.json"
    assert same_servers(("nats://LOCALHOST:4333",), (URL,))
    assert not same_servers(("nats://127.0.0.2:4333",), (URL,))
