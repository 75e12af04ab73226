#!/bin/sh
# image.sh -- `make image`: build the governord image and print its size.
#
#   scripts/image.sh [TAG]          (default localhost/governord:dev)
#
# Uses docker when a docker daemon answers, else podman (honouring
# CONTAINERS_CONF and CONTAINERS_STORAGE_CONF, as bench/image.sh and the
# container test set them).  The build stage starts FROM debian:bookworm;
# when podman has no such image and cannot pull one (no registry, as on the
# CI machines), it is made here with scripts/debian-base.sh (debootstrap, as
# root) and kept in build/image-cache/ for the next build.  podman builds
# mount build/image-cache at /var/cache/governord-mhd, where
# scripts/build-mhd.sh keeps libmicrohttpd between builds.
set -eu
tag=${1:-localhost/governord:dev}
root=$(cd "$(dirname "$0")/.." && pwd)
cache=$root/build/image-cache
base=docker.io/library/debian:bookworm
mkdir -p "$cache"

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    docker build -t "$tag" "$root"
    size=$(docker image inspect --format '{{.Size}}' "$tag")
else
    command -v podman >/dev/null 2>&1 || { echo "image.sh: neither docker nor podman" >&2; exit 1; }
    if ! podman image exists "$base" &&
        ! timeout 60 podman pull -q "$base" >/dev/null 2>&1; then
        if [ ! -f "$cache/debian-bookworm.tar" ]; then
            echo "image.sh: no $base to pull; making it with debootstrap" >&2
            "$root/scripts/debian-base.sh" "$cache/debian-bookworm.tar.tmp"
            mv "$cache/debian-bookworm.tar.tmp" "$cache/debian-bookworm.tar"
        fi
        podman import -q "$cache/debian-bookworm.tar" "$base" >/dev/null
    fi
    podman build --pull=never --network host \
        --volume "$cache:/var/cache/governord-mhd" -t "$tag" "$root"
    size=$(podman image inspect --format '{{.Size}}' "$tag")
fi
echo "image $tag: $size bytes ($(awk "BEGIN { printf \"%.1f\", $size / 1e6 }") MB)"
