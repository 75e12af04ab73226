#!/usr/bin/env bash
# run.sh -- prove governord on a real cgroup v2 kernel (make test-vm).
#
# The host's memory controller is bound to cgroup v1, so this boots Debian's
# cloud kernel under QEMU (TCG software emulation; KVM hangs on these
# machines) with cgroup_no_v1=all, which gives the guest a real cgroup v2
# memory controller with PSI and OOM kills.  Steps:
#
#   1. check the tools (QEMU, cpio, jq, a C compiler with static libc);
#      install them as root, else say what is missing and fail;
#   2. fetch the kernel package that linux-image-cloud-amd64 depends on and
#      busybox-static (apt-get download, cached under build/vm/) and take
#      their vmlinuz and busybox;
#   3. pack an initramfs: governord with the shared libraries ldd lists,
#      jq with its libraries, static busybox (sh, wget, dd, ...), the static
#      port-0xf4 exit helper, and the guest's /init (tests/vm/init.sh);
#   4. boot it under `timeout` and judge the run: QEMU must exit with 1 (the
#      guest wrote 0 to port 0xf4), the serial log must hold every expected
#      PASS line and no FAIL line, and no kernel panic.
#
# Usage: tests/vm/run.sh GOVERNORD_BINARY
# Environment: VM_DIR (default build/vm), VM_TIMEOUT (seconds, default 240),
#              VM_MEM (default 512M), VM_SMP (default 2), VM_CASES (only these
#              cases, space-separated; default all).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
governord=${1:?usage: $0 GOVERNORD_BINARY}
VM_DIR=${VM_DIR:-$repo/build/vm}
VM_TIMEOUT=${VM_TIMEOUT:-240}
VM_MEM=${VM_MEM:-512M}
VM_SMP=${VM_SMP:-2}

# Every case /init runs; a missing PASS line for any of them fails the test.
CASES="seed-fixed seed-observe resize wakeups pressure-readonly parent-limit slow-readers cleanup"
# VM_CASES="a b": run (and expect) only those cases, for work on one case
if [ -n "${VM_CASES:-}" ]; then
    CASES=$VM_CASES
fi

say() { printf 'test-vm: %s\n' "$*"; }
die() { printf 'test-vm: FAIL: %s\n' "$*" >&2; exit 1; }

[ -x "$governord" ] || die "$governord is not an executable (run make first)"
governord=$(cd "$(dirname "$governord")" && pwd)/$(basename "$governord")

# ---- 1. tools ---------------------------------------------------------------
# Debian packages of the commands used here.  busybox comes from the
# busybox-static package too, but is taken out of its .deb (step 2) rather
# than installed: busybox-static and busybox conflict, and other parts of a
# system may want the dynamic one.
need_tools() {
    local missing="" pkg
    command -v qemu-system-x86_64 >/dev/null || missing="$missing qemu-system-x86"
    command -v cpio >/dev/null || missing="$missing cpio"
    command -v jq >/dev/null || missing="$missing jq"
    command -v cc >/dev/null || missing="$missing gcc"
    [ -e /usr/lib/x86_64-linux-gnu/libc.a ] || missing="$missing libc6-dev"
    for pkg in $missing; do echo "$pkg"; done | sort -u | tr '\n' ' '
}
missing=$(need_tools)
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        die "missing Debian packages: $missing-- install them with: sudo apt-get install -y $missing(or run make test-vm as root)"
    fi
    say "installing $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 $missing >/dev/null
    missing=$(need_tools)
    [ -z "$missing" ] || die "still missing after apt-get install: $missing"
fi

# ---- 2. the kernel and busybox, from their Debian packages --------------------
mkdir -p "$VM_DIR"
candidate() { apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'; }
if [ -z "$(candidate busybox-static)" ] && [ "$(id -u)" -eq 0 ]; then
    say "apt has no package lists yet: apt-get update"
    apt-get update -qq || true
fi

# from_deb PKG MEMBER DEST: puts MEMBER (a path in the package, may hold a
# wildcard) of PKG's candidate version at DEST.  Cached: DEST is reused while
# DEST.version names that version, or as it is when apt knows no version.
from_deb() {
    local pkg=$1 member=$2 dest=$3 ver tmpd
    ver=$(candidate "$pkg")
    if [ -z "$ver" ]; then
        [ -s "$dest" ]
        return
    fi
    if [ -s "$dest" ] && [ "$(cat "$dest.version" 2>/dev/null)" = "$ver" ]; then
        return 0
    fi
    say "fetching $pkg $ver (cached as $dest)"
    mkdir -p "$(dirname "$dest")"
    tmpd=$(mktemp -d "$VM_DIR/download.XXXXXX")
    # -o APT::Sandbox::User=root: the _apt user may not write into build/
    if (cd "$tmpd" && apt-get download -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null) &&
        dpkg-deb --fsys-tarfile "$tmpd"/*.deb | tar -x -C "$tmpd" --wildcards "$member"; then
        # shellcheck disable=SC2086
        mv $tmpd/$member "$dest"
        echo "$ver" > "$dest.version"
        rm -rf "$tmpd"
        return 0
    fi
    rm -rf "$tmpd"
    return 1
}

# the kernel: the package linux-image-cloud-amd64 depends on (its name holds
# the ABI number, which changes with kernel updates)
kpkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
       awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }' || true)
if [ -n "$kpkg" ]; then
    vmlinuz="$VM_DIR/kernel/$kpkg/vmlinuz"
    from_deb "$kpkg" './boot/vmlinuz-*' "$vmlinuz" ||
        die "cannot download the kernel package $kpkg (apt-get download failed; is apt reachable?)"
else
    # apt has no package lists (not root, offline): a cached kernel will do
    vmlinuz=$(find "$VM_DIR/kernel" -name vmlinuz -size +1 2>/dev/null | head -n1)
    [ -n "$vmlinuz" ] || die "no kernel: apt does not know linux-image-cloud-amd64 and nothing is cached in $VM_DIR/kernel (run apt-get update as root, or make test-vm as root)"
fi
kver=$(basename "$(dirname "$vmlinuz")")
say "kernel: $kver $(cat "$vmlinuz.version" 2>/dev/null || true)"

# busybox, statically linked: it is the guest's only userland besides ours
busybox="$VM_DIR/busybox-static/busybox"
if ! from_deb busybox-static ./bin/busybox "$busybox"; then
    die "no static busybox: apt cannot download busybox-static and nothing is cached as $busybox (run apt-get update as root)"
fi
case $(LC_ALL=C ldd "$busybox" 2>&1 || true) in
    *'not a dynamic executable'*) ;;
    *) die "$busybox is not statically linked" ;;
esac

# ---- 3. the initramfs -------------------------------------------------------
root="$VM_DIR/root"
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc}

# copies a binary and every shared library ldd lists, each to its own path
copy_with_libs() {
    local bin=$1 dest=$2 lib
    install -m 0755 "$bin" "$root$dest"
    for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}
copy_with_libs "$governord" /bin/governord
copy_with_libs "$(command -v jq)" /bin/jq
install -m 0755 "$busybox" "$root/bin/busybox"
cc -static -Os -Wall -Wextra -Werror -o "$root/bin/guest-exit" "$here/guest-exit.c"
cc -static -Os -Wall -Wextra -Werror -o "$root/bin/slow-clients" "$here/slow-clients.c"
install -m 0755 "$here/init.sh" "$root/init"
install -m 0644 "$repo/policies/default.ini" "$root/etc/default.ini"
echo "root:x:0:0:root:/:/bin/sh" > "$root/etc/passwd"
echo "nobody:x:65534:65534:nobody:/:/bin/false" >> "$root/etc/passwd"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$VM_DIR/initrd.gz"
say "initramfs: $(du -h "$VM_DIR/initrd.gz" | cut -f1) compressed, $(du -sh "$root" | cut -f1) unpacked"

# ---- 4. boot and judge --------------------------------------------------------
log="$VM_DIR/serial.log"
say "booting: qemu-system-x86_64 TCG -smp $VM_SMP -m $VM_MEM, timeout ${VM_TIMEOUT}s; serial log in $log"
start=$(date +%s)
set +e
timeout --kill-after=10 "$VM_TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp "$VM_SMP" -m "$VM_MEM" \
    -nographic -no-reboot -nodefaults -serial stdio \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -kernel "$vmlinuz" -initrd "$VM_DIR/initrd.gz" \
    -append "console=ttyS0 cgroup_no_v1=all panic=-1 quiet${VM_CASES:+ vmcases=${VM_CASES// /,}}" \
    </dev/null 2>&1 |
    # SeaBIOS clears the screen and resets the terminal: drop its escapes
    sed -u -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\r$//' | tee "$log"
qemu_rc=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))

problems=()
case $qemu_rc in
    1) ;;  # the guest wrote 0 to port 0xf4
    3) problems+=("the guest reported failure (QEMU exit 3 = guest-exit 1)") ;;
    124|137) problems+=("the guest hung: killed by the ${VM_TIMEOUT}s timeout") ;;
    0) problems+=("QEMU exited 0: the guest rebooted or powered off without a verdict") ;;
    *) problems+=("QEMU exited $qemu_rc (guest-exit code $(( (qemu_rc - 1) / 2 )) or a QEMU error)") ;;
esac
if grep -q 'Kernel panic' "$log"; then
    problems+=("kernel panic: $(grep -m1 'Kernel panic' "$log")")
fi
for c in $CASES; do
    grep -q "^PASS $c:" "$log" || problems+=("no PASS line for case '$c'")
done
if grep -q '^FAIL ' "$log"; then
    while IFS= read -r line; do problems+=("$line"); done < <(grep '^FAIL ' "$log")
fi

echo
say "guest verdict lines:"
grep -E '^(PASS|FAIL) ' "$log" | sed 's/^/    /' || true
ncases=$(echo "$CASES" | wc -w)
npass=0
for c in $CASES; do grep -q "^PASS $c:" "$log" && npass=$((npass + 1)); done
boot=$(sed -n 's/^guest-boot-epoch: \([0-9]*\).*/\1/p' "$log" | head -n1)
say "guest run: ${elapsed}s (the kernel started $(( ${boot:-$start} - start ))s after QEMU), kernel $kver"
if [ ${#problems[@]} -gt 0 ]; then
    for p in "${problems[@]}"; do printf 'test-vm: FAIL: %s\n' "$p" >&2; done
    nfail=$((ncases - npass))
    [ $nfail -gt 0 ] || nfail=1  # every case passed, but the run did not end well
    echo "test-vm: $npass passed, $nfail failed"
    exit 1
fi
echo "test-vm: $npass passed, 0 failed"
