"""The chart in the loop: the rendered Deployment's container, run for real.

The chart is rendered with its default values.  From the Deployment this
test takes the container's command, args, env, port, probes, volume mounts,
memory limit and user, and from the ConfigMap the policy; it lays the
ConfigMap out on disk exactly as the kubelet does and starts the built
governord in pod-sandbox.sh with exactly that command line and environment:
its own network namespace with a pod IP, the volume mounted read-only at the
declared mountPath, the binary at the command's path, a memory cgroup with
the declared limit, a read-only root, the declared uid and gid.  Then:

  - the probes answer on the declared port of the pod IP;
  - /governor shows the downward-API pod, the mounted policy and the limit;
  - the `helm test` pod's own script passes against it (busybox, as in the
    test image, with the Service's name resolving to the pod);
  - a ConfigMap update written the kubelet's way is live in /governor, and
    an invalid one is refused while the pod stays ready;
  - SIGTERM ends it with status 0 within the grace period.

So the chart and the binary cannot drift apart.  Needs root and the cgroup v1
memory controller (as the real-kernel test does); elsewhere it is skipped
with the reason, and in CI it fails instead.

The tests share one pod and run in file order; the last one stops it.
"""
import configparser
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from chartlib import (NAMESPACE, POLICIES, Renderer, container, documents, governord, need, one,
                      port_number, quantity_bytes, shutdown_delay_seconds)
from kubelet import ConfigMapDir

HERE = Path(__file__).resolve().parent
SANDBOX = HERE / "pod-sandbox.sh"
MEMCG_ROOT = Path("/sys/fs/cgroup/memory")
POD_IP = "10.244.0.7"
NODE = "governord-control-plane"
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TOOLS = ("unshare", "nsenter", "setpriv", "ip", "curl", "findmnt", "busybox")


def resolve_env(c, pod):
    """The container's environment as the kubelet and the runtime set it."""
    env = {"PATH": IMAGE_PATH, "HOSTNAME": pod["name"]}
    fields = {"metadata.name": pod["name"], "metadata.namespace": pod["namespace"],
              "spec.nodeName": pod["node"]}
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"].get("fieldRef", {}).get("fieldPath")
            assert ref in fields, f"env {e['name']}: teach this test its source {e['valueFrom']}"
            env[e["name"]] = fields[ref]
    return env


class Pod:
    """governord from the rendered Deployment, running in pod-sandbox.sh."""

    def __init__(self, docs, tmp):
        self.docs = docs
        self.tmp = tmp
        dep = one(docs, "Deployment")
        self.spec = dep["spec"]["template"]["spec"]
        self.c = container(dep)
        self.meta = {"name": dep["metadata"]["name"] + "-5c9d7b8f4d-x7k2q",
                     "namespace": NAMESPACE,
                     "node": NODE}
        self.env = resolve_env(self.c, self.meta)
        self.argv = self.c["command"] + self.c["args"]
        psc = self.spec["securityContext"]
        sc = self.c["securityContext"]
        self.uid = sc.get("runAsUser", psc["runAsUser"])
        self.gid = sc.get("runAsGroup", psc["runAsGroup"])
        self.port = self.c["ports"][0]["containerPort"]
        self.limit = quantity_bytes(self.c["resources"]["limits"]["memory"])
        self.configmaps = {}   # volume name -> ConfigMapDir
        self.cgroup = None
        self.proc = None

    def groups(self):
        """setpriv's supplementary groups: the pod's fsGroup (which the kubelet
        adds to the container's groups), else none."""
        fs_group = self.spec["securityContext"].get("fsGroup")
        return [f"--groups={fs_group}"] if fs_group is not None else ["--clear-groups"]

    def volumes(self):
        """The volume mounts as pod-sandbox --bind arguments; ConfigMaps written."""
        binds = []
        vols = {v["name"]: v for v in self.spec["volumes"]}
        for m in self.c["volumeMounts"]:
            v = vols[m["name"]]
            assert "configMap" in v, f"volume {v['name']}: teach this test its type"
            cm = [d for d in self.docs if d["kind"] == "ConfigMap"
                  and d["metadata"]["name"] == v["configMap"]["name"]][0]
            vol = ConfigMapDir(self.tmp / "volumes" / v["name"], cm["data"],
                               v["configMap"].get("defaultMode", 0o644))
            self.configmaps[v["name"]] = vol
            binds += ["--bind", f"{vol.path}:{m['mountPath']}" + (":ro" if m.get("readOnly") else "")]
        return binds

    def start(self):
        self.cgroup = MEMCG_ROOT / f"governord-chart-{os.getpid()}"
        self.cgroup.mkdir()
        (self.cgroup / "memory.limit_in_bytes").write_text(str(self.limit))
        binds = self.volumes()
        # the image's binary at the command's path
        binds += ["--bind", f"{governord()}:{self.c['command'][0]}:ro"]
        # the Service's name resolves to this pod (for the helm test pod)
        svc = one(self.docs, "Service")
        hosts = self.tmp / "hosts"
        hosts.write_text(Path("/etc/hosts").read_text() + f"{POD_IP} {svc['metadata']['name']}\n")
        binds += ["--bind", f"{hosts}:/etc/hosts:ro"]
        work = self.tmp / "sandbox"
        work.mkdir()
        self.log = open(self.tmp / "governord.log", "w+")
        # runAsUser/runAsGroup, capabilities drop ALL, allowPrivilegeEscalation
        # false; then exactly the container's environment and command line
        user = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", *self.groups(),
                "--bounding-set=-all", "--no-new-privs", "--"]
        env = ["env", "-i", *(f"{k}={v}" for k, v in self.env.items())]
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--net", "--",
             str(SANDBOX), str(work), str(self.cgroup), POD_IP, *binds, "--",
             *user, *env, *self.argv],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, cwd="/", stdout=self.log,
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"governord exited: {self.logtext()}"
            if '"event":"start"' in self.logtext():
                return
            time.sleep(0.05)
        raise AssertionError(f"no start line: {self.logtext()}")

    def logtext(self):
        self.log.seek(0)
        return self.log.read()

    def nsenter(self, *cmd, mount=False, **kw):
        return subprocess.run(["nsenter", "--target", str(self.proc.pid), "--net",
                               *(["--mount"] if mount else []), "--", *cmd],
                              capture_output=True, text=True, timeout=60, **kw)

    def get(self, path, port=None):
        """GET http://POD_IP:port/path from inside the pod's network."""
        r = self.nsenter("curl", "-sS", "-m", "30", "-o", "-", "-w", "\n%{http_code}",
                         f"http://{POD_IP}:{port or self.port}{path}")
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), body

    def governor(self):
        code, body = self.get("/governor")
        assert code == 200, body
        return json.loads(body)

    def wait_for(self, what, pred, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            g = self.governor()
            if pred(g):
                return g
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s: {json.dumps(g['policy'])}")
            time.sleep(0.1)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.cgroup and self.cgroup.exists():
            for _ in range(50):
                try:
                    self.cgroup.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
        if getattr(self, "log", None):
            self.log.close()


@pytest.fixture(scope="module")
def pod():
    need(os.geteuid() == 0, "the chart-in-the-loop test needs root (namespaces, a memory cgroup)")
    need(os.access(MEMCG_ROOT / "memory.limit_in_bytes", os.R_OK),
         f"no cgroup v1 memory controller at {MEMCG_ROOT}")
    missing = [t for t in TOOLS if not shutil.which(t)]
    need(not missing, f"missing tools: {' '.join(missing)} (scripts/deps.sh test installs them)")
    docs = documents(Renderer().render())
    tmp = Path(tempfile.mkdtemp(prefix=f"governord-chart-{os.getpid()}-"))
    os.chmod(tmp, 0o755)
    p = Pod(docs, tmp)
    try:
        p.start()
        yield p
    finally:
        p.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_exact_command_line_environment_and_user(pod):
    pid = pod.proc.pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    assert [a.decode() for a in cmdline] == pod.argv
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")[:-1]
    assert dict(e.decode().split("=", 1) for e in environ) == pod.env
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert status["Uid"].split()[0] == str(pod.uid) and status["Gid"].split()[0] == str(pod.gid)
    assert status["NoNewPrivs"].strip() == "1"
    assert int(status["CapBnd"], 16) == 0 and int(status["CapEff"], 16) == 0
    assert f":memory:/{pod.cgroup.name}\n" in Path(f"/proc/{pid}/cgroup").read_text()


def test_probes_answer_on_the_declared_port(pod):
    c = pod.c
    for probe in ("readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        port = port_number(c, get["port"])
        deadline = time.monotonic() + 30
        while True:
            code, body = pod.get(get["path"], port)
            if code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print(f"{probe} GET {POD_IP}:{port}{get['path']} -> {code} {body.strip()}")
        assert code == 200, body


def test_governor_sees_the_pod_policy_and_limit(pod):
    g = pod.governor()
    args = pod.c["args"]
    assert g["pod"] == pod.meta
    assert g["policy"]["source"] == args[args.index("--policy") + 1]
    assert g["policy"]["generation"] == 1 and g["policy"]["last_error"] is None
    assert g["memory"]["limit_bytes"] == pod.limit and g["memory"]["limit_source"] == "cgroup"
    assert g["cgroup"]["version"] == "v1"
    # what the Prometheus annotations point at
    ann = one(pod.docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    code, body = pod.get(ann["prometheus.io/path"], int(ann["prometheus.io/port"]))
    assert code == 200 and "# TYPE" in body
    code, body = pod.get("/counter")
    assert code == 200 and body.startswith("Counter value: ")


def test_helm_test_pod_script_passes(pod):
    test_pod = one(pod.docs, "Pod")
    (tc,) = test_pod["spec"]["containers"]
    # the test image is busybox: its applets on PATH
    bindir = pod.tmp / "busybox-bin"
    bindir.mkdir()
    subprocess.run(["busybox", "--install", "-s", str(bindir)], check=True)
    sc = test_pod["spec"]["securityContext"]
    r = pod.nsenter("setpriv", f"--reuid={sc['runAsUser']}", f"--regid={sc['runAsGroup']}",
                    "--clear-groups", "--bounding-set=-all", "--no-new-privs", "--",
                    "env", "-i", f"PATH={bindir}", *tc["command"], mount=True)
    print(r.stdout + r.stderr)
    assert r.returncode == 0 and "PASS:" in r.stdout, r.stdout + r.stderr


def effective_policy(path):
    """governord --check-policy's effective policy, as {section: {key: value}}."""
    r = subprocess.run([governord(), "--check-policy", str(path)], capture_output=True,
                       text=True, check=True)
    cp = configparser.ConfigParser(comment_prefixes=(";",))
    cp.read_string(r.stdout)
    return {s: dict(cp[s]) for s in cp.sections()}


def test_configmap_update_is_live(pod):
    """An edited policy (here the conservative preset) reaches the daemon."""
    before = pod.governor()
    new = POLICIES / "conservative.ini"
    docs = documents(Renderer().render("--set-file", f"policy={new}"))
    (vol,) = pod.configmaps.values()
    vol.update(one(docs, "ConfigMap")["data"])
    g = pod.wait_for("policy generation 2", lambda g: g["policy"]["generation"] == 2)
    assert g["policy"]["last_error"] is None
    assert g["policy"]["values"] == effective_policy(new)
    assert g["policy"]["values"] != before["policy"]["values"]
    assert pod.proc.poll() is None


def test_invalid_update_is_refused_and_pod_stays_ready(pod):
    (vol,) = pod.configmaps.values()
    vol.update({"policy.ini": "[thresholds]\nsoft = 0.9\nhigh = 0.85\n"})
    g = pod.wait_for("policy.last_error", lambda g: g["policy"]["last_error"])
    print("last_error:", g["policy"]["last_error"])
    assert g["policy"]["generation"] == 2
    assert "soft" in g["policy"]["last_error"]
    assert pod.get("/readyz")[0] == 200 and pod.get("/healthz")[0] == 200


def test_sigterm_fails_readyz_then_ends_within_the_grace_period(pod):
    """The chart's --shutdown-delay: /readyz fails at once, /counter is still
    served, and governord exits 0 after the delay, within the grace period."""
    delay = shutdown_delay_seconds(pod.c)
    budget = pod.spec["terminationGracePeriodSeconds"]
    assert delay > 0 and budget > delay
    t0 = time.monotonic()
    pod.proc.send_signal(signal.SIGTERM)
    while pod.get("/readyz")[0] != 503:
        assert time.monotonic() - t0 < delay, "/readyz did not fail during the delay"
        time.sleep(0.05)
    code, body = pod.get("/counter")
    assert code == 200 and body.startswith("Counter value: "), (code, body)
    rc = pod.proc.wait(timeout=budget)
    took = time.monotonic() - t0
    print(f"SIGTERM -> exit {rc} in {took:.2f} s (a {delay} s shutdown delay, "
          f"grace period {budget} s)")
    assert rc == 0
    assert took >= delay
    assert '"event":"exit"' in pod.logtext()
