"""The Dockerfile, built and run for real with podman.

No Docker engine runs here and no registry can be pulled from, so the base
of the build stage is made locally: debootstrap (minbase) of bookworm,
trimmed the way Debian's official slim images are (scripts/debian-base.sh),
imported as docker.io/library/debian:bookworm; the build uses --pull=never
and mounts build/image-cache, where scripts/build-mhd.sh keeps its
libmicrohttpd build.  The runtime stage is FROM scratch: the image must hold
governord's files and nothing else (no shell).  podman runs with its own
configuration and storage in a temporary directory (runtime runc, low
default ulimits, host network: no iptables or netns changes).

Then the image runs like the chart runs it: `--memory 256m` (no swap), a
read-only root filesystem, the image's numeric non-root user, the policy
directory mounted read-only at /etc/governor, and a seed-like collector
(64 MiB blocks every 250 ms: without a governor that is an OOM kill within
about a second).  It must stay alive for 30 s answering /counter, with the cgroup
v1 files inside the container (the v1 path in a real container), no OOM
kill, and a graceful exit on `podman stop`.  The same container in `observe`
mode is OOM-killed: the limit is real, and the governor is what keeps the
first one alive.  With GOVERNOR_SHUTDOWN_DELAY=2s (what the chart passes as
--shutdown-delay), a SIGTERM fails /readyz at once, /counter keeps
answering, and the container exits 0 after the delay.

Everything is removed at the end (containers, images, storage, the cgroups
podman made, and the host directories podman created that did not exist
before).  GOVERNORD_TEST_ROOTFS_TAR=FILE keeps the debootstrap result in FILE
between runs (for development; CI builds it fresh).
"""
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIMIT = 256 * 2**20
BASE = "docker.io/library/debian"
IMAGE = "localhost/governord:test"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
TOOLS = ("podman", "runc", "debootstrap", "conmon")
# where root podman keeps state outside its configured directories
HOST_STATE = [Path("/run/runc"), Path("/run/containers"), Path("/var/lib/containers"),
              Path("/run/libpod")]
SEED_LIKE = """[collector]
block_size = 64Mi
interval_ms = 250
"""
def need(ok, what):
    if ok:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} (CI=true: this test must not be skipped)")
    pytest.skip(f"SKIPPED: {what}")


class Podman:
    """podman with its configuration and storage under one directory."""

    def __init__(self, root):
        self.root = root
        self.cgroup_parents = []
        conf = root / "conf"
        conf.mkdir()
        (conf / "containers.conf").write_text(f"""[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{root}/events.log"
tmp_dir = "{root}/libpod-tmp"
volume_path = "{root}/volumes"
static_dir = "{root}/storage/libpod"
[network]
network_config_dir = "{root}/networks"
""")
        (conf / "storage.conf").write_text(f"""[storage]
driver = "overlay"
graphroot = "{root}/storage"
runroot = "{root}/run"
""")
        (conf / "registries.conf").write_text('unqualified-search-registries = ["docker.io"]\n'
                                              'short-name-mode = "permissive"\n')
        self.env = dict(os.environ, CONTAINERS_CONF=str(conf / "containers.conf"),
                        CONTAINERS_STORAGE_CONF=str(conf / "storage.conf"),
                        CONTAINERS_REGISTRIES_CONF=str(conf / "registries.conf"))

    def __call__(self, *args, check=True, timeout=600, **kw):
        # cwd: conmon writes a file named "oom" into its working directory
        r = subprocess.run(["podman", *args], env=self.env, cwd=self.root, capture_output=True,
                           text=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"podman {' '.join(args[:3])}... exit {r.returncode}:\n"
                                 f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r

    def cgroup_parent(self, name):
        parent = f"/governord-ct-{os.getpid()}-{name}"
        self.cgroup_parents.append(parent)
        return parent

    def inspect(self, what, fmt):
        return self("inspect", "--format", fmt, what).stdout.strip()

    def cleanup(self):
        self("rm", "--all", "--force", "--time", "0", check=False)
        self("rmi", "--all", "--force", check=False)
        self("system", "reset", "--force", check=False)
        mounts = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True,
                                text=True).stdout.split()
        for m in sorted((m for m in mounts if m.startswith(str(self.root))), reverse=True):
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        left = []
        for parent in self.cgroup_parents:
            for controller in Path("/sys/fs/cgroup").iterdir():
                top = controller / parent.lstrip("/")
                dirs = [top, *(d for d in top.rglob("*") if d.is_dir())] if top.is_dir() else []
                for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
                    try:
                        d.rmdir()
                    except OSError as e:
                        left.append(f"{d}: {e.strerror}")
        return left


def make_base_rootfs(tar):
    """debootstrap bookworm (minbase), trimmed like the official slim image."""
    cached = os.environ.get("GOVERNORD_TEST_ROOTFS_TAR")
    if cached and Path(cached).is_file():
        shutil.copy(cached, tar)
        return "cached"
    r = subprocess.run([str(REPO / "scripts" / "debian-base.sh"), str(tar)],
                       env=dict(os.environ, DEBIAN_MIRROR=MIRROR), capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    if cached:
        shutil.copy(tar, cached)
    return "debootstrap"


@pytest.fixture(scope="module")
def podman():
    need(os.geteuid() == 0, "the container test needs root (podman with runc, cgroups)")
    missing = [t for t in TOOLS if not shutil.which(t)]
    need(not missing, f"missing tools: {' '.join(missing)} (scripts/deps.sh test installs them)")
    created = [p for p in HOST_STATE if not p.exists()]
    root = Path(tempfile.mkdtemp(prefix=f"governord-container-{os.getpid()}-"))
    pm = Podman(root)
    try:
        yield pm
    finally:
        left = pm.cleanup()
        for p in created:
            shutil.rmtree(p, ignore_errors=True)
        left += [str(p) for p in created if p.exists()]
        print(f"\ncleanup: containers, images, podman storage and cgroups removed; "
              f"left over: {left or 'nothing'}")
    assert not left, f"not cleaned up: {left}"


@pytest.fixture(scope="module")
def image(podman):
    t0 = time.monotonic()
    tar = podman.root / "base.tar"
    how = make_base_rootfs(tar)
    podman("import", str(tar), f"{BASE}:bookworm")
    tar.unlink()
    cache = REPO / "build" / "image-cache"
    cache.mkdir(parents=True, exist_ok=True)
    mhd_cached = sorted(p.name for p in cache.glob("libmicrohttpd-*.tar"))
    t1 = time.monotonic()
    podman("build", "--pull=never", "--network", "host", "--cgroup-parent",
           podman.cgroup_parent("build"), "--volume", f"{cache}:/var/cache/governord-mhd",
           "-t", IMAGE, str(REPO), timeout=1800)
    t2 = time.monotonic()
    print(f"\nbase image ({how}): {t1 - t0:.1f} s; podman build: {t2 - t1:.1f} s "
          f"(libmicrohttpd {'from ' + mhd_cached[0] if mhd_cached else 'built'})")
    return IMAGE


def image_size(podman, name):
    return int(podman("image", "inspect", "--format", "{{.Size}}", name).stdout)


def image_files(podman, image):
    """{path: (type, size)} of every entry in the image's file system."""
    cid = podman("create", image).stdout.strip()
    try:
        out = podman.root / "export.tar"
        podman("export", "-o", str(out), cid)
    finally:
        podman("rm", cid)
    with tarfile.open(out) as t:
        files = {"/" + m.name.lstrip("./"): (m.type, m.size) for m in t.getmembers()}
        policy = t.extractfile("etc/governor/policy.ini").read().decode()
    out.unlink()
    return files, policy


def test_image_holds_only_governord(podman, image):
    """FROM scratch: governord, its libraries and loader, passwd/group and the
    policy; nothing else, so no shell and no package manager."""
    size = image_size(podman, image)
    files, policy = image_files(podman, image)
    regular = {p: sz for p, (kind, sz) in files.items() if kind == tarfile.REGTYPE}
    libs = sorted(p for p in regular if ".so" in p)
    print(f"\nimage {image}: {size / 1e6:.1f} MB ({size} bytes), {len(regular)} files: "
          f"{', '.join(Path(p).name for p in libs)}")
    assert size < 20e6
    assert set(regular) - set(libs) == {"/usr/local/bin/governord", "/etc/passwd",
                                        "/etc/group", "/etc/governor/policy.ini"}
    assert "/lib64/ld-linux-x86-64.so.2" in libs
    assert not any("gnutls" in p or "microhttpd" in p or "cgroup" in p for p in libs), libs
    assert not [p for p, (kind, _) in files.items() if kind == tarfile.SYMTYPE]
    for tool in ("/bin/sh", "/bin/bash", "/usr/bin/apt-get", "/usr/bin/dpkg", "/bin/sleep"):
        assert tool not in files
    assert policy == (REPO / "policies" / "default.ini").read_text()
    r = podman("run", "--rm", "--network", "host", "--entrypoint", "/bin/sh", image, "-c",
               "true", check=False)
    assert r.returncode != 0, "a shell ran in the image"


def test_image_config(podman, image):
    cfg = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    print(f"\nimage config: User={cfg['User']} Entrypoint={cfg['Entrypoint']} Cmd={cfg['Cmd']} "
          f"ExposedPorts={sorted(cfg['ExposedPorts'])}")
    user, _, group = cfg["User"].partition(":")
    assert user.isdigit() and int(user) != 0 and group.isdigit()
    assert cfg["Entrypoint"] == ["/usr/local/bin/governord"]
    assert cfg["Cmd"] == ["--policy", "/etc/governor/policy.ini"]
    assert "8080/tcp" in cfg["ExposedPorts"]
    r = podman("run", "--rm", "--network", "host", image, "--version")
    assert r.stdout.startswith("governord ")


def start(podman, image, name, policy_text, env=()):
    """Runs the image as the chart would; returns (container id, port)."""
    policy_dir = podman.root / f"policy-{name}"
    policy_dir.mkdir()
    (policy_dir / "policy.ini").write_text(policy_text)
    os.chmod(policy_dir, 0o755)
    os.chmod(policy_dir / "policy.ini", 0o444)
    cid = podman("run", "-d", "--name", f"governord-{name}", "--network", "host",
                 "--memory", "256m", "--memory-swap", "256m",
                 "--read-only", "--read-only-tmpfs=false",
                 "--cgroup-parent", podman.cgroup_parent(name),
                 "-e", "GOVERNOR_LISTEN=127.0.0.1:0", "-e", f"POD_NAME=governord-{name}",
                 "-e", "POD_NAMESPACE=container-test", "-e", "NODE_NAME=podman",
                 *(a for e in env for a in ("-e", e)),
                 "-v", f"{policy_dir}:/etc/governor:ro", image).stdout.strip()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = podman("logs", cid)
        logs = r.stdout + r.stderr
        for line in logs.splitlines():
            if '"event":"start"' in line:
                return cid, json.loads(line)["port"]
        time.sleep(0.1)
    raise AssertionError(f"no start line: {logs}")


def get(port, path):
    # a generous timeout: the machine is shared, and what counts here is that
    # every request is answered, not how fast
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        return r.status, r.read().decode()


def log_time(stamp):
    """Seconds since the epoch of a log line's "time" (2026-11-26T11:54:02.168Z)."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=timezone.utc).timestamp()


def memcg_dir(pid):
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    raise AssertionError("no memory cgroup")


def test_runs_30s_under_256m_read_only_non_root(podman, image):
    cid, port = start(podman, image, "enforce", SEED_LIKE)
    pid = int(podman.inspect(cid, "{{.State.Pid}}"))
    status = dict(l.split(":", 1) for l in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert status["Uid"].split()[0] == "65532", status["Uid"]
    root_mount = [l.split() for l in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
                  if l.split()[4] == "/"][-1]
    assert "ro" in root_mount[5].split(","), f"root filesystem not read-only: {root_mount}"
    memcg = memcg_dir(pid)
    assert int((memcg / "memory.limit_in_bytes").read_text()) == LIMIT

    g = json.loads(get(port, "/governor")[1])
    assert g["cgroup"]["version"] == "v1"
    assert g["memory"]["limit_bytes"] == LIMIT and g["memory"]["limit_source"] == "cgroup"
    assert g["pod"]["name"] == "governord-enforce"

    t0 = time.monotonic()
    n = 0
    slowest = 0.0
    while time.monotonic() - t0 < 30:
        n += 1
        t = time.monotonic()
        code, body = get(port, "/counter")
        slowest = max(slowest, time.monotonic() - t)
        assert (code, body.strip()) == (200, f"Counter value: {n}")
        if n % 20 == 0:
            assert podman.inspect(cid, "{{.State.Running}}") == "true"
        time.sleep(0.25)
    assert podman.inspect(cid, "{{.State.Running}}") == "true"
    g = json.loads(get(port, "/governor")[1])
    oom = dict(l.split() for l in (memcg / "memory.oom_control").read_text().splitlines())
    peak = int((memcg / "memory.max_usage_in_bytes").read_text())
    print(f"\n30 s: {n} /counter answers in order (slowest {slowest * 1000:.0f} ms); "
          f"buffer {g['buffer']}; "
          f"peak usage {peak / 2**20:.0f} MiB of {LIMIT / 2**20:.0f} MiB; "
          f"oom_kill {oom['oom_kill']}; governor oom_kills {g['memory']['oom_kills']}")
    assert oom["oom_kill"] == "0" and g["memory"]["oom_kills"] == 0
    assert g["buffer"]["evictions"] + g["buffer"]["refused"] > 0, \
        "the collector never met the limit: the test would prove nothing"

    # SIGTERM, then SIGKILL after 10 s: exit status 0 means governord ended on
    # its own; its log times how long that took
    podman("stop", "--time", "10", cid)
    code = podman.inspect(cid, "{{.State.ExitCode}}")
    r = podman("logs", cid)
    events = {e["event"]: e["time"] for e in map(json.loads, (r.stdout + r.stderr).splitlines())
              if e.get("event") in ("stop", "exit")}
    took = log_time(events["exit"]) - log_time(events["stop"])
    print(f"podman stop: exit {code}; SIGTERM to exit {took:.3f} s (governord's log)")
    assert code == "0" and took < 5
    assert podman.inspect(cid, "{{.State.OOMKilled}}") == "false"


def test_observe_mode_is_oom_killed(podman, image):
    """Without the governor acting, the same collector dies at the limit."""
    cid, _ = start(podman, image, "observe", "[governor]\nmode = observe\n" + SEED_LIKE)
    parent = Path("/sys/fs/cgroup/memory") / podman.cgroup_parents[-1].lstrip("/")  # its own
    deadline = time.monotonic() + 30
    while podman.inspect(cid, "{{.State.Status}}") == "running":
        assert time.monotonic() < deadline, "observe mode survived 30 s: is the limit applied?"
        time.sleep(0.2)
    code = podman.inspect(cid, "{{.State.ExitCode}}")
    peak = int((parent / "memory.max_usage_in_bytes").read_text())
    print(f"\nobserve: exit {code}, peak {peak / 2**20:.0f} MiB of {LIMIT / 2**20:.0f} MiB")
    assert code == "137", "SIGKILLed by the kernel's OOM killer"
    assert peak >= 0.95 * LIMIT


def test_shutdown_delay_without_a_shell(podman, image):
    """The chart's stop without a preStop command: SIGTERM with a 2 s delay
    fails /readyz at once, /counter keeps answering for the delay (the 2 s
    are what is under test), then the container exits 0.  Idle (collector
    off), it also reports governord's memory and the container's charge."""
    cid, port = start(podman, image, "delay", "[collector]\nenabled = false\n",
                      env=["GOVERNOR_SHUTDOWN_DELAY=2s"])
    pid = int(podman.inspect(cid, "{{.State.Pid}}"))
    memcg = memcg_dir(pid)
    status = dict(l.split(":", 1) for l in Path(f"/proc/{pid}/status").read_text().splitlines())
    pss = next(l.split()[1] for l in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
               if l.startswith("Pss:"))
    usage = int((memcg / "memory.usage_in_bytes").read_text())
    print(f"\nidle: VmRSS {status['VmRSS'].strip()}, Pss {pss} kB, container cgroup usage "
          f"{usage / 2**20:.1f} MiB")
    # the image's goals (issue 12; measured in bench/README.md "Image")
    assert int(status["VmRSS"].split()[0]) <= 5 * 1024
    assert usage <= 8 * 2**20
    assert get(port, "/readyz")[0] == 200
    n = 0
    t0 = time.monotonic()
    podman("kill", "--signal", "TERM", cid)
    sent = time.monotonic()  # delivered between t0 and now
    while True:
        try:
            get(port, "/readyz")
        except urllib.error.HTTPError as e:
            assert (e.code, e.read().decode()) == (503, "shutting down\n")
            drained = time.monotonic()  # governord took the signal before this
            break
        assert time.monotonic() - sent < 1.0, "/readyz still 200 a second after SIGTERM"
        time.sleep(0.02)
    # /counter answers throughout the delay: every request until 1.2 s after
    # /readyz turned 503, and one more at or past that moment (governord took
    # the signal before, so that one is still well inside its 2 s)
    while True:
        late = time.monotonic() - drained >= 1.2
        n += 1
        assert get(port, "/counter") == (200, f"Counter value: {n}")
        if late:
            break
        time.sleep(0.05)
    code = podman("wait", cid, timeout=30).stdout.strip()
    took = time.monotonic() - t0
    print(f"SIGTERM: /counter answered {n} times during the delay; exit {code} after "
          f"{took:.2f} s")
    assert code == "0"
    assert took >= 2.0
