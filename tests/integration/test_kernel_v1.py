"""governord under a real kernel memory limit (cgroup v1 on this machine).

A child cgroup of the v1 memory hierarchy gets a 512 MiB limit that the
kernel enforces with real OOM kills; governord runs inside it with the
seed-like collector (96 MiB blocks every 100 ms, which would pass the limit
in half a second).  In enforce mode it must survive 60 s with oom_kill 0 and
answer every /counter request; in observe mode the same set-up must be
OOM-killed -- the proof that the governor is what saves it.  The cgroup is
removed whatever happens.
"""
import os
import signal
import subprocess
import time

import pytest

from cgroupfs import MIB
from daemon import Daemon, scaled, write_file

V1_ROOT = "/sys/fs/cgroup/memory"
LIMIT = 512 * MIB

SEED = """[governor]
mode = {mode}
interval_ms = 100
[collector]
block_size = 96Mi
interval_ms = 100
"""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(os.path.join(V1_ROOT, "memory.limit_in_bytes")),
    reason="needs root and a cgroup v1 memory controller at " + V1_ROOT)


class V1Cgroup:
    def __init__(self, name, limit):
        self.path = os.path.join(V1_ROOT, name)
        os.mkdir(self.path)
        self.write("memory.limit_in_bytes", str(limit))
        if os.path.exists(os.path.join(self.path, "memory.memsw.limit_in_bytes")):
            self.write("memory.memsw.limit_in_bytes", str(limit))  # no swap escape

    def write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(value)

    def read(self, name):
        with open(os.path.join(self.path, name)) as f:
            return f.read()

    def oom_kills(self):
        for line in self.read("memory.oom_control").splitlines():
            key, value = line.split()
            if key == "oom_kill":
                return int(value)
        raise AssertionError("memory.oom_control has no oom_kill")

    def remove(self, procs=()):
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        deadline = time.monotonic() + 10
        while os.path.exists(self.path):
            try:
                os.rmdir(self.path)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture
def v1cgroup(request):
    name = f"governord-test-{os.getpid()}-{request.node.name}"[:100]
    cg = V1Cgroup(name, LIMIT)
    cg.procs = []
    yield cg
    cg.remove([d.proc for d in cg.procs])


def start_in(cg, policy, tmp_path):
    """governord, moved into the cgroup before it runs its first instruction."""
    enter = ["sh", "-c", f'echo $$ > {cg.path}/cgroup.procs && exec "$@"', "sh"]
    d = Daemon(["--policy", policy], log_path=str(tmp_path / "governord.log"), wrapper=enter)
    cg.procs.append(d)
    return d


def test_enforce_survives_60s_under_512mib(v1cgroup, tmp_path):
    policy = write_file(tmp_path / "seed.ini", SEED.format(mode="enforce"))
    d = start_in(v1cgroup, policy, tmp_path)
    st = d.status()
    assert st["cgroup"]["version"] == "v1"
    assert st["cgroup"]["path"] == v1cgroup.path
    assert st["memory"]["limit_bytes"] == LIMIT and st["memory"]["limit_source"] == "cgroup"

    # The seed's loop, for 60 s at least; on a loaded machine the collector
    # allocates more slowly, so the loop goes on (up to a scaled deadline)
    # until 100 answers came and the collector pressed on the limit: 10
    # evictions at soft are 10 x 96 MiB allocated beyond what 512 MiB holds.
    answers = []
    t0 = time.monotonic()
    t_min, t_max = t0 + 60, t0 + 60 + scaled(120)
    while True:
        code, body = d.get("/counter")
        assert code == 200, body
        answers.append(int(body.split()[-1]))
        assert d.proc.poll() is None, d.log_text()[-2000:]
        st = d.status()
        now = time.monotonic()
        if now >= t_min and len(answers) >= 100 and st["buffer"]["evictions"] >= 10:
            break
        assert now < t_max, (f"after {now - t0:.0f} s: {len(answers)} answers, "
                             f"{st['buffer']['evictions']} evictions")
        time.sleep(0.5)  # the seed's loop: a request every half second
    peak = int(v1cgroup.read("memory.max_usage_in_bytes"))
    print(f"\n{len(answers)} /counter answers, peak {peak / MIB:.0f} MiB of {LIMIT / MIB:.0f} MiB "
          f"({peak / LIMIT:.0%}), oom_kill {v1cgroup.oom_kills()}, "
          f"evictions {st['buffer']['evictions']}, refused {st['buffer']['refused']}, "
          f"buffer {st['buffer']['bytes'] / MIB:.0f} MiB")
    assert answers == list(range(1, len(answers) + 1))
    assert len(answers) >= 100
    assert v1cgroup.oom_kills() == 0
    assert peak < 0.95 * LIMIT  # below the policy's critical fraction
    assert st["buffer"]["evictions"] >= 10  # the collector really pressed on the limit
    assert d.stop() == 0


def test_observe_is_oom_killed(v1cgroup, tmp_path):
    policy = write_file(tmp_path / "seed.ini", SEED.format(mode="observe"))
    d = start_in(v1cgroup, policy, tmp_path)
    try:
        d.proc.wait(timeout=scaled(20))
    except subprocess.TimeoutExpired:
        raise AssertionError("observe mode was not OOM-killed in time:\n"
                             + d.log_text()[-2000:])
    assert d.proc.returncode == -signal.SIGKILL
    assert v1cgroup.oom_kills() >= 1
    dry = [r for r in d.records() if r.get("dry_run")]
    assert dry, "observe mode recorded nothing it would have done"
