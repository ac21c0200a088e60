#!/usr/bin/env bash
# Installs what a single-machine Shoal needs on Debian/Ubuntu: system packages (podman, runc,
# busybox-static for the local test image, iproute2 for multi-VM tests; openssh-server, rsync and curl
# for the deploy-guide test's VMs, which boot the host's /usr) and a virtual environment
# at .venv with Shoal and its development tools; nftables (the proxy's kernel data path, the fault
# injector), faketime (clock-jump faults), chromium and chromium-driver (the web console's browser
# tests), mmdebstrap (deploy/images/build.sh: the Debian images kubernetes.io's examples run on, which their
# tests build on first use) and a kubectl (the gateway's tests drive the real one; Debian's
# kubernetes-client when none is installed). Idempotent: safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for pkg in podman runc busybox-static iproute2 openssl openssh-server rsync curl nftables faketime \
    chromium chromium-driver mmdebstrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v kubectl >/dev/null 2>&1 || need_apt+=(kubernetes-client)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating the virtual environment .venv"
  python3 -m venv .venv
fi
echo "==> installing Shoal and its Python dependencies into .venv"
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev,fast]' 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import nats, msgpack, structlog, podman, yaml" 
echo "==> ready: .venv/bin/shoal"
