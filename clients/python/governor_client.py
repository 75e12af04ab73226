"""governor_client -- a client of governord's trim protocol (standard library only).

governord keeps a container below its memory limit.  Through its Unix socket
(docs/protocol.md) any process registers what it holds, asks before it
allocates, and releases memory when the governor asks.  This module is one
file; copy it into your application.

    from governor_client import GovernorClient, GovernedBuffer

    # a list of blocks that asks before it grows and drops its oldest blocks
    # when the governor shrinks it
    buf = GovernedBuffer("collector")
    if buf.append(b"x" * (64 << 20)):
        ...                      # admitted and appended
    # or: ask first, make the block only once admitted
    if not buf.add(64 << 20, lambda: bytearray(64 << 20)):
        ...                      # refused: the block was never made
    buf.close()

    # or your own cache
    def on_shrink(nbytes, level, reason):
        return cache.evict_oldest(nbytes)     # bytes really released
    c = GovernorClient("cache", on_shrink=on_shrink,
                       counter=lambda: (cache.bytes, len(cache)))
    c.connect()
    if c.admit(size):
        cache.put(key, value)
        c.count(cache.bytes, len(cache))

A background thread reads the governor's lines: it answers each shrink with
what on_shrink returned (then reports the new count), tracks the level
(`client.level`; at "soft" and above an application should stop growing),
and hands admit answers to the thread waiting in admit().  on_shrink runs on
that thread: it must not wait for a lock the caller of admit() holds.
"""
import json
import os
import queue
import socket
import threading

__all__ = ["GovernorClient", "GovernedBuffer", "GovernorError", "DEFAULT_SOCKET"]

DEFAULT_SOCKET = "/run/governor/governor.sock"
MAX_LINE = 4096
LEVELS = ("normal", "soft", "high", "critical")


class GovernorError(Exception):
    """The governor refused something, closed the connection, or did not answer."""


class GovernorClient:
    """One connection to governord, registered as one shrinker.

    path: the socket (default: $GOVERNOR_SOCKET, else DEFAULT_SOCKET).
    on_shrink(nbytes, level, reason) -> bytes released (called on the reader
    thread; None counts as 0).  on_level(level): called on the reader thread
    when the level changes.  counter() -> (bytes, objects): what is held now,
    reported after every answered shrink.  timeout: seconds to wait for an
    answer (registered, admit)."""

    def __init__(self, name, path=None, on_shrink=None, on_level=None, counter=None,
                 timeout=5.0):
        self.name = name
        self.path = path or os.environ.get("GOVERNOR_SOCKET") or DEFAULT_SOCKET
        self.on_shrink = on_shrink
        self.on_level = on_level
        self.counter = counter
        self.timeout = timeout
        self.id = None
        self.level = None
        self.limit_bytes = None
        self.usage_bytes = None
        self.error = None           # the governor's last error line, if any
        self.shrinks = 0            # shrink messages answered
        self.released = 0           # bytes released in those answers
        self._sock = None
        self._send_lock = threading.Lock()
        self._admit_lock = threading.Lock()  # one admit at a time, as the protocol wants
        self._answers = queue.Queue()
        self._reader = None
        self._closed = threading.Event()

    # ---- connection ----

    def connect(self, bytes=0, objects=0):
        """Connects and registers; returns the `registered` message."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            raise
        s.settimeout(None)
        self._sock = s
        self._closed.clear()
        self._reader = threading.Thread(target=self._read_loop, name="governor-client",
                                        daemon=True)
        self._reader.start()
        self._send({"op": "register", "name": self.name, "bytes": int(bytes),
                    "objects": int(objects)})
        msg = self._answer("registered")
        self.id = msg["id"]
        self.level = msg["level"]
        self.limit_bytes = msg["limit_bytes"]
        self.usage_bytes = msg["usage_bytes"]
        return msg

    def close(self):
        """Closes the connection (the governor forgets this client)."""
        self._closed.set()
        s, self._sock = self._sock, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=self.timeout)

    @property
    def connected(self):
        return self._sock is not None and not self._closed.is_set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- messages ----

    def count(self, bytes, objects=0):
        """Tells the governor what is held now (no answer)."""
        self._send({"op": "count", "bytes": int(bytes), "objects": int(objects)})

    def admit(self, bytes):
        """Asks whether `bytes` more may be allocated; True or False.  The
        governor may first shrink other clients, and this one."""
        with self._admit_lock:
            self._send({"op": "admit", "bytes": int(bytes)})
            # the governor may wait up to its client_timeout_ms for releases
            return bool(self._answer("admit", self.timeout + 60.0)["ok"])

    # ---- internals ----

    def _send(self, obj):
        line = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        if len(line) > MAX_LINE + 1:
            raise GovernorError(f"line too long ({len(line) - 1} bytes)")
        with self._send_lock:
            s = self._sock
            if s is None or self._closed.is_set():
                raise GovernorError(self.error or "not connected")
            try:
                s.sendall(line)
            except OSError as e:
                raise GovernorError(self.error or f"connection lost: {e}") from e

    def _answer(self, op, timeout=None):
        try:
            msg = self._answers.get(timeout=self.timeout if timeout is None else timeout)
        except queue.Empty:
            raise GovernorError(f"no '{op}' answer within {timeout or self.timeout} s") from None
        if msg is None:
            raise GovernorError(self.error or "connection closed by the governor")
        if msg.get("op") != op:
            raise GovernorError(f"expected '{op}', got {msg!r}")
        return msg

    def _read_loop(self):
        f = self._sock.makefile("rb")
        try:
            for raw in f:
                msg = json.loads(raw)
                op = msg.get("op")
                if op == "shrink":
                    self._on_shrink(msg)
                elif op == "level":
                    self._set_level(msg["level"])
                elif op in ("registered", "admit"):
                    self._answers.put(msg)
                elif op == "error":
                    self.error = msg.get("error")
        except (OSError, ValueError):
            pass
        finally:
            self._closed.set()
            self._answers.put(None)  # wakes a waiting admit()

    def _set_level(self, level):
        if level != self.level:
            self.level = level
            if self.on_level:
                self.on_level(level)

    def _on_shrink(self, msg):
        self._set_level(msg.get("level", self.level))
        released = 0
        if self.on_shrink:
            released = int(self.on_shrink(msg["bytes"], msg.get("level"), msg.get("reason")) or 0)
        self.shrinks += 1
        self.released += released
        try:
            self._send({"op": "released", "seq": msg["seq"], "bytes": max(released, 0)})
            if self.counter:
                b, o = self.counter()
                self.count(b, o)
        except GovernorError:
            pass


class GovernedBuffer:
    """A list of blocks (bytes-like) governed by governord: append() asks for
    admission first, and a shrink drops the oldest blocks until at least the
    asked bytes are gone, answering with what it dropped.

    buf = GovernedBuffer("collector"); buf.append(block) -> bool;
    buf.add(size, make) -> bool (make() is called only after the governor
    admitted `size`)."""

    def __init__(self, name, path=None, timeout=5.0, connect=True):
        self._lock = threading.Lock()
        self._blocks = []
        self._bytes = 0
        self.dropped_blocks = 0
        self.dropped_bytes = 0
        self.refused = 0
        self.client = GovernorClient(name, path=path, on_shrink=self._shrink,
                                     counter=self._count, timeout=timeout)
        if connect:
            self.client.connect()

    @property
    def bytes(self):
        with self._lock:
            return self._bytes

    def __len__(self):
        with self._lock:
            return len(self._blocks)

    def blocks(self):
        """A copy of the list of blocks, oldest first."""
        with self._lock:
            return list(self._blocks)

    def append(self, block):
        """Appends block when the governor admits its size; returns whether it did."""
        size = len(block)
        # never under the lock: the governor may shrink this very buffer
        # before it answers, and the shrink takes the lock
        if not self.client.admit(size):
            self.refused += 1
            return False
        with self._lock:
            self._blocks.append(block)
            self._bytes += size
            b, o = self._bytes, len(self._blocks)
        self.client.count(b, o)
        return True

    def add(self, size, make):
        """Asks admission for `size` bytes and, only when admitted, calls
        make() and appends the block it returns; returns whether it did
        (False: refused, and make() was never called; an exception of
        make() is passed on and nothing is appended).

        This is append() for blocks that must not exist before the governor
        said yes: a 500 MiB block under a 1 GiB limit would itself pass the
        limit if it were made first and asked about after.  `size` is what
        is asked for; make() should return a block of that size (its len()
        is what is counted, and what a shrink counts as dropped).  Never
        call it with a lock that on_shrink-side code needs: the governor
        may shrink this very buffer before it answers."""
        size = int(size)
        if not self.client.admit(size):
            self.refused += 1
            return False
        block = make()
        with self._lock:
            self._blocks.append(block)
            self._bytes += len(block)
            b, o = self._bytes, len(self._blocks)
        self.client.count(b, o)
        return True

    def _count(self):
        with self._lock:
            return self._bytes, len(self._blocks)

    def _shrink(self, nbytes, level, reason):
        dropped = 0
        with self._lock:
            while self._blocks and dropped < nbytes:
                block = self._blocks.pop(0)
                dropped += len(block)
                self.dropped_blocks += 1
            self._bytes -= dropped
            self.dropped_bytes += dropped
        return dropped

    def close(self):
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
