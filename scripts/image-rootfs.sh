#!/bin/sh
# image-rootfs.sh -- the whole runtime file system of the governord image.
#
#   scripts/image-rootfs.sh BINARY POLICY ROOTFS
#
# Run in the Dockerfile's build stage; the runtime stage is `FROM scratch`
# plus a copy of ROOTFS.  ROOTFS gets exactly what governord needs to run and
# nothing else (no shell, no package manager):
#   /usr/local/bin/governord        BINARY, stripped
#   every shared library ldd lists  at the path ldd resolved it to
#   the loader                      at the path in the binary (PT_INTERP)
#   /etc/passwd, /etc/group         the runtime user and group 65532
#   /etc/governor/policy.ini        POLICY, the default policy
# and the directories holding them (mode 755, owned by root).
set -eu
bin=${1:?usage: $0 BINARY POLICY ROOTFS}
policy=${2:?usage: $0 BINARY POLICY ROOTFS}
root=${3:?usage: $0 BINARY POLICY ROOTFS}

mkdir -p "$root/usr/local/bin" "$root/etc/governor"
install -m 755 "$bin" "$root/usr/local/bin/governord"
strip --strip-unneeded "$root/usr/local/bin/governord"
install -m 644 "$policy" "$root/etc/governor/policy.ini"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' \
    >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
chmod 644 "$root/etc/passwd" "$root/etc/group"

# "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"     # the file itself, under the name the loader looks for
    chmod 644 "$root$lib"
done
interp=$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[ -f "$root$interp" ] || { echo "image-rootfs.sh: loader $interp missing" >&2; exit 1; }
chmod 755 "$root$interp"
ldd "$bin" | grep -q 'not found' && { echo "image-rootfs.sh: unresolved libraries" >&2; exit 1; }
echo "image-rootfs.sh: $(find "$root" -type f | wc -l) files, $(du -sk "$root" | cut -f1) KiB"
