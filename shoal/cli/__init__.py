"""``shoal``: the admin tool, kubectl-like, speaking to a cluster only through NATS (``runtime.client``).

Layout: ``main`` parses arguments and dispatches; ``registry`` holds the command table (one module per
command under ``commands/``); ``session`` connects lazily; ``manifests`` loads YAML/JSON; ``printers``,
``columns`` and ``describe`` render objects; ``apply_merge`` is the pure three-way merge of ``apply``.
"""
