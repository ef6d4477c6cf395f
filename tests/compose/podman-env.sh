#!/usr/bin/env bash
# Prepares podman on a machine without a Docker engine or an image registry (see
# docs/operations.md, "Compose without Docker"), then prints the CONTAINERS_CONF path.
#   1. containers.conf with runc and lowered ulimits (this sandbox cannot raise rlimits and
#      has no cgroup v2 for crun), and the netavark network backend (with CNI, podman turns
#      DNS off on `internal: true` networks, so services could not find each other);
#   2. the base image docker.io/library/debian:bookworm-slim, when podman does not have it,
#      built from Debian's archive with debootstrap (the rootfs tarball is cached in
#      $PARLEY_CACHE_DIR, default /var/cache/parley, so later runs take seconds).
# Usage: CONTAINERS_CONF=$(tests/compose/podman-env.sh)
set -euo pipefail
cache="${PARLEY_CACHE_DIR:-/var/cache/parley}"
mkdir -p "$cache"
conf="$cache/containers.conf"
cat >"$conf.tmp" <<'CONF'
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=4096:4096"]
[engine]
runtime = "runc"
[network]
network_backend = "netavark"
# Not CNI's 10.88.0.0/16: a machine that ran podman with CNI before keeps a cni-podman0
# bridge with that subnet, whose route would swallow the containers' replies.
default_subnet = "10.87.0.0/16"
CONF
mv "$conf.tmp" "$conf"
export CONTAINERS_CONF="$conf"

image=docker.io/library/debian:bookworm-slim
if ! podman image exists "$image"; then
    tarball="$cache/debian-bookworm-minbase.tar"
    if [ ! -s "$tarball" ]; then
        mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
        mirror="${mirror:-http://deb.debian.org/debian}"
        rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
        echo "podman-env: debootstrap bookworm from $mirror (about a minute)" >&2
        debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >&2
        # The same apt sources inside the image as on the host (security updates included),
        # so containers get the library versions the native tests use.
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then
            cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/"
            rm -f "$rootfs/etc/apt/sources.list"
        fi
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    podman import "$tarball" "$image" >&2
fi
echo "$conf"
