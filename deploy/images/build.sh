#!/bin/sh
# Build Shoal's "real" test images from Debian packages, so kubernetes.io's example manifests run with only
# the image name changed (no registry needed, only a Debian mirror):
#
#   localhost/shoal/nginx:bookworm   nginx-light (+ curl), serving /usr/share/nginx/html on :80 as the official
#                                    nginx image does, access/error logs to stdout/stderr
#   localhost/shoal/redis:bookworm   redis-server and redis-cli; CMD redis-server (protected mode off)
#   localhost/shoal/debian:bookworm  bash, coreutils, curl, procps (ps), iproute2, ca-certificates: the shell image
#   localhost/shoal/python-k8s:bookworm  python3 with the official Kubernetes client (Debian's python3-kubernetes):
#                                    a pod that talks to the API as in-cluster programs do
#
# Usage: deploy/images/build.sh [nginx|redis|debian|python-k8s ...]   (default: all). Idempotent: an image that exists is
# skipped (SHOAL_REBUILD=1 rebuilds). Needs mmdebstrap (apt-get install mmdebstrap) and podman; ~20-60 s each.
# SHOAL_DEBIAN_SOURCES names the apt sources file (default /etc/apt/sources.list.d/debian.sources, else
# /etc/apt/sources.list). Pass CONTAINERS_CONF in the environment to target a particular Podman configuration.
# Exit status: 0 when every asked image exists at the end; 2 when a build failed (e.g. no mirror reachable).
set -eu

SUITE=${SHOAL_DEBIAN_SUITE:-bookworm}
SOURCES=${SHOAL_DEBIAN_SOURCES:-}
if [ -z "$SOURCES" ]; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then SOURCES=/etc/apt/sources.list.d/debian.sources
    else SOURCES=/etc/apt/sources.list; fi
fi

packages() {
    case "$1" in
        nginx) echo "nginx-light,curl,ca-certificates" ;;
        redis) echo "redis-server,redis-tools" ;;
        debian) echo "curl,procps,iproute2,ca-certificates,netcat-openbsd" ;;
        python-k8s) echo "python3,python3-kubernetes,ca-certificates" ;;
        *) return 1 ;;
    esac
}

# A customize hook (run by mmdebstrap with the rootfs as $1) and the image's configuration.
hook() {
    case "$1" in
        nginx) echo 'mkdir -p "$1/usr/share/nginx/html" && cp "$1/var/www/html/index.nginx-debian.html" "$1/usr/share/nginx/html/index.html" 2>/dev/null || echo "<h1>Welcome to nginx!</h1>" > "$1/usr/share/nginx/html/index.html"; sed -i "s#root /var/www/html;#root /usr/share/nginx/html;#" "$1/etc/nginx/sites-available/default"; ln -sf /dev/stdout "$1/var/log/nginx/access.log"; ln -sf /dev/stderr "$1/var/log/nginx/error.log"' ;;
        redis) echo 'mkdir -p "$1/data"' ;;
        debian|python-k8s) echo 'true' ;;
    esac
}

changes() {
    case "$1" in
        nginx) printf '%s\n' 'CMD ["nginx", "-g", "daemon off;"]' 'EXPOSE 80' 'STOPSIGNAL SIGQUIT' ;;
        redis) printf '%s\n' 'CMD ["redis-server", "--protected-mode", "no"]' 'WORKDIR /data' 'EXPOSE 6379' ;;
        debian) printf '%s\n' 'CMD ["/bin/bash"]' ;;
        python-k8s) printf '%s\n' 'CMD ["python3"]' ;;
    esac
}

build() {
    name=$1
    image="localhost/shoal/$name:$SUITE"
    pkgs=$(packages "$name") || { echo "unknown image $name (nginx, redis, debian, python-k8s)" >&2; return 1; }
    if [ "${SHOAL_REBUILD:-0}" != 1 ] && podman image exists "$image"; then
        echo "$image already present"
        return 0
    fi
    tmp=$(mktemp -d /tmp/shoal-image-XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    echo "building $image from $SUITE ($pkgs) ..."
    mmdebstrap --quiet --variant=apt --include="$pkgs" --customize-hook="$(hook "$name")" \
        --format=tar "$SUITE" "$tmp/rootfs.tar" "$SOURCES"
    set --
    while IFS= read -r change; do set -- "$@" --change "$change"; done <<CHANGES
$(changes "$name")
CHANGES
    podman import "$@" "$tmp/rootfs.tar" "$image" >/dev/null
    rm -rf "$tmp"
    trap - EXIT
    echo "built $image"
}

if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "mmdebstrap is not installed: apt-get install mmdebstrap" >&2
    exit 2
fi
[ "$#" -gt 0 ] || set -- nginx redis debian python-k8s
status=0
for name in "$@"; do
    build "$name" || { echo "building $name failed" >&2; status=2; }
done
exit $status
