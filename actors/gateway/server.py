"""The gateway actor: an aiohttp server over TLS answering the Kubernetes REST API for Shoal.

Every request but ``/healthz``, ``/livez``, ``/readyz``, ``/version``, the service-account issuer's discovery
documents (``oidc``) and the web console's files (``/ui/``, and ``/`` for a browser, ``console``) needs a bearer
token (``auth``).
Discovery and OpenAPI documents are built once at start from ``protocol.kinds``; resource requests go to
``handlers``. The actor holds nothing but its NATS connection: several run side by side behind one address or
several, and any of them answers any request.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from actors.gateway import access, console, discovery, nodesummary, oidc, openapi, paths
from actors.gateway import status as statuses
from actors.gateway.access import AccessReviews
from actors.gateway.apiservice import ApiServiceKeeper
from actors.gateway.auth import (
    ACTING_AS,
    ON_BEHALF_OF,
    USER,
    Authenticator,
    Unauthenticated,
    cross_site_websocket,
    websocket_authorization,
)
from actors.gateway.handlers import Handlers
from actors.gateway.http import error_response, json_response, refuse_unsupported
from actors.gateway.metrics import list_node_metrics, list_pod_metrics
from actors.gateway.watchslots import WATCHES_PER_USER, WatchSlots
from protocol.errors import BadRequest, Forbidden, NotFound, ShoalError
from protocol.network import DEFAULT_SERVICE_CIDR
from runtime.actor import ActorContext
from runtime.client import ApiClient

PUBLIC = frozenset({"/healthz", "/livez", "/readyz", "/version", oidc.JWKS_PATH, oidc.DISCOVERY_PATH})
MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    port: int = 6443
    cert_file: Path | None = None
    key_file: Path | None = None
    """Without a certificate the gateway serves plain HTTP (tests of the HTTP layer only)."""
    admin_token_file: Path | None = None
    client_ca_file: Path | None = None
    """CA whose client certificates are accepted (user = common name, groups = organizations)."""
    external_url: str | None = None
    """The address clients use (``serverAddressByClientCIDRs``); defaults to host:port."""
    advertise_address: str | None = None
    """An address pods reach this gateway at: it is put in the ``kubernetes`` Service's Endpoints
    (``apiservice``); None: the gateway does not keep that Service."""
    service_cidr: str = DEFAULT_SERVICE_CIDR
    advertise_node: str | None = None
    """A node whose pod-network gateway (the first address of its ``podCIDR``) this gateway also listens on
    and advertises for the ``kubernetes`` Service (``shoal up``: one machine, pods on its bridge)."""
    watches_per_user: int = WATCHES_PER_USER
    """Watches one user may hold open through this gateway (``watchslots``)."""
    keep_node_summary: bool = False
    """Keep the console's per-node pod sums from the start, for ever (``nodesummary``); else only while a
    console shows them, and ``nodesummary.IDLE`` seconds after."""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GatewayActor:
    name = "gateway"

    def __init__(self, settings: GatewaySettings | None = None) -> None:
        self.settings = settings or GatewaySettings()
        self._runner: web.AppRunner | None = None
        self.requests = 0
        self.port: int | None = None
        self.openapi = openapi.Documents()

    def health(self) -> dict[str, Any]:
        return {"requests": self.requests, "port": self.port}

    async def start(self, ctx: ActorContext) -> None:
        self._nc = ctx.nc
        # requests for a user go as that user (``as``, authorized by the API's RBAC); the gateway's own work
        # (token reviews, access reviews, OIDC documents, the kubernetes Service) goes as the gateway
        client = ApiClient(ctx.nc, impersonate=ACTING_AS.get)
        trusted = ApiClient(ctx.nc)
        admin = self.settings.admin_token_file.read_text().strip() if self.settings.admin_token_file else None
        self.auth = Authenticator(trusted, admin)
        self.access = AccessReviews(trusted)
        slots = WatchSlots(self.settings.watches_per_user)
        self.handlers = Handlers(client, slots, self.access)
        # the console's per-node pod sums: one pods watch as the gateway, shown to users who may list all pods
        self.node_summary = nodesummary.NodeSummaryFeed(
            trusted, idle=None if self.settings.keep_node_summary else nodesummary.IDLE, log=ctx.log)
        self.log = ctx.log
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY)
        app.router.add_get("/version", self._version)
        oidc.add_routes(app, trusted)
        app.router.add_get("/", self._root)
        console.Console().add_routes(app)
        nodesummary.NodeSummaryRoute(self.node_summary, self.access, slots).add_routes(app)
        for probe in ("/healthz", "/livez"):
            app.router.add_get(probe, self._ok)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/api", self._api)
        app.router.add_get("/apis", self._apis)
        app.router.add_get("/openapi/v2", self._openapi_v2)
        app.router.add_get("/openapi/v3", self._openapi_v3)
        app.router.add_get(r"/openapi/v3/{path:.+}", self._openapi_v3_group)
        app.router.add_route("*", "/api/v1", self._core_root)
        app.router.add_route("*", r"/api/v1/{tail:.+}", self._core)
        app.router.add_post("/apis/authentication.k8s.io/v1/selfsubjectreviews", self._whoami)
        self.access.add_routes(app)
        app.router.add_get("/apis/metrics.k8s.io/v1beta1/pods", self._pod_metrics)
        app.router.add_get("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods", self._pod_metrics)
        app.router.add_get("/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}", self._pod_metrics)
        app.router.add_get("/apis/metrics.k8s.io/v1beta1/nodes", self._node_metrics)
        app.router.add_get("/apis/metrics.k8s.io/v1beta1/nodes/{name}", self._node_metrics)
        app.router.add_route("*", "/apis/{group}", self._group)
        app.router.add_route("*", "/apis/{group}/{version}", self._group_version)
        app.router.add_route("*", r"/apis/{group}/{version}/{tail:.+}", self._grouped)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        tls = self._tls()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port, ssl_context=tls, backlog=1024)
        await site.start()
        server: Any = site._server
        sockets = server.sockets if server is not None else []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        self._keeper: ApiServiceKeeper | None = None
        self._tls_context = tls
        if self.settings.advertise_address:
            self._keeper = ApiServiceKeeper(client, self.settings.advertise_address, int(self.port),
                                            service_cidr=self.settings.service_cidr, log=ctx.log)
            ctx.supervisor.spawn("gateway/kubernetes-service", self._keeper.run)
        elif self.settings.advertise_node:
            ctx.supervisor.spawn("gateway/pod-network", lambda: self._on_pod_network(client, ctx.log))
        ctx.log.info("gateway listening", url=f"{'https' if tls else 'http'}://{self.settings.host}:{self.port}")

    async def _on_pod_network(self, client: ApiClient, log: Any) -> None:
        """Listen on the node's pod-network gateway once it exists, then keep the ``kubernetes`` Service there."""
        node, delay, port = str(self.settings.advertise_node), 0.5, int(self.port or self.settings.port)
        keeper = ApiServiceKeeper(client, "", port, service_cidr=self.settings.service_cidr, log=log)
        created = False
        while True:
            try:
                if not created:  # the Service first: pods started meanwhile get KUBERNETES_SERVICE_HOST
                    await keeper.ensure_service()
                    created = True
                spec = (await client.get("Node", node)).get("spec") or {}
                cidr = (spec.get("podCIDRs") or [spec.get("podCIDR")])[0]
                if cidr and self._runner is not None:
                    address = str(ipaddress.IPv4Network(cidr).network_address + 1)
                    site = web.TCPSite(self._runner, address, port, ssl_context=self._tls_context)
                    await site.start()
                    log.info("gateway listening on the pod network", address=f"{address}:{port}")
                    break
            except (ShoalError, OSError) as exc:  # no Node or podCIDR yet, or no bridge before the first pod
                log.debug("pod network not ready for the gateway", error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        keeper.address = address
        self._keeper = keeper
        await keeper.run()

    def _tls(self) -> ssl.SSLContext | None:
        if self.settings.cert_file is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.settings.cert_file, self.settings.key_file)
        if self.settings.client_ca_file is not None:
            context.load_verify_locations(self.settings.client_ca_file)
            context.verify_mode = ssl.CERT_OPTIONAL  # a token is enough; a certificate, if sent, must verify
        return context

    async def close(self) -> None:
        summary = getattr(self, "node_summary", None)
        if summary is not None:
            summary.stop()
        keeper = getattr(self, "_keeper", None)
        if keeper is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(keeper.set_address(False), 5)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- middleware: authentication and typed errors as Status -----------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests += 1
        try:
            if request.path not in PUBLIC and not console.is_public(request.path, request.headers.get("Accept", "")):
                peer = request.transport.get_extra_info("peercert") if request.transport else None
                if cross_site_websocket(request.headers):
                    raise Forbidden(f"a websocket from another site ({request.headers['Origin'][:100]}) is refused")
                authorization = request.headers.get("Authorization") or websocket_authorization(request.headers)
                user = await self.access.impersonated(await self.auth.authenticate(authorization, peer),
                                                      request.headers)
                request[USER] = user
                ACTING_AS.set(user.to_wire())
            return await handler(request)
        except Unauthenticated as exc:
            return json_response(statuses.unauthorized(str(exc)), 401)
        except ShoalError as exc:
            return error_response(exc)
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug: answer it as the API server does, and log it
            self.log.exception("gateway request failed", method=request.method, path=request.path)
            return json_response(statuses.status(500, "InternalError", f"internal error: {exc}"), 500)

    # -- discovery -------------------------------------------------------------------------------------
    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _ready(self, request: web.Request) -> web.Response:
        """Ready while connected to NATS (a load balancer then sends requests elsewhere)."""
        if not self._nc.is_connected:
            return web.Response(status=503, text="not connected to NATS")
        return web.Response(text="ok")

    async def _root(self, request: web.Request) -> web.Response:
        """A browser goes to the console; an API client gets the paths the server answers, as Kubernetes does."""
        if console.wants_html(request.headers.get("Accept", "")):
            raise web.HTTPFound(console.PREFIX)
        return json_response({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/openapi/v2",
                                        "/openapi/v3", "/readyz", "/ui/", "/version"]})

    async def _version(self, request: web.Request) -> web.Response:
        return json_response(discovery.VERSION)

    async def _api(self, request: web.Request) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return _aggregated(discovery.aggregated(core=True))
        return json_response(discovery.core_versions(f"{self.settings.host}:{self.port}"))

    async def _apis(self, request: web.Request) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return _aggregated(discovery.aggregated(core=False))
        return json_response(discovery.group_list())

    async def _core_root(self, request: web.Request) -> web.Response:
        return json_response(discovery.resource_list("v1"))

    async def _group(self, request: web.Request) -> web.Response:
        found = discovery.group(request.match_info["group"])
        if found is None:
            raise NotFound(f"the server could not find the requested resource (group {request.match_info['group']})")
        return json_response(found)

    async def _group_version(self, request: web.Request) -> web.Response:
        found = discovery.resource_list(f"{request.match_info['group']}/{request.match_info['version']}")
        if found is None:
            raise NotFound("the server could not find the requested resource")
        return json_response(found)

    async def _openapi_v2(self, request: web.Request) -> web.Response:
        accept = request.headers.get("Accept", "")
        if "protobuf" in accept and "json" not in accept:
            return web.Response(body=self.openapi.v2_protobuf(),
                                content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        return web.Response(body=self.openapi.v2_json(), content_type="application/json")

    async def _openapi_v3(self, request: web.Request) -> web.Response:
        return json_response(self.openapi.v3_index())

    async def _openapi_v3_group(self, request: web.Request) -> web.Response:
        body = self.openapi.v3_json(request.match_info["path"])
        if body is None:
            raise NotFound(f"no OpenAPI document for {request.match_info['path']}")
        return web.Response(body=body, content_type="application/json")

    async def _whoami(self, request: web.Request) -> web.Response:
        user = request[USER]
        return json_response({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                              "metadata": {"creationTimestamp": None},
                              "status": {"userInfo": {"username": user.name, "uid": user.uid,
                                                      "groups": list(user.groups)}}}, 201)

    async def _pod_metrics(self, request: web.Request) -> web.Response:
        info = request.match_info
        body = await list_pod_metrics(self.handlers.client, info.get("namespace"), info.get("name"),
                                      request.query.get("labelSelector") or None)
        return json_response(body, 200)

    async def _node_metrics(self, request: web.Request) -> web.Response:
        body = await list_node_metrics(self.handlers.client, request.match_info.get("name"),
                                       request.query.get("labelSelector") or None)
        return json_response(body, 200)

    # -- resources -------------------------------------------------------------------------------------
    async def _core(self, request: web.Request) -> web.StreamResponse:
        return await self._resource(request, "v1", request.match_info["tail"])

    async def _grouped(self, request: web.Request) -> web.StreamResponse:
        api_version = f"{request.match_info['group']}/{request.match_info['version']}"
        return await self._resource(request, api_version, request.match_info["tail"])

    async def _resource(self, request: web.Request, api_version: str, tail: str) -> web.StreamResponse:
        target = paths.parse(api_version, tail)
        refuse_unsupported(request)
        composite = access.composite(request.method, target)
        try:
            if composite is None:
                return await self._serve_resource(request, target)
            # served by several API requests (a patch is read-modify-write here): authorized once, as
            # Kubernetes authorizes the one request, then done as the gateway
            await self.access.require(request[USER], composite)
            token, behalf = ACTING_AS.set(None), ON_BEHALF_OF.set(access.subject_of(request[USER]))
            try:
                return await self._serve_resource(request, target)
            finally:
                ACTING_AS.reset(token)
                ON_BEHALF_OF.reset(behalf)
        except ShoalError as exc:
            return error_response(exc, target)

    async def _serve_resource(self, request: web.Request, target: paths.Target) -> web.StreamResponse:
        h, method = self.handlers, request.method
        try:
            if target.name is None:
                if method == "GET":
                    return await h.list(request, target)
                if method == "POST":
                    return await h.create(request, target)
                if method == "DELETE":
                    return await h.delete_collection(request, target)
            elif method == "POST" and target.subresource in paths.STREAMED:
                # refused either way; a user who may not open the stream learns that first (kubectl falls
                # back to SPDY when the websocket is refused, and shows this answer)
                await self.access.require_stream(request, str(target.namespace), str(target.name),
                                                 target.subresource)
                raise BadRequest(f"pods/{target.subresource} is served over websockets only "
                                 "(v5.channel.k8s.io, v4.channel.k8s.io), not SPDY")
            elif method == "POST" and target.subresource == "binding":
                return await h.bind(request, target)
            elif method == "POST" and target.subresource == "eviction":
                return await h.evict(request, target)
            elif method == "POST" and target.subresource == "token":
                return await h.token(request, target)
            elif method == "GET" and target.subresource not in ("binding", "eviction", "token"):
                return await h.read(request, target)
            elif method == "PUT":
                return await h.update(request, target)
            elif method == "PATCH":
                return await h.patch(request, target)
            elif method == "DELETE" and target.subresource is None:
                return await h.delete(request, target)
        except ShoalError as exc:
            return error_response(exc, target)
        return json_response(statuses.status(405, "MethodNotAllowed",
                                             f"{method} is not supported on {request.path}"), 405)




def _aggregated(body: dict[str, Any]) -> web.Response:
    response = json_response(body)
    response.headers["Content-Type"] = discovery.AGGREGATED
    return response
