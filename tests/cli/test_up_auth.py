"""``shoal up``'s NATS as an attacker on the same machine meets it (issue 18, item 1).

A real nats-server with the configuration ``shoal up`` writes (``shoal.up_auth``) and a real API actor
under its own identity. Each finding of the issue is an attack here; on the old, anonymous setup every
one of them succeeded (anyone connected, read ``shoal_system``, mirrored it, wrote a pod into ``$KV.shoal``).
Every attack has a positive control: the same code as the ``api`` identity succeeds, so a refusal is the
permissions' doing, not a broken attack.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.js import api

from actors.api.server import ApiActor, ApiSettings
from actors.api.signing import KEYS_NAME
from protocol import codec, rbac_bootstrap
from protocol.errors import Forbidden, NotFound, Timeout, Unavailable
from protocol.keys import KV_SUBJECT_PREFIX, object_key
from protocol.kinds import by_kind
from protocol.rbac_bootstrap import COMPONENT_USERS
from runtime.actor import run_actor
from runtime.bus import BusConfig, connect
from runtime.client import ApiClient
from runtime.context import CONTEXT_FILE
from runtime.nats_server import NatsServer, NatsServerConfig, free_port
from shoal.up_auth import CLI_USER, UpAuth
from tests.cli.conftest import REPO, cli_env

NODE = "vm"
SIGNING_KEY = f"$KV.shoal_system.{KEYS_NAME}"


@dataclass
class Up:
    url: str
    auth: UpAuth
    state: Path

    def bus(self, user: str) -> BusConfig:
        return BusConfig(servers=(self.url,), user=user, password=self.auth.password(user))

    async def connect(self, user: str, errors: list[str] | None = None) -> Client:
        async def on_error(exc: Exception) -> None:
            if errors is not None:
                errors.append(str(exc).lower())
        bus = self.bus(user)
        return await nats.connect(list(bus.servers), user=user, password=bus.password,
                                  inbox_prefix=f"_INBOX.{user}", error_cb=on_error, allow_reconnect=False,
                                  max_reconnect_attempts=1, connect_timeout=2)

    @property
    def others(self) -> list[str]:
        """Every identity but the API actors'."""
        return sorted(u for u in self.auth.data["passwords"] if u != "api")


@pytest.fixture
async def up(tmp_path: Path) -> AsyncIterator[Up]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    auth = UpAuth.ensure(state, NODE, "127.0.0.1")
    server = NatsServer(NatsServerConfig(state_dir=state, port=free_port(), extra=auth.server_config()))
    await server.start()
    cluster = Up(server.url, auth, state)
    auth.write_context(server.url, "test")
    actor = ApiActor(ApiSettings())
    stop = asyncio.Event()
    task = asyncio.create_task(run_actor(actor, cluster.bus("api"), stop=stop, install_signals=False))
    try:
        for _ in range(1500):
            if task.done():
                task.result()
            if actor.cache.ready.is_set() and actor.serving:
                break
            await asyncio.sleep(0.02)
        yield cluster
    finally:
        stop.set()
        await asyncio.wait({task}, timeout=15)
        await server.stop()


async def succeeds(attempt: Awaitable[Any]) -> bool:
    """Whether the attack got an answer (denied publishes get none: the request times out)."""
    try:
        await attempt
    except (nats.errors.Error, nats.js.errors.Error, TimeoutError, Unavailable, Timeout):
        return False
    return True


async def test_anonymous_and_wrong_password_connections_are_refused(up: Up) -> None:
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await connect(BusConfig(servers=(up.url,)), name="anonymous", reconnect=False)
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await connect(BusConfig(servers=(up.url,), user=CLI_USER, password="guessed"), name="guess", reconnect=False)
    nc = await connect(up.bus(CLI_USER), name="cli", reconnect=False)  # the control: right password admitted
    await nc.close()


def _attacks(js: Any, nc: Client, direct: bool) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Every way the issue found (and a few more) to read the signing key or the datastore from NATS
    (direct gets where the bucket allows them)."""
    async def kv_get() -> Any:
        kv = await js.key_value("shoal_system")
        return (await kv.get(KEYS_NAME)).value

    async def direct_get() -> Any:
        reply = await nc.request(f"$JS.API.DIRECT.GET.KV_shoal_system.{SIGNING_KEY}", b"", timeout=0.5)
        if not reply.data:
            raise nats.errors.Error("empty")
        return reply.data

    async def consume() -> Any:
        sub = await js.subscribe("$KV.shoal_system.>", stream="KV_shoal_system", ordered_consumer=True)
        return await sub.next_msg(timeout=0.5)

    async def read_datastore() -> Any:
        key = object_key(by_kind("ConfigMap"), "default", "c")
        return await js.get_msg("KV_shoal", subject=KV_SUBJECT_PREFIX + key)

    attacks: dict[str, Callable[[], Awaitable[Any]]] = {
        "kv get": kv_get,
        "stream message get": lambda: js.get_msg("KV_shoal_system", subject=SIGNING_KEY),
        "consumer": consume,
        "datastore message get": read_datastore,
    }
    if direct:
        attacks["direct get"] = direct_get
    return attacks


async def _mirror(js: Any, name: str, source: str, how: str) -> Any:
    config = (api.StreamConfig(name=name, mirror=api.StreamSource(name=source)) if how == "mirror"
              else api.StreamConfig(name=name, subjects=[], sources=[api.StreamSource(name=source)]))
    return await js.add_stream(config)


async def test_no_identity_but_the_api_reads_or_copies_the_signing_key_or_the_datastore(up: Up) -> None:
    owner = await up.connect("api")
    owner_js = owner.jetstream(timeout=2)
    try:
        client = ApiClient(await connect(up.bus(CLI_USER), name="cli", reconnect=False))
        await client.create({"apiVersion": "v1", "kind": "ConfigMap",
                                                   "metadata": {"name": "c", "namespace": "default"}})
        direct = bool((await owner_js.stream_info("KV_shoal_system")).config.allow_direct)
        for name, attack in _attacks(owner_js, owner, direct).items():  # the controls
            assert await succeeds(attack()), f"the api identity cannot {name}: the attack is broken"
        async def probe(user: str) -> None:
            errors: list[str] = []
            nc = await up.connect(user, errors)
            js = nc.jetstream(timeout=0.5)
            try:
                for name, attack in _attacks(js, nc, direct).items():
                    assert not await succeeds(attack()), f"{user} could {name}"
                await nc.flush()
                assert any("permissions violation" in e for e in errors), errors
            finally:
                await nc.close()

        await asyncio.gather(*(probe(user) for user in up.others))
        await client.nc.close()
    finally:
        await owner.close()


async def test_no_identity_but_the_api_mirrors_or_sources_the_signing_key_or_the_datastore(up: Up) -> None:
    """Finding 3 of the issue: a stream mirroring (or sourcing) ``KV_shoal_system`` copies the key out."""
    owner = await up.connect("api")
    owner_js = owner.jetstream(timeout=2)
    try:
        control = f"CONTROL_{os.getpid()}"
        assert await succeeds(_mirror(owner_js, control, "KV_shoal_system", "mirror"))  # works for the api
        await owner_js.delete_stream(control)

        async def probe(user: str) -> None:
            nc = await up.connect(user)
            js = nc.jetstream(timeout=0.5)
            try:
                for how in ("mirror", "source"):
                    for source in ("KV_shoal_system", "KV_shoal"):
                        stream = f"STEAL_{how}_{source}_{user}".upper().replace("-", "_")
                        assert not await succeeds(_mirror(js, stream, source, how)), (user, how, source)
                        with pytest.raises(nats.js.errors.NotFoundError):
                            await owner_js.stream_info(stream)
            finally:
                await nc.close()

        await asyncio.gather(*(probe(user) for user in up.others))
    finally:
        await owner.close()


async def test_no_identity_but_the_api_overhears_the_datastore_or_the_api(up: Up) -> None:
    """Subscribing to ``>``, ``$KV.>``, the API's inbox or the changes republish: refused by the server,
    and nothing arrives while a Secret is written (flush: whatever the server had routed is in by then)."""
    cli = ApiClient(await connect(up.bus(CLI_USER), name="cli", reconnect=False))
    listeners: list[tuple[str, Client, list[str], list[Any]]] = []
    try:
        for user in up.others:
            errors: list[str] = []
            nc = await up.connect(user, errors)
            subs = [await nc.subscribe(subject) for subject in (">", "$KV.>", "_INBOX.api.>", "shoal.changes.>")]
            listeners.append((user, nc, errors, subs))
        for _, nc, _, _ in listeners:
            await nc.flush()
        await cli.create({"apiVersion": "v1", "kind": "Secret", "stringData": {"k": "private"},
                                             "metadata": {"name": "s", "namespace": "default"}})
        assert (await cli.get("Secret", "s", "default"))["data"]["k"]
        for user, nc, errors, subs in listeners:
            await nc.flush()
            assert all(sub.pending_msgs == 0 for sub in subs), user
            assert sum("permissions violation for subscription" in e for e in errors) == 4, (user, errors)
    finally:
        for _, nc, _, _ in listeners:
            await nc.close()
        await cli.nc.close()


async def test_no_identity_but_the_api_writes_a_pod_into_the_datastore(up: Up) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "evil", "namespace": "default", "uid": "u1"},
           "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox"}]}}
    subject = KV_SUBJECT_PREFIX + object_key(by_kind("Pod"), "default", "evil")
    cli = ApiClient(await connect(up.bus(CLI_USER), name="cli", reconnect=False))
    try:
        for user in up.others:
            nc = await up.connect(user)
            try:
                assert not await succeeds(nc.jetstream(timeout=0.5).publish(subject, codec.encode(pod))), user
                await nc.publish(subject, codec.encode(pod))  # a plain publish, no acknowledgement asked
                await nc.flush()
            finally:
                await nc.close()
        with pytest.raises(NotFound):
            await cli.get("Pod", "evil", "default")
    finally:
        await cli.nc.close()


async def test_the_proxy_and_dns_read_services_endpoints_and_nodes_only(up: Up) -> None:
    admin = ApiClient(await connect(up.bus(CLI_USER), name="cli", reconnect=False))
    try:
        await admin.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"},
                            "stringData": {"password": "s3cret"}})
        await admin.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
        for user in (f"proxy-{NODE}", f"dns-{NODE}"):
            client = ApiClient(await up.connect(user), timeout=1.0)
            try:
                assert [s["metadata"]["name"] for s in (await client.list("Service", "default")).items] == ["web"]
                await client.list("Endpoints", "default")
                await client.list("Node")
                for kind in ("Secret", "ConfigMap", "Pod", "ServiceAccount"):  # Kubernetes' node-proxier reads none
                    assert not await succeeds(client.list(kind, "default")), (user, kind)
                assert not await succeeds(client.get("Secret", "db", "default")), user
            finally:
                await client.nc.close()
    finally:
        await admin.nc.close()


DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
              "spec": {"selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


async def refused(attempt: Awaitable[Any]) -> bool:
    """Whether the API answered Forbidden (RBAC), not NATS silence or success."""
    try:
        await attempt
    except Forbidden:
        return True
    return False


async def test_control_plane_components_act_as_themselves_under_their_roles(up: Up) -> None:
    """Issue 18, item 2: the scheduler, controller manager and cloud controller manager reach the API only on
    their own identity-scoped subjects (NATS drops their requests on the trusted ``shoal.api.>`` and on each
    other's), and the API authorizes them with their bootstrap roles: stolen scheduler credentials neither read
    Secrets nor delete Deployments, the controller manager's neither grant RBAC nor rotate the signing key."""
    admin = ApiClient(await connect(up.bus(CLI_USER), name="cli", reconnect=False))
    try:
        await admin.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "default"},
                            "stringData": {"password": "s3cret"}})
        await admin.create(DEPLOYMENT)
        clients: dict[str, ApiClient] = {}
        for user, identity in COMPONENT_USERS.items():
            nc = await up.connect(user)
            others = [i for i in COMPONENT_USERS.values() if i != identity]
            # the trusted subjects (served as system:masters) and another component's are closed by NATS
            assert not await succeeds(ApiClient(nc, timeout=0.5).get("Deployment", "web", "default")), user
            for other in others:
                assert not await succeeds(ApiClient(nc, timeout=0.5, identity=other).get("Node", "x")), (user, other)
            clients[user] = own = ApiClient(nc, timeout=2.0, identity=identity)
            await own.list("Node")  # a positive control: its own subjects are served
            assert await refused(own.get("Secret", "db", "default")) is (identity != rbac_bootstrap.CONTROLLER_MANAGER)
        scheduler = clients["scheduler"]
        assert [p["metadata"]["name"] for p in (await scheduler.list("Pod")).items] == []
        assert await refused(scheduler.list("Secret"))
        assert await refused(scheduler.delete("Deployment", "web", "default"))
        assert await refused(scheduler.update(await admin.get("Deployment", "web", "default")))
        assert await refused(scheduler.create({"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "x", "namespace": "default"}}))
        manager = clients["controller-manager"]
        binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "mine"}, "subjects": [{"kind": "User", "name": "system:kube-scheduler",
                                                               "apiGroup": "rbac.authorization.k8s.io"}],
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}}
        assert await refused(manager.create(binding))
        role = await admin.get("ClusterRole", rbac_bootstrap.CONTROLLER_MANAGER)
        assert await refused(manager.update({**role, "rules": [{"verbs": ["*"], "apiGroups": ["*"],
                                                                 "resources": ["*"]}]}))
        assert await refused(manager.admin("rotate-signing-key"))
        assert await refused(manager.request(  # an identity-scoped request cannot impersonate
            "shoal.api.get.secrets.default.db", {"as": {"user": "x", "groups": ["system:masters"]}}))
        assert await refused(clients["cloud-controller-manager"].delete("Deployment", "web", "default"))
        assert (await admin.get("Deployment", "web", "default"))["metadata"]["name"] == "web"
        for client in clients.values():
            await client.nc.close()
    finally:
        await admin.nc.close()


async def test_credentials_are_private_files(up: Up) -> None:
    assert stat.S_IMODE((up.state / "auth").stat().st_mode) == 0o700
    private = [up.state / CONTEXT_FILE, *(up.state / "auth").glob("*.*"), *(up.state / "auth" / "creds").glob("*")]
    assert len(private) >= 11
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert up.auth.password("api") not in (up.state / "nats-server.conf").read_text()
    again = UpAuth.ensure(up.state, NODE, "127.0.0.1")  # a restart keeps every password
    assert again.data["passwords"] == up.auth.data["passwords"]


async def _shoal(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shoal", *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=REPO)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_shoal_tool_finds_its_identity_in_the_context_file(up: Up, tmp_path: Path) -> None:
    home = {**cli_env(), "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
            "XDG_DATA_HOME": str(tmp_path / "home" / ".local" / "share")}
    by_state = {**home, "SHOAL_STATE_DIR": str(up.state)}  # no server, no credentials given: the context's
    rc, out, err = await _shoal(by_state, "apply", "-f", "-", stdin="kind: ConfigMap\nmetadata: {name: mine}\n")
    assert (rc, out.strip()) == (0, "configmap/mine created"), err
    by_file = {**home, "SHOAL_CONTEXT": str(up.state / CONTEXT_FILE), "SHOAL_SERVER": up.url.replace("127.0.0.1",
                                                                                                      "localhost")}
    rc, out, err = await _shoal(by_file, "get", "configmap", "mine", "-o", "name")
    assert (rc, out.strip()) == (0, "configmap/mine"), err

    rc, _, err = await _shoal({**home, "SHOAL_SERVER": up.url}, "get", "configmaps")  # no context at all
    assert rc == 1 and "refused the credentials" in err and "SHOAL_CONTEXT" in err, err
    other = {**by_state, "SHOAL_SERVER": f"nats://127.0.0.1:{free_port()}"}  # never sent to another server
    rc, _, err = await _shoal(other, "get", "configmaps")
    assert rc == 1 and "connection refused" in err, err

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"server": up.url, "user": CLI_USER}))
    rc, _, err = await _shoal({**home, "SHOAL_CONTEXT": str(broken)}, "get", "configmaps")
    assert rc == 1 and "has no 'password'" in err, err


async def test_beyond_loopback_nats_serves_tls_and_clients_verify_it(tmp_path: Path) -> None:
    """``shoal up --host 0.0.0.0``: the client port speaks TLS only, with a certificate of the state
    directory's own CA; the context carries that CA, and a client without it does not connect."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    auth = UpAuth.ensure(state, NODE, "0.0.0.0")
    assert auth.tls is not None
    port = free_port()
    server = NatsServer(NatsServerConfig(state_dir=state, host="0.0.0.0", port=port, extra=auth.server_config()))
    await server.start()
    try:
        url = f"nats://127.0.0.1:{port}"
        context = auth.context(url, "test")
        assert context.tls_ca == auth.tls.ca and auth.env("api")["SHOAL_TLS_CA"] == auth.tls.ca
        nc = await connect(context.bus(), name="cli", reconnect=False)
        assert nc.connected_url is not None and nc._server_info.get("tls_required")
        await nc.close()
        with pytest.raises((nats.errors.Error, OSError)):  # no CA: the server's certificate is not trusted
            await connect(BusConfig(servers=(url,), user=CLI_USER, password=auth.password(CLI_USER)), name="x",
                          reconnect=False)
    finally:
        await server.stop()
