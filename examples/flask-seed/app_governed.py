"""The seed's metrics app with its collector governed (see app.py).

The one change: the global list is a GovernedBuffer (clients/python), which
registers with governord over $GOVERNOR_SOCKET, asks for admission before
each block is made (GovernedBuffer.add: the block is made only once the
governor said yes, after it made room), and drops its oldest blocks when
the governor asks it to shrink.  Run it under governord, with the client
on the module path:

    PYTHONPATH=clients/python governord --listen 127.0.0.1:9090 -- \
        python3 examples/flask-seed/app_governed.py 8000

Without a governor (no socket) it fails at start: GovernedBuffer connects.
"""
import os
import sys

from flask import Flask

from governor_client import GovernedBuffer

BLOCK = int(os.environ.get("BLOCK_MIB", "500")) * 1024 * 1024

app = Flask(__name__)
counter = 0
data = GovernedBuffer("collector")  # was: data = []


def collect():
    # bytearray(b"x") * n writes every byte: the pages are really charged
    data.add(BLOCK, lambda: bytearray(b"x") * BLOCK)


@app.route("/counter")
def counter_view():
    global counter
    counter += 1
    collect()
    return f"Counter value: {counter}\n"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 8000,
            threaded=False)
