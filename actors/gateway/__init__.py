"""The Kubernetes REST face of Shoal: an HTTPS gateway that serves the Kubernetes API to kubectl and the
official clients, translating every request to the NATS API (``runtime.client``). It holds no state and
never touches the datastore: any number may run side by side.

Modules: ``discovery`` (``/api``, ``/apis``), ``openapi`` (``/openapi/v2``, ``/openapi/v3``),
``status`` (``metav1.Status`` from typed errors), ``patch`` (JSON, merge and strategic merge patches),
``table`` (``as=Table`` for ``kubectl get``), ``auth`` (bearer tokens), ``watching`` (watch streams),
``handlers`` (the REST verbs), ``server`` (the actor: aiohttp over TLS).
"""
