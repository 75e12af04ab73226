"""The chart's alerts and dashboard, held to promtool and to governord.

- The PrometheusRule the chart renders (prometheusRule.enabled=true) passes
  `promtool check rules`, and `promtool test rules` with alerts_test.yaml
  (series in, alerts out; every alert has a case where it fires and one
  where it does not).
- Every PromQL expression of the rules and of the Grafana dashboard
  (grafanaDashboard.enabled=true) parses (promtool check rules, the
  dashboard's variables replaced by values), and every metric it names is
  one that governord exports: the names are taken from a real scrape of the
  built binary (plus `up`, which Prometheus itself writes).

promtool comes from Debian's `prometheus` package (scripts/deps.sh test).
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "chart"))
sys.path.insert(0, str(HERE.parent / "pylib"))

from chartlib import Renderer, documents, governord, need, one, validate  # noqa: E402
from cgroupfs import CgroupDir  # noqa: E402
from daemon import Daemon  # noqa: E402

# what Prometheus adds or writes itself, not governord
PROMETHEUS_NAMES = {"up"}
# PromQL words that look like metric names
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset", "inf", "nan"}


def promtool():
    path = shutil.which("promtool")
    need(path is not None, "promtool not found (apt-get install prometheus; scripts/deps.sh test)")
    return path


@pytest.fixture(scope="module")
def renderer():
    return Renderer()


@pytest.fixture(scope="module")
def rules(renderer):
    docs = documents(renderer.render("--set", "prometheusRule.enabled=true"))
    return one(docs, "PrometheusRule")


@pytest.fixture(scope="module")
def dashboard(renderer):
    docs = documents(renderer.render("--set", "grafanaDashboard.enabled=true"))
    cms = [d for d in docs if d["kind"] == "ConfigMap"
           and d["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(cms) == 1, "one ConfigMap with the grafana_dashboard label"
    (name,) = cms[0]["data"]
    assert name.endswith(".json")
    return json.loads(cms[0]["data"][name])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The metric family names of a real scrape of the built governord."""
    tmp = tmp_path_factory.mktemp("scrape")
    cg = CgroupDir(tmp / "cgroup")
    (tmp / "policy.ini").write_text("[governor]\ninterval_ms = 50\n")
    governord()  # skips (fails in CI) when the binary is not built
    d = Daemon(["--cgroup", cg.path, "--policy", str(tmp / "policy.ini")],
               log_path=tmp / "governord.log")
    try:
        status, text = d.get("/metrics")
        assert status == 200
    finally:
        assert d.stop() == 0
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
    assert "governor_build_info" in names and "process_cpu_seconds_total" in names
    return names


def rule_exprs(rules):
    return [(r.get("alert") or r.get("record"), r["expr"])
            for g in rules["spec"]["groups"] for r in g["rules"]]


def dashboard_exprs(dash):
    """Every PromQL expression of the dashboard: targets, annotations and the
    selectors inside the variables' label_values()."""
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((f"panel {p['title']!r} {t['refId']}", t["expr"]))
    for a in dash["annotations"]["list"]:
        if "expr" in a:
            out.append((f"annotation {a['name']!r}", a["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            m = re.fullmatch(r"label_values\((.*),\s*([a-zA-Z_]\w*)\)", q)
            assert m, f"variable {v['name']}: teach this test the query {q!r}"
            out.append((f"variable {v['name']!r}", m.group(1)))
    return out


def substitute(expr):
    """The dashboard's variables replaced by what Grafana would put there."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
    return re.sub(r"\$\{?(\w+)\}?", "x", expr)


def metric_names(expr):
    """The metric names a PromQL expression selects: identifiers that are not
    functions, keywords, label names (inside {} or the lists of by/on/...),
    durations or strings."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)            # strings
    e = re.sub(r"\{[^}]*\}", "{}", e)                          # matchers
    e = re.sub(r"\[[^\]]*\]", "[]", e)                         # ranges
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", e)              # offset 5m
    names = set()
    for m in re.finditer(r"(?<![0-9.a-zA-Z_:])[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or aggregation
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def check_parses(exprs, tmp_path):
    """promtool check rules on a file of recording rules, one per expression."""
    rules = {"groups": [{"name": "parse", "rules": [
        {"record": f"check:expr_{i}", "expr": substitute(e)} for i, (_, e) in enumerate(exprs)]}]}
    path = tmp_path / "parse.yaml"
    path.write_text(yaml.safe_dump(rules))
    r = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    where = "\n".join(f"expr_{i}: {w}" for i, (w, _) in enumerate(exprs))
    assert r.returncode == 0, f"{r.stdout}{r.stderr}\n{where}"
    assert f"SUCCESS: {len(exprs)} rules found" in r.stdout, r.stdout


def test_metric_names_reads_promql():
    """The name extraction the two checks below rely on."""
    assert metric_names('increase(a_total{x="b",y=~"c"}[5m]) > 0') == {"a_total"}
    assert metric_names('count by (ns) (count by (ns, sha) (info{a="b"})) > 1') == {"info"}
    assert metric_names('max by (pod, t) (r{}) * on (pod) group_left max by (pod) (l{})') == \
        {"r", "l"}
    assert metric_names('(lvl{l="x"} == 1) * 1 or up == bool 0') == {"lvl", "up"}
    assert metric_names('foo offset 5m unless on (a) bar') == {"foo", "bar"}


def test_rules_render_validate_and_check(rules, tmp_path):
    text = yaml.safe_dump(rules)
    r = validate(text)
    assert r.returncode == 0 and "Invalid: 0" in r.stdout, r.stdout
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules["spec"]))
    r = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    alerts = [a for a, _ in rule_exprs(rules)]
    assert sorted(alerts) == sorted([
        "GovernorPolicyReloadRejected", "GovernorOOMKill", "GovernorAllocationsRefused",
        "GovernorCriticalRelease", "GovernorMemorySourceUnreadable", "GovernorTargetDown",
        "GovernorPolicyHashDisagreement"])


def test_promtool_unit_tests(rules, tmp_path):
    """promtool test rules: series in, alerts out."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules["spec"]))
    shutil.copy(HERE / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    r = subprocess.run([promtool(), "test", "rules", "alerts_test.yaml"], cwd=tmp_path,
                       capture_output=True, text=True)
    print(r.stdout.strip())
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_every_alert_has_a_firing_and_a_quiet_case(rules):
    tests = yaml.safe_load((HERE / "alerts_test.yaml").read_text())["tests"]
    cases = [c for t in tests for c in t.get("alert_rule_test", [])]
    for alert, _ in rule_exprs(rules):
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in mine), f"{alert}: no test where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{alert}: no test where it stays quiet"


def test_rules_parse_and_name_only_exported_metrics(rules, exported, tmp_path):
    exprs = rule_exprs(rules)
    check_parses(exprs, tmp_path)
    for where, e in exprs:
        unknown = metric_names(e) - exported - PROMETHEUS_NAMES
        assert not unknown, f"{where}: {sorted(unknown)} not exported by governord"


def test_dashboard_parses_and_names_only_exported_metrics(dashboard, exported, tmp_path):
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) >= 10
    check_parses(exprs, tmp_path)
    for where, e in exprs:
        names = metric_names(substitute(e))
        assert names, f"{where}: selects no metric"
        unknown = names - exported - PROMETHEUS_NAMES
        assert not unknown, f"{where}: {sorted(unknown)} not exported by governord"


def test_dashboard_draws_what_the_live_page_draws(dashboard):
    text = json.dumps(dashboard)
    for name in ("governor_memory_working_set_bytes", "governor_memory_limit_bytes",
                 "governor_threshold_ratio", "governor_buffer_bytes", "governor_level",
                 "governor_shrinks_total", "governor_policy_reloads_total",
                 "governor_refused_allocations_total"):
        assert name in text, f"the dashboard does not draw {name}"
    decisions = [a for a in dashboard["annotations"]["list"] if "governor_shrinks_total" in
                 a.get("expr", "")]
    assert decisions, "decisions are drawn as annotations"
    # every panel and annotation queries the data source variable
    for p in dashboard["panels"]:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]


def test_dashboard_configmap_validates(renderer):
    text = renderer.render("--set", "grafanaDashboard.enabled=true",
                           "--set", "grafanaDashboard.namespace=monitoring")
    r = validate(text)
    assert r.returncode == 0 and "Invalid: 0" in r.stdout, r.stdout
    cm = [d for d in documents(text) if d["kind"] == "ConfigMap"
          and "grafana_dashboard" in d["metadata"]["labels"]][0]
    assert cm["metadata"]["namespace"] == "monitoring"
