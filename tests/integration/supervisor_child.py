"""supervisor_child -- the app that governord supervises in the tests.

Run as `governord ... -- python3 supervisor_child.py RECORD [OPTIONS]`.  It
appends one JSON line per fact to RECORD (an O_APPEND file, so every line
lands whole): first "ready" with its pid, parent pid, GOVERNOR_SOCKET, signal
mask and open descriptors, then one line per signal it receives.

  --on-term exit:N   on SIGTERM exit with status N (default exit:0)
  --on-term ignore   record SIGTERM and go on (governord must SIGKILL it)
  --orphan FILE      leave an orphan: a grandchild whose parent exits at
                     once; the grandchild writes its pid to FILE and execs
                     `sleep 1000` (the test kills it and checks it is reaped)
  --alloc            allocate 8 MiB blocks forever, every page written (to
                     be OOM-killed under a cgroup limit)
"""
import json
import os
import signal
import sys
import time

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
           signal.SIGHUP)


def main():
    record = sys.argv[1]
    opts = sys.argv[2:]
    on_term = "exit:0"
    orphan = None
    alloc = False
    while opts:
        o = opts.pop(0)
        if o == "--on-term":
            on_term = opts.pop(0)
        elif o == "--orphan":
            orphan = opts.pop(0)
        elif o == "--alloc":
            alloc = True
        else:
            raise SystemExit(f"supervisor_child: unknown option {o}")

    # what governord gave us, read before Python's own set-up changes anything
    # (Python ignores SIGPIPE and SIGXFSZ itself, so SigIgn is not ours to see)
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[name] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:  # the listing's own descriptor, closed by now
            pass

    fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def put(obj):
        os.write(fd, (json.dumps(obj) + "\n").encode())

    def on_signal(sig, frame):
        name = signal.Signals(sig).name
        put({"signal": name})
        if sig == signal.SIGTERM and on_term.startswith("exit:"):
            os._exit(int(on_term[5:]))

    for s in SIGNALS:
        signal.signal(s, on_signal)

    if orphan:
        pid = os.fork()
        if pid == 0:
            if os.fork() == 0:
                for s in SIGNALS:
                    signal.signal(s, signal.SIG_DFL)
                with open(orphan + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.rename(orphan + ".tmp", orphan)
                os.execvp("sleep", ["sleep", "1000"])
            os._exit(0)
        os.waitpid(pid, 0)

    put({"event": "ready", "pid": os.getpid(), "ppid": os.getppid(),
         "socket": os.environ.get("GOVERNOR_SOCKET"), "sigblk": status.get("SigBlk"),
         "fds": fds})

    blocks = []
    while True:
        if alloc:
            blocks.append(b"x" * (8 << 20))
        else:
            time.sleep(3600)  # signals interrupt it; their handlers run, then it goes on


if __name__ == "__main__":
    main()
