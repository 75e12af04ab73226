"""The chart in the loop with the persistent counter stores: the rendered
command and environment reach the configured store.

test_chart_in_the_loop.py runs the rendered Deployment with the default
values (the memory store).  Here the chart is rendered with
`counter.store=file` and with `counter.store=redis` (its url at a
redis-server this test starts; without a password, and with the password
from `existingSecret`, whose file the test provides), and the
same sandbox runs the rendered command line and environment with the
rendered volumes laid out the way the kubelet lays them out:

  - emptyDir: an empty directory with mode 0777;
  - secret: the ConfigMap layout (..data symlink) with the volume's
    defaultMode, files owned by root and, when the pod has an fsGroup, by
    that group (which the container then has among its groups).

Redis runs as a sidecar would, in the pod's network namespace on
127.0.0.1 (the sandbox's network has no way out); it is started after
governord, so governord first finds it down and then connects through its
reconnect loop, as in a pod whose Redis comes up late.  For each store:
/governor's counter.store and counter.target show the configured store,
and two GET /counter give consecutive values that land in the store -- in
the Redis key at once, in the file when SIGTERM makes governord write the
last value served.  Every wait polls with a deadline scaled by
GOVERNORD_TIMEOUT_SCALE.
"""
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from chartlib import Renderer, documents, need, one
from daemon import scaled, wait_until
from kubelet import ConfigMapDir
from redisproc import RedisServer, free_port
from test_chart_in_the_loop import MEMCG_ROOT, TOOLS, Pod

SECRET = "counter-redis"
PASSWORD = "chart loop p@ss:word"


class StorePod(Pod):
    """Pod, with emptyDir and secret volumes besides ConfigMaps."""

    def __init__(self, docs, tmp, secrets=None):
        super().__init__(docs, tmp)
        self.secrets = secrets or {}   # secret name -> {key: text}
        self.dirs = {}                 # volume name -> host directory

    def volumes(self):
        binds = []
        vols = {v["name"]: v for v in self.spec["volumes"]}
        fs_group = self.spec["securityContext"].get("fsGroup")
        for m in self.c["volumeMounts"]:
            v = vols[m["name"]]
            path = self.tmp / "volumes" / v["name"]
            if "configMap" in v:
                cm = [d for d in self.docs if d["kind"] == "ConfigMap"
                      and d["metadata"]["name"] == v["configMap"]["name"]][0]
                vol = ConfigMapDir(path, cm["data"], v["configMap"].get("defaultMode", 0o644))
                self.configmaps[v["name"]] = vol
            elif "emptyDir" in v:
                path.mkdir(parents=True)
                os.chmod(path, 0o777)
            elif "secret" in v:
                data = self.secrets[v["secret"]["secretName"]]
                items = v["secret"].get("items") or [{"key": k, "path": k} for k in data]
                vol = ConfigMapDir(path, {i["path"]: data[i["key"]] for i in items},
                                   v["secret"].get("defaultMode", 0o644))
                if fs_group is not None:
                    for root, _, files in os.walk(path):
                        for f in files:
                            os.chown(os.path.join(root, f), 0, fs_group)
            else:
                raise AssertionError(f"volume {v['name']}: teach this test its type")
            self.dirs[v["name"]] = path
            binds += ["--bind", f"{path}:{m['mountPath']}" + (":ro" if m.get("readOnly") else "")]
        return binds

    def counter(self):
        code, body = self.get("/counter")
        assert code == 200, body
        m = re.fullmatch(r"Counter value: (\d+)\n?", body)
        assert m, body
        return int(m.group(1))

    def counter_status(self):
        return self.governor()["counter"]


@pytest.fixture
def tmp():
    need(os.geteuid() == 0, "the chart-in-the-loop test needs root (namespaces, a memory cgroup)")
    need(os.access(MEMCG_ROOT / "memory.limit_in_bytes", os.R_OK),
         f"no cgroup v1 memory controller at {MEMCG_ROOT}")
    missing = [t for t in TOOLS + ("redis-server", "redis-cli") if not shutil.which(t)]
    need(not missing, f"missing tools: {' '.join(missing)} (scripts/deps.sh test installs them)")
    d = Path(tempfile.mkdtemp(prefix=f"governord-chart-store-{os.getpid()}-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def arg_after(argv, flag):
    return argv[argv.index(flag) + 1]


def stop_with_sigterm(pod):
    pod.proc.send_signal(signal.SIGTERM)
    assert pod.proc.wait(timeout=scaled(30)) == 0, pod.logtext()
    assert '"event":"exit"' in pod.logtext()


def test_file_store_reaches_the_file(tmp):
    docs = documents(Renderer().render("--set", "counter.store=file"))
    pod = StorePod(docs, tmp)
    path = "/var/lib/governord/counter"   # the chart's default counter.file.path
    assert arg_after(pod.argv, "--counter") == f"file:{path}"
    try:
        pod.start()
        cs = wait_until(lambda: (lambda s: s if s["up"] else None)(pod.counter_status()),
                        timeout=30, what="the file store up")
        assert cs["store"] == "file" and cs["target"] == path, cs
        assert cs["lease"]["size"] == int(arg_after(pod.argv, "--counter-lease")), cs
        a, b = pod.counter(), pod.counter()
        assert b == a + 1, (a, b)
        # on the emptyDir at the mounted directory: the lease's mark, ahead
        host_file = pod.dirs["counter"] / os.path.basename(path)
        mark = int(host_file.read_text().split()[2])
        assert mark == pod.counter_status()["lease"]["high_water_mark"] >= b
        # a clean stop writes the last value served
        stop_with_sigterm(pod)
        assert host_file.read_text().split()[:3] == ["governord-counter", "1", str(b)], \
            host_file.read_text()
    finally:
        pod.stop()


# The password Secret is mounted 0440: uid 65532 reads it through the pod's
# fsGroup (65532), which the "secret" case proves.
@pytest.mark.parametrize("with_secret", [pytest.param(False, id="no-password"),
                                         pytest.param(True, id="secret")])
def test_redis_store_reaches_the_key(tmp, with_secret):
    port, db, key = free_port(), 3, "chart-loop"
    url = f"redis://127.0.0.1:{port}/{db}?key={key}"
    sets = ["--set", "counter.store=redis", "--set", f"counter.redis.url={url}"]
    if with_secret:
        sets += ["--set", f"counter.redis.existingSecret={SECRET}"]
    docs = documents(Renderer().render(*sets))
    secrets = {}
    if with_secret:
        vols = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
        secret_key = [v for v in vols if "secret" in v][0]["secret"]["items"][0]["key"]
        secrets = {SECRET: {secret_key: PASSWORD + "\n"}}
    pod = StorePod(docs, tmp, secrets=secrets)
    assert arg_after(pod.argv, "--counter") == url
    assert ("GOVERNOR_COUNTER_PASSWORD_FILE" in pod.env) == with_secret
    redis = None
    try:
        pod.start()
        # the sidecar: in the pod's network namespace, after governord
        redis = RedisServer(tmp / "redis", password=PASSWORD if with_secret else None,
                            prefix=["nsenter", "--target", str(pod.proc.pid), "--net", "--"])
        redis.start(port)
        cs = wait_until(lambda: (lambda s: s if s["up"] else None)(pod.counter_status()),
                        timeout=30, what="the redis store up (after its reconnect loop)")
        assert cs["store"] == "redis" and cs["target"] == f"127.0.0.1:{port}/{db} key={key}", cs
        a, b = pod.counter(), pod.counter()
        assert b == a + 1, (a, b)
        assert redis.cli("-n", db, "GET", key).strip() == str(b)
        assert pod.proc.poll() is None
        stop_with_sigterm(pod)
    finally:
        pod.stop()
        if redis:
            redis.stop()
