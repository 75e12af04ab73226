#!/bin/sh
# deps.sh -- make sure the Debian packages governord needs are installed.
#
#   scripts/deps.sh build          what `make` and `make run` need
#   scripts/deps.sh test           plus everything `make test` needs
#   scripts/deps.sh bench          what `make` and the scripts in bench/ need
#   scripts/deps.sh image          the Dockerfile's build stage: `make`'s list
#                                  without libmicrohttpd-dev (built from source
#                                  without HTTPS, scripts/build-mhd.sh)
#   scripts/deps.sh --list MODE    print the package names and exit
#
# As root, missing packages are installed with apt-get; as any other user
# they are listed and the script fails, so nothing is half set up.
set -eu

# one group per line, so that additions merge cleanly
BUILD_PKGS="gcc make pkg-config libmicrohttpd-dev libsystemd-dev libjansson-dev libinih-dev"
# SHA-256 of the policy (governor/policy.c): nettle, already a dependency of libgnutls
BUILD_PKGS="$BUILD_PKGS nettle-dev"
TEST_PKGS="libcmocka-dev python3 python3-pytest curl"
# the counter's Redis store: hiredis to build, a real redis-server for the tests
BUILD_PKGS="$BUILD_PKGS libhiredis-dev"
TEST_PKGS="$TEST_PKGS redis-server redis-tools"
# make test-chart: shared/tools/chart-render (Go, built on first use) and
# k8s-validate, YAML for the tests, and what the chart-in-the-loop sandbox runs
CHART_PKGS="python3-yaml python3-jsonschema golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev golang-gopkg-yaml.v3-dev golang-github-xeipuuv-gojsonschema-dev golang-github-burntsushi-toml-dev busybox iproute2"
# make test-container: the Dockerfile built and run with podman from a debootstrap base
CONTAINER_PKGS="podman runc debootstrap"
# promtool (/metrics); systemd-analyze and systemd itself (the unit, offline
# and in a QEMU VM booted from an initramfs: qemu, cpio, kill for ExecReload);
# ip and unshare (tests in namespaces of their own)
OBSERVE_PKGS="prometheus systemd qemu-system-x86 cpio procps iproute2 util-linux mount"
# make test-vm: the cgroup v2 proof in QEMU (busybox-static is unpacked, not installed:
# it conflicts with busybox)
VM_PKGS="qemu-system-x86 cpio jq libc6-dev"
# make test-browser: the live page in headless Chromium; PIL checks the screenshots
BROWSER_PKGS="chromium python3-pil"
# load tests, fuzzing (clang 14 + libFuzzer runtime), valgrind, lint
# the proof of issue 10 (make demo, make test-kernel): the seed's Flask app
TEST_PKGS="$TEST_PKGS python3-flask"
TEST_PKGS="$TEST_PKGS wrk clang-14 libclang-rt-14-dev valgrind cppcheck clang-tidy-14"
BENCH_PKGS="wrk nginx python3 curl"
# the Dockerfile's build stage: dpkg-dev unpacks and builds libmicrohttpd's source package
IMAGE_PKGS="dpkg-dev"

list=false
if [ "${1:-}" = "--list" ]; then
    list=true
    shift
fi
mode=${1:-build}
case "$mode" in
    build) pkgs=$BUILD_PKGS ;;
    test) pkgs="$BUILD_PKGS $TEST_PKGS $CHART_PKGS $CONTAINER_PKGS $OBSERVE_PKGS $VM_PKGS $BROWSER_PKGS" ;;
    bench) pkgs="$BUILD_PKGS $BENCH_PKGS" ;;
    image) pkgs="$(echo " $BUILD_PKGS " | sed 's/ libmicrohttpd-dev / /') $IMAGE_PKGS" ;;
    *) echo "usage: $0 [--list] build|test|bench|image" >&2; exit 2 ;;
esac
if $list; then
    echo $pkgs
    exit 0
fi

missing=""
for p in $pkgs; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        "install ok installed") ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "governord: missing Debian packages:$missing" >&2
    echo "install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "governord: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# a service package (nginx, prometheus) must not start during the install;
# a policy-rc.d that was there before is left as it was
own_policy=false
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=true
fi
# shellcheck disable=SC2086
apt-get install -y -qq -o DPkg::Lock::Timeout=600 $missing >/dev/null
if $own_policy; then rm -f /usr/sbin/policy-rc.d; fi
