#!/bin/sh
# deps.sh -- make sure the Debian packages governord needs are installed.
#
#   scripts/deps.sh build          what `make` and `make run` need
#   scripts/deps.sh test           plus everything `make test` needs
#   scripts/deps.sh bench          what `make` and the scripts in bench/ need
#   scripts/deps.sh --list MODE    print the package names and exit
#
# As root, missing packages are installed with apt-get; as any other user
# they are listed and the script fails, so nothing is half set up.
set -eu

# one group per line, so that additions merge cleanly
BUILD_PKGS="gcc make pkg-config libmicrohttpd-dev libcgroup-dev libsystemd-dev libjansson-dev libinih-dev"
TEST_PKGS="libcmocka-dev python3 python3-pytest curl"
# load tests, fuzzing (clang 14 + libFuzzer runtime), valgrind, lint
TEST_PKGS="$TEST_PKGS wrk clang-14 libclang-rt-14-dev valgrind cppcheck clang-tidy-14"
BENCH_PKGS="wrk nginx python3 curl"

list=false
if [ "${1:-}" = "--list" ]; then
    list=true
    shift
fi
mode=${1:-build}
case "$mode" in
    build) pkgs=$BUILD_PKGS ;;
    test) pkgs="$BUILD_PKGS $TEST_PKGS" ;;
    bench) pkgs="$BUILD_PKGS $BENCH_PKGS" ;;
    *) echo "usage: $0 [--list] build|test|bench" >&2; exit 2 ;;
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
# a service package (nginx, prometheus) must not start during the install
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
# shellcheck disable=SC2086
apt-get install -y -qq -o DPkg::Lock::Timeout=600 $missing >/dev/null
rm -f /usr/sbin/policy-rc.d
