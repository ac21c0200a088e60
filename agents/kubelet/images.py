"""Local container images for nodes without a registry: builds ``localhost/shoal/busybox:latest``.

``ensure_local_images(env)`` builds the test image with the ``podman build`` CLI from
``deploy/images/busybox/Containerfile`` (``FROM scratch`` + the host's static busybox +
``busybox --install -s /bin``: sh, httpd, nc, sleep, wget...), only when it is not present yet.
It is idempotent and cheap to call at every start.

Using your own images on such a node: build them locally and refer to them by their ``localhost/``
name, which the kubelet never tries to pull::

    podman build -t localhost/myimg:1 ./my-context     # e.g. FROM localhost/shoal/busybox:latest
    # Pod spec:  containers: [{name: web, image: localhost/myimg:1}]

(With a podman service started by ``podman_service``, pass its ``env`` to such commands so they use
the same ``CONTAINERS_CONF``.) On hosts with a registry, ordinary image names are pulled as usual.

Pod infra ("pause") image: Podman 4.x builds ``localhost/podman-pause:<version>`` locally on the first
``podman pod create``, offline, so no action is needed here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

BUSYBOX_IMAGE = "localhost/shoal/busybox:latest"
_CONTAINERFILE = Path(__file__).resolve().parents[2] / "deploy" / "images" / "busybox" / "Containerfile"
_FALLBACK_CONTAINERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh"]
"""


class ImageBuildError(Exception):
    """A local image could not be built."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def image_exists(image: str, env: dict[str, str]) -> bool:
    done = subprocess.run(["podman", "image", "exists", image], env=env, capture_output=True, check=False)
    return done.returncode == 0


def _static_busybox() -> Path:
    found = shutil.which("busybox")
    if found is None:
        raise ImageBuildError("busybox not found: apt-get install busybox-static")
    path = Path(found).resolve()
    with path.open("rb") as f:
        head = f.read(4096)
    if b"ld-linux" in head or b"/lib/ld-" in head:
        raise ImageBuildError(f"{path} is dynamically linked: install busybox-static")
    return path


def build_busybox_image(env: dict[str, str], progress: Callable[[str], None] = _stderr) -> None:
    """Build ``localhost/shoal/busybox:latest`` unconditionally."""
    busybox = _static_busybox()
    containerfile = _CONTAINERFILE.read_text() if _CONTAINERFILE.exists() else _FALLBACK_CONTAINERFILE
    with tempfile.TemporaryDirectory(prefix="shoal-busybox-") as ctx:
        shutil.copy2(busybox, Path(ctx) / "busybox")
        (Path(ctx) / "Containerfile").write_text(containerfile)
        progress(f"building {BUSYBOX_IMAGE} from {busybox} ...")
        done = subprocess.run(
            ["podman", "build", "-q", "-t", BUSYBOX_IMAGE, "-f", "Containerfile", "."],
            cwd=ctx,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if done.returncode != 0:
        raise ImageBuildError(f"podman build {BUSYBOX_IMAGE} failed: {done.stderr.strip()}")
    progress(f"built {BUSYBOX_IMAGE} ({done.stdout.strip()[:12]})")


def ensure_local_images(env: dict[str, str], progress: Callable[[str], None] = _stderr) -> list[str]:
    """Build the local test images that are missing; returns the images now available. Blocking."""
    if image_exists(BUSYBOX_IMAGE, env):
        progress(f"{BUSYBOX_IMAGE} already present")
    else:
        build_busybox_image(env, progress)
    return [BUSYBOX_IMAGE]
