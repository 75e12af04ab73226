#!/bin/sh
# vm.sh -- contrib/governord.service under a real systemd, in a QEMU VM.
#
#   tests/systemd/vm.sh BUILD_DIR
#
# No systemd runs on the test machines (PID 1 is not systemd), so the unit is
# tried in a VM: Debian's cloud kernel (downloaded once with apt-get download
# into $GOVERNORD_VM_CACHE, default BUILD_DIR/vm-cache) boots an initramfs
# made of this machine's own systemd 252, journald, systemctl, journalctl,
# systemd-run, shell and tools, the governord under test and the unit file
# as written.  /init copies the tree to a tmpfs and switch_roots into systemd
# (sandboxing needs a real mount as /).  systemd then starts
# gov-test.service, which runs guest-test.sh; its verdict comes back in
# QEMU's exit status (isa-debug-exit: 1 means the guest wrote 0) and as a
# "GUEST VERDICT: PASS" line on the serial console.  Both must agree.
set -eu
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${GOVERNORD_VM_CACHE:-$build/vm-cache}
work=$(mktemp -d "/tmp/governord-vm-$$-XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
root=$work/root
mkdir -p "$cache"

# ---- the kernel ----------------------------------------------------------------
kpkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1)
[ -n "$kpkg" ] || { echo "FAIL: no linux-image-cloud-amd64 in apt's lists"; exit 1; }
kernel=$cache/$kpkg.vmlinuz
if [ ! -s "$kernel" ]; then
    (cd "$work" && apt-get download -q "$kpkg" >/dev/null 2>&1) ||
        { echo "FAIL: apt-get download $kpkg"; exit 1; }
    dpkg -x "$work"/"$kpkg"_*.deb "$work/k"
    cp "$work"/k/boot/vmlinuz-* "$kernel.tmp" && mv "$kernel.tmp" "$kernel"
    rm -rf "$work/k" "$work"/*.deb
fi

# ---- the root file system ------------------------------------------------------------
# the host's merged-/usr layout, so that the paths ldd prints resolve
mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$root/usr/lib64" "$root/usr/local/bin" \
    "$root/etc/systemd/system" "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp" \
    "$root/var/tmp" "$root/var/log" "$root/root" "$root/newroot"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done

# copy FILE...: each file at its path, symlinks resolved
copy() {
    for f; do
        dir=$(readlink -f "$(dirname "$f")")
        mkdir -p "$root$dir"
        cp -L "$f" "$root$dir/$(basename "$f")"
    done
}
# copy_with_libs BINARY...: binaries and the shared libraries they load
copy_with_libs() {
    copy "$@"
    for lib in $(ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u); do
        [ -e "$root$(readlink -f "$(dirname "$lib")")/$(basename "$lib")" ] || copy "$lib"
    done
}

# systemd and its tools, the shell and tools the scripts use (this machine's
# own, with their libraries), and the governord under test
tools=""
for t in sh cat cp cut grep head mkdir mount umount mv rm sed sleep tail uname awk \
         switch_root curl; do
    p=$(command -v "$t") || { echo "FAIL: $t not found"; exit 1; }
    tools="$tools $p"
done
# shellcheck disable=SC2086
copy_with_libs /usr/lib/systemd/systemd /usr/lib/systemd/systemd-journald \
    /usr/lib/systemd/systemd-shutdown /usr/lib/systemd/systemd-cgroups-agent \
    /usr/bin/systemctl /usr/bin/journalctl /usr/bin/systemd-run /bin/kill $tools \
    "$build/governord"
mv "$root$(readlink -f "$build")/governord" "$root/usr/local/bin/governord"
gcc -static -O2 -o "$root/usr/local/bin/vm-exit" "$here/vm-exit.c"
install -m 0755 "$here/guest-test.sh" "$root/usr/local/bin/gov-vm-test"

# the system's identity; users for NSS (DynamicUser= checks that its uid is free)
cp /etc/os-release "$root/etc/os-release" 2>/dev/null || cp /usr/lib/os-release "$root/etc/os-release"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'passwd: files systemd\ngroup: files systemd\nshadow: files\n' >"$root/etc/nsswitch.conf"
echo governord-vm >"$root/etc/hostname"
printf '0123456789abcdef0123456789abcdef\n' >"$root/etc/machine-id"

# units: the distribution's targets and journald, the unit under test, the test
units=/usr/lib/systemd/system
[ -d "$units" ] || units=/lib/systemd/system
mkdir -p "$root/usr/lib/systemd/system"
for u in sysinit.target basic.target sockets.target timers.target paths.target slices.target \
         local-fs.target local-fs-pre.target swap.target network.target network-pre.target \
         multi-user.target shutdown.target umount.target final.target poweroff.target \
         systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket \
         systemd-journald-audit.socket; do
    cp "$units/$u" "$root/usr/lib/systemd/system/$u"
done
cp "$top/contrib/governord.service" "$root/etc/systemd/system/governord.service"
cat >"$root/etc/systemd/system/gov-test.target" <<'EOF'
[Unit]
Description=governord unit test
Requires=gov-test.service
After=gov-test.service
EOF
ln -s gov-test.target "$root/etc/systemd/system/default.target"
cat >"$root/etc/systemd/system/gov-test.service" <<'EOF'
[Unit]
Description=governord unit test (guest-test.sh)
Requires=basic.target systemd-journald.socket
After=basic.target systemd-journald.socket systemd-journald.service
[Service]
Type=oneshot
ExecStart=/usr/local/bin/gov-vm-test
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
EOF

cat >"$root/init" <<'EOF'
#!/bin/sh
# copy the initramfs to a tmpfs and hand over to systemd (sandboxing wants a
# real mount as /)
mount -t proc proc /proc
mount -t tmpfs -o mode=0755 tmpfs /newroot
for d in /*; do
    case "$d" in /newroot|/proc|/init) ;; *) cp -a "$d" /newroot/ ;; esac
done
mkdir -p /newroot/proc
umount /proc
exec switch_root /newroot /usr/lib/systemd/systemd
EOF
chmod 0755 "$root/init"

(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$work/initrd.gz"

# ---- boot ----------------------------------------------------------------------------------
echo "booting: $(basename "$kernel"), initramfs $(du -h "$work/initrd.gz" | cut -f1)"
start=$(date +%s)
set +e
timeout 180 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 1024M \
    -nographic -no-reboot -nodefaults -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -kernel "$kernel" -initrd "$work/initrd.gz" \
    -append "console=ttyS0 panic=-1 quiet systemd.show_status=0 systemd.unit=gov-test.target" \
    </dev/null >"$work/console.log" 2>&1
rc=$?
set -e
tr -d '\r' <"$work/console.log" | grep -E '^(PASS|FAIL|GUEST VERDICT|systemd [0-9]|timed out)' || true
echo "QEMU exit status $rc after $(( $(date +%s) - start )) s"
if [ "$rc" -eq 1 ] && tr -d '\r' <"$work/console.log" | grep -q '^GUEST VERDICT: PASS$'; then
    echo "PASS: contrib/governord.service under systemd in a VM"
    exit 0
fi
echo "--- console (last 80 lines)"
tr -d '\r' <"$work/console.log" | tail -80
echo "FAIL: contrib/governord.service under systemd in a VM"
exit 1
