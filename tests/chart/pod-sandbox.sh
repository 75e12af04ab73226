#!/bin/sh
# pod-sandbox.sh -- run one container of a rendered pod spec the way the
# kubelet and runc would, on this machine, without Kubernetes.
#
# The chart-in-the-loop test (test_chart_in_the_loop.py) starts it as root
# under `unshare --mount --propagation private --net`, so every mount and
# network change below lives in namespaces that die with the process:
#
#   - the process joins the memory cgroup CGROUP (the test gave it the
#     container's resources.limits.memory) while it is still root;
#   - the network namespace gets loopback and an eth0 with the pod IP, so
#     probes reach the declared port the way the kubelet's do (on the pod IP,
#     not on 127.0.0.1);
#   - each --bind SRC:DEST[:ro] mounts SRC at DEST, the way volumeMounts and
#     the image's files appear in the container; when DEST does not exist,
#     its parent directory gets a throw-away overlay first, so nothing on the
#     host changes (all overlays before all binds, so that none hides one);
#   - the root filesystem, every mount made here and the cgroup filesystem
#     are then read-only (readOnlyRootFilesystem; unprivileged pods get a
#     read-only cgroupfs);
#   - then it execs CMD (still as root: the test makes CMD a setpriv that
#     takes on the container's user, and an `env -i` with its environment).
#
# Usage:
#   pod-sandbox.sh WORKDIR CGROUP POD_IP [--bind SRC:DEST[:ro]]... -- CMD [ARG]...
#
# WORKDIR holds the overlays' upper and work directories.
set -eu

[ $# -ge 5 ] || { echo "usage: $0 WORKDIR CGROUP POD_IP [--bind SRC:DEST[:ro]]... -- CMD..." >&2; exit 2; }
work=$1 cgroup=$2 pod_ip=$3
shift 3

echo $$ > "$cgroup/cgroup.procs"

ip link set lo up
ip link add eth0 type veth peer name veth0
ip addr add "$pod_ip/24" dev eth0
ip link set veth0 up
ip link set eth0 up

overlays=0
readonly_mounts="/"

# make_path PATH file|dir: create PATH inside this mount namespace only
make_path() {
    parent=$(dirname "$1")
    [ -d "$parent" ] || make_path "$parent" dir
    overlays=$((overlays + 1))
    mkdir -p "$work/overlay$overlays/upper" "$work/overlay$overlays/work"
    mount -t overlay "sandbox-overlay$overlays" \
        -o "lowerdir=$parent,upperdir=$work/overlay$overlays/upper,workdir=$work/overlay$overlays/work" \
        "$parent"
    readonly_mounts="$readonly_mounts $parent"
    if [ "$2" = dir ]; then mkdir "$1"; else : > "$1"; fi
}

# First every missing mount point (overlays on their parents), then the binds:
# an overlay made for one volume (/etc/governor-counter) after the bind of
# another in the same parent (/etc/governor) would hide that bind.
want=
for a in "$@"; do
    if [ "$want" = bind ]; then
        src=${a%%:*}
        rest=${a#*:}
        dest=${rest%%:*}
        [ -e "$dest" ] || { if [ -d "$src" ]; then make_path "$dest" dir; else make_path "$dest" file; fi; }
        want=
    elif [ "$a" = --bind ]; then
        want=bind
    elif [ "$a" = -- ]; then
        break
    fi
done

while [ $# -gt 0 ]; do
    case "$1" in
    --bind)
        spec=$2
        shift 2
        src=${spec%%:*}
        rest=${spec#*:}
        dest=${rest%%:*}
        mount --bind "$src" "$dest"
        case "$rest" in *:ro) readonly_mounts="$readonly_mounts $dest" ;; esac
        ;;
    --)
        shift
        break
        ;;
    *)
        echo "pod-sandbox.sh: unknown option $1" >&2
        exit 2
        ;;
    esac
done
[ $# -gt 0 ] || { echo "pod-sandbox.sh: no command" >&2; exit 2; }

for m in $readonly_mounts; do
    mount -o remount,bind,ro "$m"
done
mount -o remount,bind,ro "$(findmnt -n -o TARGET --target "$cgroup")"

exec "$@"
