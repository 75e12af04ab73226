#!/bin/sh
# build-mhd.sh -- libmicrohttpd without HTTPS, from Debian's own source package.
#
#   scripts/build-mhd.sh PREFIX [CACHE_DIR]
#
# Run in the Dockerfile's build stage.  Debian's libmicrohttpd is built with
# GnuTLS, which governord never uses but which costs about 6.7 MB of shared
# libraries in the image and 2.4 MiB of resident memory; this builds the same
# source (Debian's patches applied, Debian's hardening flags) with
# --disable-https as a static library only, installed under PREFIX with its
# pkg-config file, so `PKG_CONFIG_PATH=PREFIX/lib/pkgconfig make` links it
# into governord.
#
# The source comes from bookworm's deb-src through an apt configuration
# private to this script (nothing under /etc/apt changes).  CACHE_DIR, when
# given and writable, keeps the result as VERSION-RECIPE.tar: `make image`
# and `make test-container` mount build/image-cache there (podman build
# --volume), so the ~1 minute build runs once per Debian version.  Needs
# gcc, make and dpkg-dev.
set -eu
prefix=${1:?usage: $0 PREFIX [CACHE_DIR]}
cache=${2:-}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# change RECIPE whenever the configure line below changes
RECIPE=nohttps-static-1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
cat >"$work/src.sources" <<SRC
Types: deb-src
URIs: $mirror
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_opts="-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts=$work \
-o Dir::State::lists=$work/lists -o Dir::Cache=$work/cache -o APT::Sandbox::User=root"
# shellcheck disable=SC2086
apt-get $apt_opts update -qq
# shellcheck disable=SC2086
version=$(apt-cache $apt_opts showsrc libmicrohttpd | sed -n 's/^Version: //p' | sort -V | tail -n 1)
[ -n "$version" ] || { echo "build-mhd.sh: no libmicrohttpd source in bookworm" >&2; exit 1; }
key="libmicrohttpd-$version-$RECIPE"

if [ -n "$cache" ] && [ -f "$cache/$key.tar" ]; then
    tar -C / -xf "$cache/$key.tar"
    echo "build-mhd.sh: libmicrohttpd $version ($RECIPE) from $cache/$key.tar"
    exit 0
fi

# shellcheck disable=SC2086
(cd "$work" && apt-get $apt_opts source -qq "libmicrohttpd=$version" >/dev/null)
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'libmicrohttpd-*' | head -n 1)
[ -n "$src" ] || { echo "build-mhd.sh: the source did not unpack" >&2; exit 1; }
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cd "$src"
./configure -q --prefix="$prefix" --disable-https --disable-doc --disable-examples \
    --disable-curl --disable-nls --enable-static --disable-shared --with-pic \
    CFLAGS="$(dpkg-buildflags --get CFLAGS)" CPPFLAGS="$(dpkg-buildflags --get CPPFLAGS)" \
    LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" >/dev/null || { tail -n 40 config.log >&2; exit 1; }
make -s -j"$(nproc)" -C src/microhttpd >/dev/null
make -s -C src/microhttpd install DESTDIR="$work/inst" >/dev/null
make -s -C src/include install DESTDIR="$work/inst" >/dev/null
install -D -m 644 libmicrohttpd.pc "$work/inst$prefix/lib/pkgconfig/libmicrohttpd.pc"
rm -f "$work/inst$prefix"/lib/*.la
# only PREFIX, so that unpacking at / touches nothing else (not even /'s mode)
tar -C "$work/inst" -cf "$work/mhd.tar" "${prefix#/}"
tar -C / -xf "$work/mhd.tar"
if [ -n "$cache" ] && mkdir -p "$cache" 2>/dev/null && [ -w "$cache" ]; then
    rm -f "$cache"/libmicrohttpd-*.tar
    cp "$work/mhd.tar" "$cache/$key.tar.tmp" && mv "$cache/$key.tar.tmp" "$cache/$key.tar"
fi
echo "build-mhd.sh: libmicrohttpd $version ($RECIPE) built"
