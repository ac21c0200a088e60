"""Fixtures of the multi-VM tests: network namespaces as VMs and a whole Shoal cluster across them."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.multivm.cluster import Cluster, build
from tests.multivm.netns import Network, netns_unavailable_reason


@pytest.fixture(scope="module")
def multivm(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The cluster; a test module setting ``MULTIVM_STORE_LIMIT_MB`` gets its NATS stores on tmpfs mounts
    of that size (for disk-full faults)."""
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    if shutil.which("openssl") is None:
        pytest.skip("multi-VM tests need openssl (deploy/make-certs.sh makes the TLS certificates)")
    # a fixed place, not pytest's rotating temp dirs: the logs of the last run stay for a post-mortem
    root = Path(tempfile.gettempdir()) / "shoal-multivm"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    net = Network()
    cluster: Cluster | None = None
    try:
        net.create()
        net.enter_client()  # the test's own NATS clients live on the bridge, at 192.0.2.100
        cluster = build(net, root, store_limit_mb=int(getattr(request.module, "MULTIVM_STORE_LIMIT_MB", 0)))
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
            (root / "timings.json").write_text(json.dumps(cluster.timings, indent=2))
            print(f"\nmulti-VM timings: {json.dumps(cluster.timings)} (logs in {root})")
        net.destroy()
