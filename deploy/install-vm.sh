#!/usr/bin/env bash
# Install Shoal on one VM from a checkout of this repository (copied to the VM), as systemd services.
#
#   deploy/install-vm.sh --role control|node|both --nats-peers IP1,IP2,IP3 --address THIS_IP \
#       [--nats-name shoal-N] [--node-name NAME] [--secrets DIR] [--api-instances 1] [--prefix /opt/shoal]
#
# control: nats-server (one of the three), shoal-api@1..N (--replicas 3), scheduler, controller manager,
#          cloud controller manager, Kubernetes API gateway (:6443).   node: kubelet (Podman) and proxy.   both: everything.
# --secrets DIR: a directory made once by `deploy/install-vm.sh --init-secrets DIR ...` (or copied from the
# first VM's /etc/shoal): secrets.json, nats-auth.conf, creds/, tls/. It is copied to /etc/shoal.
#   deploy/install-vm.sh --init-secrets DIR --nats-peers IP1,IP2,IP3 [--nodes n1,n2,n3]
# Idempotent: run it again after changing anything.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
role="" peers="" address="" nats_name="" node_name=$(hostname -s) secrets="" api_instances=1 prefix=/opt/shoal
init_dir="" nodes=""
while [ $# -gt 0 ]; do
  case $1 in
    --role) role=$2; shift 2 ;;
    --nats-peers) peers=$2; shift 2 ;;
    --address) address=$2; shift 2 ;;
    --nats-name) nats_name=$2; shift 2 ;;
    --node-name) node_name=$2; shift 2 ;;
    --secrets) secrets=$2; shift 2 ;;
    --api-instances) api_instances=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --init-secrets) init_dir=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$peers" ] || { echo "--nats-peers IP1,IP2,IP3 is required" >&2; exit 2; }
IFS=, read -r -a peer_list <<<"$peers"
py=python3; [ -x "$src/.venv/bin/python" ] && py="$src/.venv/bin/python"

if [ -n "$init_dir" ]; then  # once, on the first VM (or a workstation with this checkout)
  specs=(); i=1
  for p in "${peer_list[@]}"; do specs+=("shoal-$i=$p"); i=$((i+1)); done
  "$src/deploy/make-certs.sh" "$init_dir/tls" "${specs[@]}"
  (cd "$src" && PYTHONPATH="$src" "$py" -m runtime.nats_security init --dir "$init_dir" --nodes "$nodes" \
     --tls-ca /etc/shoal/tls/ca.pem)
  # the Kubernetes API gateway's CA, serving certificate (every control VM's address) and admin token
  (cd "$src" && PYTHONPATH="$src" "$py" -c 'import sys; from pathlib import Path
from shoal.kubeconfig import ensure_credentials
ensure_credentials(Path(sys.argv[1]), tuple(sys.argv[2].split(",")))' "$init_dir/gateway" "$peers")
  echo "secrets in $init_dir: copy it to every VM (scp -r) and pass --secrets $init_dir"
  exit 0
fi
[ -n "$role" ] && [ -n "$address" ] && [ -n "$secrets" ] || {
  echo "--role, --address and --secrets are required" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }

echo "==> packages"
pkgs=(python3 python3-venv openssl iproute2)
case $role in node|both) pkgs+=(podman runc busybox-static) ;; esac
missing=(); for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; fi

echo "==> Shoal in $prefix"
id shoal >/dev/null 2>&1 || useradd --system --home-dir /var/lib/shoal --shell /usr/sbin/nologin shoal
mkdir -p "$prefix" /var/lib/shoal /etc/shoal/creds
if [ "$src" != "$prefix" ]; then cp -a "$src/." "$prefix/"; rm -rf "$prefix/.venv"; fi
[ -x "$prefix/.venv/bin/python" ] || python3 -m venv "$prefix/.venv"
"$prefix/.venv/bin/pip" install -q --disable-pip-version-check -e "$prefix[fast]"
chown -R shoal:shoal /var/lib/shoal

echo "==> secrets and configuration in /etc/shoal"
if [ "$(cd "$secrets" && pwd)" != /etc/shoal ]; then cp -a "$secrets/." /etc/shoal/; fi
chmod 0700 /etc/shoal/creds
servers=$(printf 'nats://%s:4222,' "${peer_list[@]}"); servers=${servers%,}
cat >/etc/shoal/shoal.env <<ENV
SHOAL_SERVER=$servers
SHOAL_TLS_CA=/etc/shoal/tls/ca.pem
SHOAL_REPLICAS=3
SHOAL_NODE_NAME=$node_name
SHOAL_NODE_ADDRESS=$address
SHOAL_CLOUD_PROVIDER=local
SHOAL_CONTROLLER_ARGS=
ENV
units=()
case $role in
  control|both)
    if [ -z "$nats_name" ]; then  # shoal-N where this VM's address is the N-th peer
      i=1; for p in "${peer_list[@]}"; do [ "$p" = "$address" ] && nats_name="shoal-$i"; i=$((i+1)); done
    fi
    [ -n "$nats_name" ] || { echo "--address $address is not in --nats-peers: pass --nats-name" >&2; exit 2; }
    PYTHONPATH="$prefix" "$prefix/.venv/bin/python" -m runtime.cluster_config --name "$nats_name" \
      --peers "$peers" --state-dir /var/lib/shoal/nats --tls-dir /etc/shoal/tls --secrets-dir /etc/shoal \
      >/etc/shoal/nats-server.conf
    chown shoal:shoal /etc/shoal/nats-server.conf /etc/shoal/nats-auth.conf /etc/shoal/tls/"$nats_name"-key.pem
    chmod 0600 /etc/shoal/nats-server.conf
    units+=(shoal-nats.service shoal-scheduler.service shoal-controller-manager.service
            shoal-cloud-controller-manager.service)
    if [ -f /etc/shoal/gateway/server.crt ]; then
      chown -R shoal:shoal /etc/shoal/gateway && chmod 0700 /etc/shoal/gateway
      units+=(shoal-gateway.service)
    else
      echo "no /etc/shoal/gateway in the secrets (made by --init-secrets): the Kubernetes API gateway is not started"
    fi
    for i in $(seq 1 "$api_instances"); do units+=("shoal-api@$i.service"); done ;;
esac
case $role in
  node|both)
    [ -f "/etc/shoal/creds/kubelet-$node_name.env" ] || {
      echo "no NATS user for node $node_name: run deploy/add-node.sh (or runtime.nats_security add-node) first" >&2; exit 1; }
    cp "/etc/shoal/creds/kubelet-$node_name.env" /etc/shoal/creds/kubelet.env
    cp "/etc/shoal/creds/proxy-$node_name.env" /etc/shoal/creds/proxy.env
    units+=(shoal-kubelet.service shoal-proxy.service) ;;
esac
sed "s|/opt/shoal|$prefix|g" -i "$prefix"/deploy/systemd/*.service
cp "$prefix"/deploy/systemd/*.service /etc/systemd/system/
systemctl daemon-reload
echo "==> starting: ${units[*]}"
systemctl enable --now "${units[@]}"
systemctl reload shoal-nats.service 2>/dev/null || true  # picks up new users
