"""The chart's supervisor mode: `supervisor.command` runs an app as
governord's child (governord [OPTIONS] -- CMD...).

Rendered with and without it, validated strictly, and the rendered command
line run for real: the built governord, with the rendered arguments (only
the listen address and the policy path pointed at this machine), must start
the command as its child and exit with the child's status.
"""
import json
import subprocess

from chartlib import container, documents, governord, one, validate

SUPERVISED = ["--set-json", 'supervisor.command=["sh","-c","exit 7"]',
              "--set", "supervisor.stopTimeout=8s"]


def test_default_runs_governord_alone(default_docs):
    args = container(one(default_docs, "Deployment"))["args"]
    assert "--" not in args and "--stop-timeout" not in args


def test_supervisor_command_renders_last_after_the_separator(renderer):
    text = renderer.render(*SUPERVISED)
    r = validate(text)
    assert r.returncode == 0, r.stdout + r.stderr
    c = container(one(documents(text), "Deployment"))
    args = c["args"]
    assert c["command"] == ["/usr/local/bin/governord"]
    assert args[args.index("--") + 1:] == ["sh", "-c", "exit 7"]
    assert args[args.index("--stop-timeout") + 1] == "8s"
    assert args.index("--stop-timeout") < args.index("--")


def test_schema_checks_the_supervisor_values(renderer):
    for bad in (["--set", "supervisor.stopTimeout=10m"],
                ["--set", "supervisor.command=python3"],
                ["--set-json", 'supervisor.command=[""]'],
                ["--set", "supervisor.unknown=1"]):
        r = renderer.run(*bad)
        assert r.returncode != 0 and "supervisor" in r.stderr, (bad, r.stderr)


def test_the_rendered_command_line_supervises_for_real(renderer, tmp_path):
    docs = documents(renderer.render(*SUPERVISED))
    args = list(container(one(docs, "Deployment"))["args"])
    policy = tmp_path / "policy.ini"
    policy.write_text(one(docs, "ConfigMap")["data"]["policy.ini"])
    args[args.index("--listen") + 1] = "127.0.0.1:0"
    args[args.index("--policy") + 1] = str(policy)
    r = subprocess.run([governord(), *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 7, r.stderr
    ended = [rec for rec in map(json.loads, r.stderr.splitlines())
             if rec.get("event") == "child_exit"]
    assert len(ended) == 1 and ended[0]["how"] == "exited with status 7", r.stderr
