"""chartlib -- what the chart tests share: the chart renderer and validator,
rendering with value sets, and small readers for the rendered documents.

The chart is rendered with `helm template` when helm is on PATH, else with
shared/tools/chart-render (the same output as helm 3.16), and validated with
shared/tools/k8s-validate (strict, Kubernetes 1.31 schemas).  A test that
needs a missing tool is skipped with the reason, except in CI (CI=true),
where a missing tool fails the test: CI never skips these tests.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "metrics-app"
POLICIES = REPO / "policies"

RELEASE = "rel"
NAMESPACE = "chart-test"


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(ok, what):
    """Skip (or, in CI, fail) the calling test unless ok."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"{what} (CI=true: this test must not be skipped)")
    pytest.skip(f"SKIPPED: {what}")


def shared_dir():
    """shared/ beside the project checkout ($SHARED_DIR, else ../shared)."""
    for d in (os.environ.get("SHARED_DIR"), REPO.parent / "shared"):
        if d and (Path(d) / "tools").is_dir():
            return Path(d)
    return None


def shared_tool(name):
    d = shared_dir()
    tool = d / "tools" / name if d else None
    need(tool is not None and os.access(tool, os.X_OK),
         f"{name} not found (looked in $SHARED_DIR and {REPO.parent / 'shared'})")
    return str(tool)


def governord():
    """The governord binary `make` built (the Makefile passes $GOVERNORD)."""
    path = os.environ.get("GOVERNORD") or str(REPO / "build" / "governord")
    need(os.access(path, os.X_OK), f"governord binary {path} not built (run make)")
    return path


class Renderer:
    """helm template, or chart-render where helm cannot be installed."""

    def __init__(self):
        helm = shutil.which("helm")
        if helm:
            self.name, self.cmd = "helm", [helm, "template"]
        else:
            self.name, self.cmd = "chart-render", [shared_tool("chart-render")]

    def run(self, *args, release=RELEASE, namespace=NAMESPACE):
        return subprocess.run(self.cmd + [release, str(CHART), "-n", namespace, *args],
                              capture_output=True, text=True, timeout=300)

    def render(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"{self.name} failed: {r.stderr}"
        return r.stdout


def validate(text):
    """Runs k8s-validate on text; returns the completed process."""
    return subprocess.run([shared_tool("k8s-validate"), "--reject-missing-schemas", "-"],
                          input=text, capture_output=True, text=True, timeout=300)


def documents(text):
    return [d for d in yaml.safe_load_all(text) if d is not None]


def one(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def kinds(docs):
    return sorted(d["kind"] for d in docs)


def container(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "the chart runs one container per pod"
    return containers[0]


def shutdown_delay_seconds(c):
    """governord's --shutdown-delay in the container's arguments ("3s"), in
    seconds (0 without one).  The chart has no preStop hook: the image has no
    shell, and the delay is governord's own."""
    assert "lifecycle" not in c, f"unexpected lifecycle hooks: {c['lifecycle']}"
    args = c.get("args", [])
    if "--shutdown-delay" not in args:
        return 0
    value = args[args.index("--shutdown-delay") + 1]
    assert value.endswith("s") and value[:-1].isdigit(), value
    return int(value[:-1])


def port_number(c, port):
    """A probe's or service's port (number or container port name) as a number."""
    if isinstance(port, int):
        return port
    for p in c.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError(f"container {c['name']} has no port named {port!r}")


_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity_bytes(q):
    """A Kubernetes memory quantity (256Mi, 1G, 268435456) in bytes."""
    m = re.fullmatch(r"([0-9]+)(|k|M|G|T|Ki|Mi|Gi|Ti)", str(q))
    assert m, f"unsupported memory quantity {q!r}"
    return int(m.group(1)) * _UNITS[m.group(2)]


def dockerfile_final_stage():
    """The instructions of the Dockerfile's last stage, as (KEYWORD, rest) pairs."""
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    stage = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stage = []
        stage.append((word.upper(), rest.strip()))
    return stage
