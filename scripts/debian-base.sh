#!/bin/sh
# debian-base.sh -- a Debian bookworm base image made here, without a registry.
#
#   scripts/debian-base.sh OUT.tar
#
# debootstrap (minbase) of bookworm, trimmed the way Debian's official slim
# images are (no docs but copyrights, no man pages, locales or apt lists),
# written as a tar for `podman import`.  `make image` imports it as
# docker.io/library/debian:bookworm when the container engine has no such
# image and cannot pull one; the Dockerfile's build stage starts FROM it
# (the runtime stage is FROM scratch and needs nothing).  Needs root and
# debootstrap; ~25 s.  DEBIAN_MIRROR overrides the mirror.
set -eu
out=${1:?usage: $0 OUT.tar}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
rootfs=$(mktemp -d "${TMPDIR:-/tmp}/governord-base-XXXXXX")
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
    { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
SLIM
find "$rootfs/var/cache/apt/archives" "$rootfs/var/lib/apt/lists" -mindepth 1 \
    ! -name lock ! -type d -delete
rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/lintian/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
find "$rootfs/usr/share/doc" ! -type d ! -name copyright -delete
tar -C "$rootfs" -cf "$out" .
