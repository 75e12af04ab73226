#!/bin/sh
# run-local.sh -- governord as `make run` starts it: on 0.0.0.0:8080, logs as
# text, and governed against a modest 1 GiB (policies/local.ini) instead of
# what the host can give.
#
#   scripts/run-local.sh [GOVERNORD] [ARGS...]
#
# GOVERNORD defaults to build/governord; further arguments go to it (a later
# flag overrides the ones set here, e.g. --listen 127.0.0.1:9090).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/governord}
[ $# -gt 0 ] && shift
exec "$bin" --policy "$here/policies/local.ini" --log-format text "$@"
