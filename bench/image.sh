#!/usr/bin/env bash
# image.sh -- the governord image: its size and what governord costs in it.
#
#   bench/image.sh [-b REV] [-n RUNS]
#
# Builds the image of the working tree with `make image` (scripts/image.sh),
# and with -b also the image the Dockerfile of git revision REV builds (e.g.
# the last one based on bookworm-slim), then for each image reports:
#   - its size (podman image inspect .Size);
#   - governord idle with an empty buffer (collector off), run as the chart
#     runs it (non-root, read-only root, --memory 64m, host network), RUNS
#     times, each after 3 s idle: VmRSS (/proc/PID/status), Pss
#     (/proc/PID/smaps_rollup), and the charge of the container's memory
#     cgroup (memory.usage_in_bytes, cgroup v1), with memory.stat's rss and
#     cache beside it;
#   - the same once more with the image's files evicted from the page cache
#     first (posix_fadvise DONTNEED on each, through `podman image mount`):
#     then the container's cgroup is charged for the library pages it reads,
#     the worst case for a pod whose node has not read them before.
# podman runs as root with its own configuration and storage in a temporary
# directory (runtime runc, low default ulimits, as tests/container does), so
# nothing of the machine's own podman state is touched.  The debootstrap base
# and the libmicrohttpd build are kept in build/image-cache/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

BEFORE=
RUNS=3
while getopts b:n:h opt; do
    case $opt in
    b) BEFORE=$OPTARG ;;
    n) RUNS=$OPTARG ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "needs root (podman with runc, cgroups)"
for t in podman runc conmon debootstrap; do
    command -v $t >/dev/null || die "missing $t (scripts/deps.sh test installs it)"
done
echo "machine: $(machine_line)"

PM=$WORK/podman
mkdir -p "$PM/conf"
cat >"$PM/conf/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PM/events.log"
tmp_dir = "$PM/libpod-tmp"
volume_path = "$PM/volumes"
static_dir = "$PM/storage/libpod"
[network]
network_config_dir = "$PM/networks"
CONF
cat >"$PM/conf/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$PM/storage"
runroot = "$PM/run"
CONF
export CONTAINERS_CONF=$PM/conf/containers.conf CONTAINERS_STORAGE_CONF=$PM/conf/storage.conf
CGPARENT=/governord-bench-image-$$
podman_cleanup() {
    podman rm --all --force --time 0 >/dev/null 2>&1 || true
    podman system reset --force >/dev/null 2>&1 || true
    findmnt -rn -o TARGET | grep "^$PM" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    for c in /sys/fs/cgroup/*"$CGPARENT"; do
        [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    bench_cleanup
}
trap podman_cleanup EXIT

CACHE=$ROOT/build/image-cache
mkdir -p "$CACHE"
if [ ! -f "$CACHE/debian-bookworm.tar" ]; then
    "$ROOT/scripts/debian-base.sh" "$CACHE/debian-bookworm.tar.tmp"
    mv "$CACHE/debian-bookworm.tar.tmp" "$CACHE/debian-bookworm.tar"
fi
podman import -q "$CACHE/debian-bookworm.tar" docker.io/library/debian:bookworm >/dev/null
podman tag docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim

printf '[collector]\nenabled = false\n' >"$WORK/policy.ini"
chmod 755 "$WORK"
chmod 644 "$WORK/policy.ini"
mkdir "$WORK/etc-governor" && cp "$WORK/policy.ini" "$WORK/etc-governor/"

# evict IMAGE's files from the page cache (clean pages only; nothing else)
evict() {
    local dir
    dir=$(podman image mount "$1")
    /usr/bin/python3 - "$dir" <<'PY'
import os, sys
for top, _, files in os.walk(sys.argv[1]):
    for f in files:
        p = os.path.join(top, f)
        if os.path.isfile(p) and not os.path.islink(p):
            fd = os.open(p, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
PY
    podman image unmount "$1" >/dev/null
}

# measure NAME IMAGE -- RUNS idle runs of IMAGE and a cold one, one line each
measure() {
    local name=$1 image=$2 i port cid pid memcg size
    size=$(podman image inspect --format '{{.Size}}' "$image")
    echo "$name: image $image, $size bytes ($(awk "BEGIN { printf \"%.1f\", $size / 1e6 }") MB)"
    for i in $(seq "$((RUNS + 1))"); do
        if [ "$i" -gt "$RUNS" ]; then evict "$image"; i=cold; fi
        port=$(free_port)
        cid=$(podman run -d --network host --memory 64m --memory-swap 64m \
            --read-only --read-only-tmpfs=false --user 65532:65532 \
            --cgroup-parent "$CGPARENT/$name-$i" -e "GOVERNOR_LISTEN=127.0.0.1:$port" \
            -v "$WORK/etc-governor:/etc/governor:ro" "$image")
        wait_port "$port"
        sleep 3 # idle: letting time pass is the point
        pid=$(podman inspect --format '{{.State.Pid}}' "$cid")
        memcg=/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:[^:]*memory[^:]*://p' "/proc/$pid/cgroup")
        printf '  run %s: VmRSS %s KiB, Pss %s KiB, cgroup usage %s KiB (rss %s KiB, cache %s KiB)\n' \
            "$i" "$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")" \
            "$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup")" \
            "$(( $(cat "$memcg/memory.usage_in_bytes") / 1024 ))" \
            "$(awk '$1 == "rss" { print $2 / 1024 }' "$memcg/memory.stat")" \
            "$(awk '$1 == "cache" { print $2 / 1024 }' "$memcg/memory.stat")"
        podman stop --time 10 "$cid" >/dev/null
        podman rm "$cid" >/dev/null
    done
}

if [ -n "$BEFORE" ]; then
    mkdir "$WORK/before"
    git -C "$ROOT" archive "$BEFORE" | tar -x -C "$WORK/before"
    t0=$(date +%s)
    podman build -q --pull=never --network host -t localhost/governord:before "$WORK/before" >/dev/null
    echo "before ($BEFORE): podman build $(( $(date +%s) - t0 )) s"
    measure before localhost/governord:before
fi
t0=$(date +%s)
"$ROOT/scripts/image.sh" localhost/governord:dev | tail -n 1
echo "after (working tree): make image $(( $(date +%s) - t0 )) s"
measure after localhost/governord:dev
