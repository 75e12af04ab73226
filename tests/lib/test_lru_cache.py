"""libgovernor as others use it: installed, found with pkg-config, linked
dynamically, governing a program of its own under a real memory limit.

`make install DESTDIR=<tmp> PREFIX=/usr` installs the library; a copy of
examples/lru-cache made outside the source tree is built against that copy
with `pkg-config governor` only (the compiler's -H list shows which
governor.h it read); the program runs with LD_LIBRARY_PATH on the installed
libgovernor.so.0, inside a real memory cgroup (v1 here, v2 where the host
has it) limited to 256 MiB, and is fed 600 entries of 1 MiB.  With the
governor it must survive with oom_kill 0 and its shrinker called; the same
program with --no-governor must be OOM-killed under the same limit (the
proof that the test can fail).  Skipped only without root or without a
memory controller.
"""
import os
import shutil
import signal
import subprocess
import time

import pytest

from daemon import scaled

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MIB = 1 << 20
LIMIT = 256 * MIB
ENTRIES = 600  # of 1 MiB: more than twice what the limit holds
V1_ROOT = "/sys/fs/cgroup/memory"
V2_ROOT = "/sys/fs/cgroup"


def memory_controller():
    """'v1' or 'v2' when a memory controller can be used here, else None."""
    if os.path.exists(os.path.join(V1_ROOT, "memory.limit_in_bytes")):
        return "v1"
    try:
        with open(os.path.join(V2_ROOT, "cgroup.controllers")) as f:
            if "memory" in f.read().split():
                return "v2"
    except OSError:
        pass
    return None


pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or memory_controller() is None,
    reason="needs root and a cgroup v1 or v2 memory controller")


class MemoryCgroup:
    """A child cgroup with a hard memory limit and no swap to escape to."""

    def __init__(self, name, limit):
        self.version = memory_controller()
        root = V1_ROOT if self.version == "v1" else V2_ROOT
        self.path = os.path.join(root, name)
        if self.version == "v2":
            self._write(os.path.join(V2_ROOT, "cgroup.subtree_control"), "+memory")
        os.mkdir(self.path)
        if self.version == "v1":
            self.write("memory.limit_in_bytes", str(limit))
            if os.path.exists(os.path.join(self.path, "memory.memsw.limit_in_bytes")):
                self.write("memory.memsw.limit_in_bytes", str(limit))
        else:
            self.write("memory.max", str(limit))
            if os.path.exists(os.path.join(self.path, "memory.swap.max")):
                self.write("memory.swap.max", "0")

    @staticmethod
    def _write(path, value):
        with open(path, "w") as f:
            f.write(value)

    def write(self, name, value):
        self._write(os.path.join(self.path, name), value)

    def oom_kills(self):
        name = "memory.oom_control" if self.version == "v1" else "memory.events"
        with open(os.path.join(self.path, name)) as f:
            for line in f:
                key, value = line.split()
                if key == "oom_kill":
                    return int(value)
        raise AssertionError(f"{name} has no oom_kill")

    def remove(self):
        deadline = time.monotonic() + scaled(10)
        while os.path.exists(self.path):
            try:
                os.rmdir(self.path)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture
def cgroup(request):
    cg = MemoryCgroup(f"governord-lib-{os.getpid()}-{request.node.name}"[:100], LIMIT)
    yield cg
    cg.remove()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The library installed with DESTDIR, and lru-cache built against it
    from a copy outside the source tree."""
    tmp = tmp_path_factory.mktemp("lib")
    dest = tmp / "dest"
    r = subprocess.run(["make", "--no-print-directory", "-C", SRC, "install",
                        f"DESTDIR={dest}", "PREFIX=/usr"],
                       capture_output=True, text=True, timeout=scaled(600))
    assert r.returncode == 0, r.stdout + r.stderr
    lib = dest / "usr" / "lib"
    for rel in ["lib/libgovernor.so.0", "lib/libgovernor.a", "include/governor.h",
                "lib/pkgconfig/governor.pc", "bin/governord"]:
        assert (dest / "usr" / rel).is_file(), rel
    assert os.readlink(lib / "libgovernor.so") == "libgovernor.so.0"
    # the installed shared library: its soname, and only gov_* exported
    dyn = subprocess.run(["objdump", "-p", str(lib / "libgovernor.so.0")],
                         capture_output=True, text=True, check=True).stdout
    assert "SONAME               libgovernor.so.0" in dyn
    syms = subprocess.run(["nm", "-D", "--defined-only", str(lib / "libgovernor.so.0")],
                          capture_output=True, text=True, check=True).stdout.split("\n")
    names = [line.split()[2].split("@")[0] for line in syms if len(line.split()) == 3
             and line.split()[1].isupper() and line.split()[1] != "A"]
    assert "gov_new" in names and "gov_admit" in names
    assert all(n.startswith("gov_") for n in names), [n for n in names if not n.startswith("gov_")]

    src = tmp / "lru-cache"
    shutil.copytree(os.path.join(SRC, "examples", "lru-cache"), src)
    env = dict(os.environ, PKG_CONFIG_PATH=str(lib / "pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=str(dest))
    env.pop("PKG_CONFIG_LIBDIR", None)
    # -H lists every header the compiler reads: governor.h must be the
    # installed one, and nothing may come from the source tree
    r = subprocess.run(["make", "--no-print-directory", "-C", str(src),
                        "CFLAGS=-O2 -g -Wall -Wextra -Werror -H"],
                       capture_output=True, text=True, env=env, timeout=scaled(120))
    assert r.returncode == 0, r.stdout + r.stderr
    headers = [line.lstrip(". ") for line in r.stderr.splitlines() if line.startswith(".")]
    assert str(dest / "usr" / "include" / "governor.h") in headers, r.stderr
    assert not [h for h in headers if h.startswith(SRC)], r.stderr
    assert SRC not in r.stdout, r.stdout  # the command line: no -I into the tree
    exe = src / "lru-cache"
    needed = subprocess.run(["objdump", "-p", str(exe)], capture_output=True, text=True,
                            check=True).stdout
    assert "NEEDED               libgovernor.so.0" in needed  # linked dynamically
    run_env = dict(os.environ, LD_LIBRARY_PATH=str(lib))
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, env=run_env,
                         check=True).stdout
    assert f"libgovernor.so.0 => {lib}/libgovernor.so.0" in ldd, ldd
    return exe, run_env


def run_in(cg, exe, env, args):
    """Runs lru-cache in cg (moved in before its first instruction), feeds it
    ENTRIES entries, and returns (returncode, stdout, stderr)."""
    enter = ["sh", "-c", f'echo $$ > {cg.path}/cgroup.procs && exec "$@"', "sh"]
    p = subprocess.Popen(enter + [str(exe)] + args, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = p.communicate(f"fill {ENTRIES}\nstats\nquit\n", timeout=scaled(180))
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError(f"lru-cache did not finish: {out[-2000:]} {err[-2000:]}")
    return p.returncode, out, err


def test_installed_library_governs_lru_cache(installed, cgroup):
    exe, env = installed
    rc, out, err = run_in(cgroup, exe, env, [])
    assert rc == 0, f"rc {rc}\n{out}\n{err[-3000:]}"
    assert "governed: limit 256Mi (cgroup)" in out, out
    assert f"filled " in out, out
    stats = dict(kv.split("=") for kv in out.split("stats ", 1)[1].split()[:5])
    assert int(stats["shrinks"]) > 0 and int(stats["released_entries"]) > 0, out
    assert int(stats["bytes"]) < LIMIT, out
    assert "shrink: asked" in err, err[-2000:]
    assert cgroup.oom_kills() == 0


def test_same_program_without_governor_is_oom_killed(installed, cgroup):
    exe, env = installed
    rc, out, err = run_in(cgroup, exe, env, ["--no-governor"])
    assert "not governed" in out, out
    assert rc == -signal.SIGKILL, f"rc {rc}\n{out}\n{err[-2000:]}"
    assert cgroup.oom_kills() >= 1
