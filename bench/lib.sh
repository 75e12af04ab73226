# lib.sh -- helpers shared by the benchmark scripts (sourced, not run).
#
# Every benchmark starts what it measures itself, on loopback ports picked
# free at run time, under names that include the script's PID, and removes
# everything on exit (trap bench_cleanup).  Figures are compared against a
# reference measured in the same invocation, because the machine is shared
# and absolute numbers move by a factor of two from one minute to the next.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
GOVERNORD=${GOVERNORD:-$ROOT/build/governord}
WORK=$(mktemp -d "/tmp/governord-bench-$$-XXXX")
BENCH_PIDS=()
BENCH_CGROUPS=()
V1_MEMORY=/sys/fs/cgroup/memory

bench_cleanup() {
    local p cg
    set +e # clean up as much as possible, whatever fails
    for p in "${BENCH_PIDS[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    for cg in "${BENCH_CGROUPS[@]}"; do
        for _ in $(seq 50); do
            [ -d "$cg" ] || break
            for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do
                kill -9 "$p" 2>/dev/null
            done
            rmdir "$cg" 2>/dev/null || sleep 0.1
        done
        [ -d "$cg" ] && echo "$(basename "$0"): could not remove $cg" >&2
    done
    rm -rf "$WORK"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

# Installs the benchmark tools (as root) and builds governord when missing.
bench_prepare() {
    "$ROOT/scripts/deps.sh" bench || die "missing packages (see above)"
    [ -x "$GOVERNORD" ] || make -C "$ROOT" --no-print-directory >/dev/null || die "build failed"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something accepts connections on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.02
    done
    die "nothing listens on port $1"
}

# start_governord LOG ARGS... -- starts governord in the background (stdin
# from /dev/null, JSON log in LOG) and sets GOV_PID and GOV_PORT.
start_governord() {
    local log=$1 prefix=()
    shift
    if [ -n "${GOV_CGROUP_ENTER:-}" ]; then
        prefix=(sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$GOV_CGROUP_ENTER")
    fi
    GOVERNOR_LOG_FORMAT=json "${prefix[@]}" "$GOVERNORD" --listen 127.0.0.1:0 "$@" \
        </dev/null 2>"$log" &
    GOV_PID=$!
    BENCH_PIDS+=("$GOV_PID")
    GOV_PORT=
    for _ in $(seq 500); do
        # (the log may not exist yet: the shell in the background creates it)
        GOV_PORT=$(sed -n 's/.*"event": *"start".*"port": *\([0-9]*\).*/\1/p' "$log" 2>/dev/null |
            head -1 || true)
        [ -n "$GOV_PORT" ] && return 0
        kill -0 "$GOV_PID" 2>/dev/null || { cat "$log" >&2; die "governord exited"; }
        sleep 0.01
    done
    die "governord did not log its port"
}

# Stops a process started here and reaps it (it may be dead already: OOM).
stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# start_nginx -- the reference: nginx answering every path with the same
# 17 bytes /counter answers, one worker per CPU.  Sets NGINX_PID, NGINX_PORT.
start_nginx() {
    local dir=$WORK/nginx
    mkdir -p "$dir"
    NGINX_PORT=$(free_port)
    cat >"$dir/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=1024;
        location / { return 200 "Counter value: 1\n"; }
    }
}
CONF
    nginx -c "$dir/nginx.conf" -p "$dir" &
    NGINX_PID=$!
    BENCH_PIDS+=("$NGINX_PID")
    wait_port "$NGINX_PORT"
}

# CPU time (clock ticks) used so far by a process and its direct children
# (nginx's workers), all threads included.
cpu_ticks() {
    local pids total=0 p
    pids="$1 $(cat "/proc/$1/task/$1/children" 2>/dev/null)"
    for p in $pids; do
        # fields 14 and 15 of /proc/PID/stat: utime, stime (after the comm)
        total=$((total + $(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
    done
    echo "$total"
}

# new_v1_cgroup NAME LIMIT_BYTES -- a child of the cgroup v1 memory
# hierarchy with a hard limit (no swap escape), removed on exit; sets
# NEW_CGROUP to its path.  (Not to be called in $(...): the subshell would
# forget it for the clean-up.)
new_v1_cgroup() {
    local cg=$V1_MEMORY/$1
    [ -w "$V1_MEMORY" ] && [ -e "$V1_MEMORY/memory.limit_in_bytes" ] ||
        die "needs root and a cgroup v1 memory controller at $V1_MEMORY"
    mkdir "$cg" || die "cannot create $cg"
    BENCH_CGROUPS+=("$cg")
    echo "$2" >"$cg/memory.limit_in_bytes"
    if [ -e "$cg/memory.memsw.limit_in_bytes" ]; then
        echo "$2" >"$cg/memory.memsw.limit_in_bytes"
    fi
    NEW_CGROUP=$cg
}

have_v1_memory() {
    [ -w "$V1_MEMORY" ] && [ -e "$V1_MEMORY/memory.limit_in_bytes" ]
}

machine_line() {
    printf '%s, %s CPUs, kernel %s, load average %s' \
        "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(nproc)" \
        "$(uname -r)" "$(cut -d' ' -f1-3 /proc/loadavg)"
}
