#!/usr/bin/env bash
# Add a node with one command, run as root on the first control VM (root SSH to the others):
#
#   deploy/add-node.sh NODE_NAME NODE_IP
#
# Creates the node's NATS users (kubelet-NODE, proxy-NODE), pushes the new nats-auth.conf to every
# control VM and reloads their nats-servers (no restart), then installs the kubelet and proxy on NODE_IP
# with only the node's own credentials and the CA certificate.
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
node=$1 ip=$2
prefix=${SHOAL_PREFIX:-/opt/shoal}
# shellcheck disable=SC1091
. /etc/shoal/shoal.env
PYTHONPATH="$prefix" "$prefix/.venv/bin/python" -m runtime.nats_security add-node --dir /etc/shoal \
  --tls-ca /etc/shoal/tls/ca.pem "$node" >/dev/null
peers=$(echo "$SHOAL_SERVER" | sed 's|nats://||g; s|:4222||g')
IFS=, read -r -a control <<<"$peers"
for host in "${control[@]}"; do
  rsync -a /etc/shoal/secrets.json /etc/shoal/nats-auth.conf "root@$host:/etc/shoal/"
  # kubelet.env / proxy.env are each VM's own node credentials: never overwrite them with this VM's
  rsync -a --exclude kubelet.env --exclude proxy.env /etc/shoal/creds/ "root@$host:/etc/shoal/creds/"
  ssh "root@$host" 'chown shoal:shoal /etc/shoal/nats-auth.conf && systemctl reload shoal-nats.service'
done
# the new node gets its own two users' credentials and the CA certificate, nothing else
staging=$(mktemp -d); trap 'rm -rf "$staging"' EXIT
mkdir -p -m 0700 "$staging/creds" "$staging/tls"
cp /etc/shoal/tls/ca.pem "$staging/tls/"
cp "/etc/shoal/creds/kubelet-$node.env" "/etc/shoal/creds/proxy-$node.env" "$staging/creds/"
rsync -a --exclude .venv "$prefix/" "root@$ip:/root/shoal-src/"
rsync -a --delete "$staging/" "root@$ip:/root/shoal-secrets/"
ssh "root@$ip" "/root/shoal-src/deploy/install-vm.sh --role node --nats-peers $peers --address $ip \
  --node-name $node --secrets /root/shoal-secrets --prefix $prefix"
echo "node $node installed; watch it register: shoal get nodes -w"
