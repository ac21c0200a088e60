#!/usr/bin/env bash
# Make a private CA and one TLS certificate per NATS server (used for clients and for routes).
#
#   deploy/make-certs.sh OUT_DIR NAME=ADDR[,ADDR...] [NAME=ADDR...]
#   deploy/make-certs.sh /etc/shoal/tls shoal-1=10.0.0.11 shoal-2=10.0.0.12 shoal-3=10.0.0.13,nats3.example
#
# Writes OUT_DIR/ca.pem, ca-key.pem (keep it off the servers once done), and NAME.pem / NAME-key.pem
# for every server. Each certificate names the server's addresses (IPs or DNS names), NAME itself,
# localhost and 127.0.0.1, and is valid for server and client auth (routes verify each other).
# An existing CA is reused, so the script can add a server later. Needs openssl.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
out=$1; shift
days=${SHOAL_CERT_DAYS:-825}
mkdir -p "$out"
umask 077
if [ ! -f "$out/ca.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=Shoal NATS CA" \
    -keyout "$out/ca-key.pem" -out "$out/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
for spec in "$@"; do
  name=${spec%%=*}
  addrs=${spec#*=}
  [ "$name" != "$spec" ] || { echo "bad server spec '$spec': want NAME=ADDR[,ADDR...]" >&2; exit 2; }
  san="DNS:$name,DNS:localhost,IP:127.0.0.1"
  IFS=, read -r -a list <<<"$addrs"
  for a in "${list[@]}"; do
    [ -n "$a" ] || continue
    if [[ $a =~ ^[0-9.]+$ || $a == *:* ]]; then san="$san,IP:$a"; else san="$san,DNS:$a"; fi
  done
  ext=$(mktemp)
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' \
    "$san" >"$ext"
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$name" -keyout "$out/$name-key.pem" \
    -out "$out/$name.csr" 2>/dev/null
  openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" -CAcreateserial \
    -days "$days" -sha256 -extfile "$ext" -out "$out/$name.pem" 2>/dev/null
  rm -f "$ext" "$out/$name.csr"
  echo "$out/$name.pem ($san)"
done
chmod 0644 "$out/ca.pem" "$out"/*.pem
chmod 0600 "$out"/*-key.pem
