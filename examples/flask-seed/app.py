"""The seed's metrics app, as it ran in the incident (reconstructed).

Every request to /counter runs the collector, which appends a 500 MiB block
(really written: every page is charged to the cgroup) to a global list that
nothing ever empties.  Under a 1 GiB memory limit the kernel OOM-kills the
process at the second request (two blocks and the interpreter pass 1 GiB);
in the pod nginx then answered 502.  A deque(maxlen=3) would not have saved
it: three blocks are 1.5 GiB.  app_governed.py is the same app with one
change: the list is a GovernedBuffer of the governor's Python client.

    python3 app.py [PORT]          (default 8000, 0: any free port;
                                    BLOCK_MIB overrides 500)
"""
import os
import sys

from flask import Flask

BLOCK = int(os.environ.get("BLOCK_MIB", "500")) * 1024 * 1024

app = Flask(__name__)
counter = 0
data = []  # the collector's global list


def collect():
    # bytearray(b"x") * n writes every byte: the pages are really charged
    data.append(bytearray(b"x") * BLOCK)


@app.route("/counter")
def counter_view():
    global counter
    counter += 1
    collect()
    return f"Counter value: {counter}\n"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 8000,
            threaded=False)
