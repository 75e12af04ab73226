#!/bin/sh
# guest-test.sh -- runs inside the VM, as a service of the real systemd there.
#
# contrib/governord.service is installed as written (only WatchdogSec= is
# shortened by a drop-in for the restart check).  Every check prints PASS or
# FAIL; the verdict leaves the VM through vm-exit (QEMU's exit status).
set -u
failed=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failed=1; }
show() { systemctl show -p "$2" --value "$1"; }
metric() { curl -sf "http://127.0.0.1:$1/metrics" | grep "^$2 " | cut -d' ' -f2; }
finish() {
    echo "--- journal of governord"
    journalctl -u governord -u gov-transient --no-pager -o short-monotonic | tail -40
    [ "$failed" -eq 0 ] && echo "GUEST VERDICT: PASS" || echo "GUEST VERDICT: FAIL"
    /usr/local/bin/vm-exit "$failed"
}
# wait_for DESCRIPTION SECONDS COMMAND...: retries COMMAND every 0.2 s
wait_for() {
    what=$1 secs=$2
    shift 2
    n=$((secs * 5))
    while [ "$n" -gt 0 ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
        n=$((n - 1))
    done
    echo "timed out after ${secs}s: $what"
    return 1
}

echo "systemd $(systemctl --version | head -1 | cut -d' ' -f2), kernel $(uname -r)"

# ---- Type=notify: `systemctl start` returns once READY=1 arrived --------------
if systemctl start governord; then
    pass "systemctl start governord (Type=notify) returned: READY=1 received"
else
    fail "systemctl start governord"
    systemctl status governord --no-pager
    finish
fi
[ "$(show governord ActiveState)" = active ] && pass "ActiveState=active" ||
    fail "ActiveState=$(show governord ActiveState)"
status=$(show governord StatusText)
case "$status" in
    "level normal, usage "*" of 512Mi") pass "StatusText=$status" ;;
    *) fail "StatusText='$status'" ;;
esac
pid=$(show governord MainPID)
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" -ne 0 ] && pass "DynamicUser: runs as uid $uid" || fail "runs as root"

# ---- MemoryMax= is the limit the governor reads ---------------------------------
limit=$(metric 8080 governor_memory_limit_bytes)
[ "$limit" = 536870912 ] && pass "governor_memory_limit_bytes $limit = MemoryMax=512M" ||
    fail "governor_memory_limit_bytes '$limit', want 536870912"
[ "$(metric 8080 'governor_memory_limit_source{source="cgroup"}')" = 1 ] &&
    pass "limit source: cgroup" || fail "limit source is not the cgroup"
current=$(metric 8080 governor_memory_current_bytes)
cg=$(cat /sys/fs/cgroup/system.slice/governord.service/memory.current)
[ -n "$current" ] && [ "$current" -gt 0 ] && pass "memory.current read: $current (now $cg)" ||
    fail "governor_memory_current_bytes '$current'"
systemctl set-property --runtime governord MemoryMax=256M
if wait_for "the new limit" 5 sh -c \
    '[ "$(curl -sf http://127.0.0.1:8080/metrics | grep "^governor_memory_limit_bytes ")" = "governor_memory_limit_bytes 268435456" ]'; then
    pass "systemctl set-property MemoryMax=256M seen at once"
else
    fail "MemoryMax=256M not seen"
fi

# ---- the journal's native protocol, auto-detected through JOURNAL_STREAM ---------
if journalctl -u governord GOVERNOR_EVENT=start -o verbose --no-pager | grep -q 'GOVERNOR_PORT=8080'; then
    pass "journal: GOVERNOR_EVENT=start with GOVERNOR_PORT=8080"
else
    fail "no structured start entry in the journal"
fi
if journalctl -u governord -o cat --no-pager | grep -q '^{'; then
    fail "JSON lines reached the journal through stderr"
else
    pass "journal: no JSON lines on the stream (structured entries only)"
fi

# ---- reload: ExecReload sends SIGHUP; RELOADING=1 ... READY=1 -----------------------
mkdir -p /etc/governor
printf '[governor]\ninterval_ms = 100\n' >/etc/governor/policy.ini
systemctl restart governord || fail "restart with a policy file"
gen1=$(metric 8080 governor_policy_generation)
printf '[governor]\ninterval_ms = 200\n' >/etc/governor/policy.ini.new
mv /etc/governor/policy.ini.new /etc/governor/policy.ini
if wait_for "generation 2" 5 sh -c \
    '[ "$(curl -sf http://127.0.0.1:8080/metrics | grep "^governor_policy_generation ")" = "governor_policy_generation 2" ]'; then
    pass "policy file change: generation $gen1 -> 2"
else
    fail "policy file change not applied"
fi
hups=$(journalctl -u governord GOVERNOR_EVENT=signal -o cat --no-pager | grep -c SIGHUP)
if systemctl reload governord; then
    pass "systemctl reload governord (ExecReload=/bin/kill -HUP \$MAINPID)"
else
    fail "systemctl reload governord"
fi
wait_for "the SIGHUP in the journal" 5 sh -c \
    "[ \$(journalctl -u governord GOVERNOR_EVENT=signal -o cat --no-pager | grep -c SIGHUP) -gt $hups ]" &&
    pass "governord logged the SIGHUP" || fail "no SIGHUP entry after the reload"
# RELOADING=1 then READY=1: active again, with the reload's status line
wait_for "reload status" 5 sh -c \
    '[ "$(systemctl show -p ActiveState --value governord)" = active ] &&
     systemctl show -p StatusText --value governord | grep -q "^policy generation 2 in force$"' &&
    pass "after the reload: active, StatusText=$(show governord StatusText)" ||
    fail "after the reload: $(show governord ActiveState), StatusText='$(show governord StatusText)'"

# ---- the watchdog restarts a governor that stopped pinging ---------------------------
mkdir -p /run/systemd/system/governord.service.d
printf '[Service]\nWatchdogSec=2s\n' >/run/systemd/system/governord.service.d/watchdog.conf
systemctl daemon-reload
systemctl restart governord
old=$(show governord MainPID)
restarts=$(show governord NRestarts)
kill -STOP "$old"
if wait_for "a watchdog restart" 15 sh -c \
    "[ \"\$(systemctl show -p NRestarts --value governord)\" -gt $restarts ] && [ \"\$(systemctl show -p ActiveState --value governord)\" = active ]"; then
    pass "WatchdogSec=2s: frozen governor (pid $old) restarted as pid $(show governord MainPID)"
else
    fail "no watchdog restart (NRestarts=$(show governord NRestarts), state $(show governord ActiveState))"
fi
journalctl -u governord --no-pager | grep -q "Watchdog timeout" &&
    pass "systemd logged the watchdog timeout" || fail "no 'Watchdog timeout' in the journal"
rm -r /run/systemd/system/governord.service.d
systemctl daemon-reload

# ---- stop: STOPPING=1, exit 0 --------------------------------------------------------
systemctl stop governord
[ "$(show governord ExecMainStatus)" = 0 ] && [ "$(show governord Result)" = success ] &&
    pass "systemctl stop: exit status 0, Result=success" ||
    fail "stop: ExecMainStatus=$(show governord ExecMainStatus) Result=$(show governord Result)"

# ---- systemd-run, as README.md shows it ------------------------------------------------
if systemd-run --unit=gov-transient --service-type=notify --property=NotifyAccess=main \
    --property=WatchdogSec=10s --property=MemoryMax=512M --property=MemorySwapMax=0 \
    --property=DynamicUser=yes --property=ProtectSystem=strict \
    /usr/local/bin/governord --listen 127.0.0.1:8081; then
    pass "systemd-run --service-type=notify returned after READY=1"
else
    fail "systemd-run"
fi
limit=$(metric 8081 governor_memory_limit_bytes)
[ "$limit" = 536870912 ] && pass "transient unit: limit $limit" || fail "transient limit '$limit'"
systemctl stop gov-transient
systemctl is-active -q gov-transient && fail "gov-transient still active" ||
    pass "transient unit stopped"

finish
