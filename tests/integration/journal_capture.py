"""Stands in for journald around one governord process (run under unshare -m).

Usage: unshare --mount --propagation private -- python3 journal_capture.py
           [--no-socket | --stale-socket] -- GOVERNORD ARGS...

In its own mount namespace (checked: it refuses to run in its parent's), it
mounts a tmpfs on /run and binds an AF_UNIX datagram socket at
/run/systemd/journal/socket -- the path libsystemd's sd_journal_send()
writes to -- unless --no-socket is given (no socket file at all) or
--stale-socket (a socket file nobody listens on).  It starts governord with stderr
connected to a stream socket and JOURNAL_STREAM set to that socket's
device:inode, exactly as systemd does for a service whose output goes to the
journal.  It prints one JSON object per line on stdout:

  {"kind": "spawned", "pid": N}
  {"kind": "entry", "pid": SENDER, "fields": {...}}   one per datagram received
  {"kind": "stderr_chunk", "data": "..."}             what governord wrote to stderr,
                                                      as it arrives
  {"kind": "stderr", "data": "..."}                   all of it, once governord exited
  {"kind": "exit", "code": N}

SIGTERM is passed on to governord; the helper exits after governord did.
Entries are decoded from the journal's native protocol: KEY=VALUE lines, or
KEY, a 64-bit little-endian length and the raw value for values with line
feeds; an entry too large for a datagram arrives as a memfd (SCM_RIGHTS).
"""
import array
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading

JOURNAL_DIR = "/run/systemd/journal"
JOURNAL_SOCKET = JOURNAL_DIR + "/socket"


_emit_lock = threading.Lock()


def emit(obj):
    with _emit_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def parse_native(data):
    fields = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = nl + 1
        else:
            key = line
            (size,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            value = data[nl + 9:nl + 9 + size]
            if data[nl + 9 + size:nl + 10 + size] != b"\n":
                raise ValueError("binary field not terminated by a line feed")
            i = nl + 10 + size
        fields[key.decode()] = value.decode("utf-8", "replace")
    return fields


def receive(sock, done):
    """Reads entries until done is set and the queue is empty."""
    creds = struct.calcsize("3i")
    fds_space = socket.CMSG_SPACE(4 * array.array("i").itemsize)
    sock.settimeout(0.1)
    while True:
        try:
            data, anc, _, _ = sock.recvmsg(1 << 20, socket.CMSG_SPACE(creds) + fds_space)
        except socket.timeout:
            if done.is_set():
                return
            continue
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", payload[:creds])[0]
            elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
                for fd in fds:
                    data = os.pread(fd, 1 << 24, 0)
                    os.close(fd)
        emit({"kind": "entry", "pid": pid, "fields": parse_native(data)})


def main():
    args = sys.argv[1:]
    with_socket, stale = True, False
    if args and args[0] == "--no-socket":
        with_socket = False
        args = args[1:]
    elif args and args[0] == "--stale-socket":
        with_socket, stale = False, True
        args = args[1:]
    if args and args[0] == "--":
        args = args[1:]
    # unshare(1) exec'd us in a new namespace; our parent (the test) is in the
    # one we came from.  Never mount over the /run of that one.
    if os.readlink("/proc/self/ns/mnt") == os.readlink(f"/proc/{os.getppid()}/ns/mnt"):
        sys.exit("journal_capture.py: not in a private mount namespace; refusing to mount "
                 "over /run")

    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=1m", "tmpfs", "/run"],
                   check=True)
    os.makedirs(JOURNAL_DIR)
    if stale:
        # the socket file of a journald that is gone: connecting is refused
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(JOURNAL_SOCKET)
        s.close()
    sock = None
    done = threading.Event()
    receiver = None
    if with_socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(JOURNAL_SOCKET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        receiver = threading.Thread(target=receive, args=(sock, done))
        receiver.start()

    # stderr is a stream socket, as systemd connects a service to journald
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    st = os.fstat(theirs.fileno())
    env = dict(os.environ)
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    child = []
    signal.signal(signal.SIGTERM, lambda *_: child and child[0].send_signal(signal.SIGTERM))
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=theirs.fileno())
    child.append(proc)
    theirs.close()
    emit({"kind": "spawned", "pid": proc.pid})

    chunks = []

    def read_stderr():
        while True:
            b = ours.recv(65536)
            if not b:
                return
            chunks.append(b)
            emit({"kind": "stderr_chunk", "data": b.decode("utf-8", "replace")})

    reader = threading.Thread(target=read_stderr)
    reader.start()
    code = proc.wait()
    reader.join()  # governord exited: its end of the socket is closed
    # every entry sent before the exit is queued on the socket by now
    done.set()
    if receiver is not None:
        receiver.join()
    emit({"kind": "stderr", "data": b"".join(chunks).decode("utf-8", "replace")})
    emit({"kind": "exit", "code": code})


if __name__ == "__main__":
    main()
