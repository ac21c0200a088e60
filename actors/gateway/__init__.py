"""The Kubernetes REST face of Shoal: an HTTPS gateway that serves the Kubernetes API to kubectl and the
official clients, translating every request to the NATS API (``runtime.client``). It holds no state and
never touches the datastore: any number may run side by side.

Modules: ``server`` (the actor: aiohttp over TLS, routing, authentication and errors), ``handlers`` (the REST
verbs), ``subresources`` (scale, log), ``watching`` (watch streams, chunked or over websockets),
``watchslots`` (watches per user), ``streaming`` (exec, attach and port-forward websockets relayed to the
kubelets over NATS), ``apiservice`` (the ``kubernetes`` Service and its Endpoints), ``http`` (responses,
parameters, bodies, ``dryRun``), ``auth`` (bearer tokens, also as a websocket subprotocol, client
certificates, the websocket origin rule, the user every request impersonates), ``access`` (access reviews,
Impersonate-* headers, authorization of what the gateway serves itself: streams, patches, scale). Pure
translations: ``discovery`` (``/api``, ``/apis``, aggregated), ``openapi`` and ``openapi_proto``
(``/openapi/v3``, ``/openapi/v2`` in protobuf), ``schemas`` (from the kinds registry), ``fieldvalidation``,
``status`` (``metav1.Status`` from typed errors), ``patch`` (JSON, merge and strategic merge patches),
``apply`` (server-side apply), ``table`` (``as=Table``), ``listing`` (``limit``/``continue``), ``paths``
(URLs), ``k8sproto`` (protobuf request bodies), ``spdy`` (SPDY/3.1 frames: kubectl's port-forward inside its
websocket).
"""
