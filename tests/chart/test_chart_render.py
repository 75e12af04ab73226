"""The Helm chart charts/metrics-app, rendered and validated.

Every value set below is rendered (helm template, else chart-render) and
every document validated strictly against the Kubernetes 1.31 schemas
(k8s-validate; ServiceMonitor and Argo CD Application against their CRD
schemas).  Then the rendered objects are held to what governord needs: the
policy ConfigMap as a whole-directory volume at the path the daemon reads,
the probes on the daemon's paths and port, a grace period that covers its
shutdown, the downward API, the restricted Pod Security Standard, and the
Dockerfile's image agreeing with the Deployment.  Running the rendered
container for real is test_chart_in_the_loop.py.
"""
import json
import subprocess

import pytest
import yaml

from chartlib import (CHART, NAMESPACE, POLICIES, REPO, container, documents, dockerfile_final_stage,
                      governord, kinds, one, port_number, shutdown_delay_seconds, validate)

DEFAULT_POLICY = (POLICIES / "default.ini").read_text()

BASE_KINDS = ["ConfigMap", "Deployment", "Ingress", "Pod", "Service", "ServiceAccount"]

# name -> (extra arguments, the kinds expected in the output)
VALUE_SETS = {
    "default": ([], BASE_KINDS),
    "hpa-on": (["--set", "autoscaling.enabled=true"], BASE_KINDS + ["HorizontalPodAutoscaler"]),
    "ingress-off": (["--set", "ingress.enabled=false"],
                    [k for k in BASE_KINDS if k != "Ingress"]),
    "custom-policy": (["--set-file", f"policy={POLICIES / 'conservative.ini'}"], BASE_KINDS),
    "everything-on": (["--set", "autoscaling.enabled=true",
                       "--set", "autoscaling.targetMemoryUtilizationPercentage=90",
                       "--set", "podDisruptionBudget.enabled=true",
                       "--set", "serviceMonitor.enabled=true",
                       "--set", "serviceMonitor.labels.release=prometheus",
                       "--set", "ingress.tls[0].hosts[0]=metrics-app.local",
                       "--set", "ingress.tls[0].secretName=metrics-app-tls",
                       "--set", "replicaCount=2",
                       "--set-json", 'env=[{"name":"GOVERNOR_THREADS","value":"2"}]'],
                      BASE_KINDS + ["HorizontalPodAutoscaler", "PodDisruptionBudget",
                                    "ServiceMonitor"]),
}


@pytest.mark.parametrize("name", VALUE_SETS)
def test_renders_and_validates_strictly(renderer, name):
    args, expected = VALUE_SETS[name]
    text = renderer.render(*args)
    docs = documents(text)
    assert kinds(docs) == sorted(expected)
    r = validate(text)
    print(f"[{name}] {renderer.name} + k8s-validate: {r.stdout.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(docs)} resources found" in r.stdout and "Invalid: 0" in r.stdout, r.stdout
    for d in docs:
        print(f"  {d['kind']}/{d['metadata']['name']}")


def test_validator_rejects_a_typo(renderer):
    """k8s-validate really is strict: an unknown probe field fails."""
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSecond": 10}
    text = renderer.render("--set-json", "livenessProbe=" + json.dumps(probe))
    r = validate(text)
    assert r.returncode == 1 and "periodSecond" in r.stdout, r.stdout


def test_values_policy_equals_default_ini():
    """values.yaml's policy is policies/default.ini, byte for byte."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["policy"] == DEFAULT_POLICY, (
        "charts/metrics-app/values.yaml `policy` differs from policies/default.ini: "
        "copy the file into the block, indented by two spaces")


@pytest.mark.parametrize("name,policy_file", [("default", "default.ini"),
                                              ("custom-policy", "conservative.ini")])
def test_configmap_carries_the_policy_exactly(renderer, tmp_path, name, policy_file):
    docs = documents(renderer.render(*VALUE_SETS[name][0]))
    data = one(docs, "ConfigMap")["data"]
    assert list(data) == ["policy.ini"]
    assert data["policy.ini"] == (POLICIES / policy_file).read_text()
    # and governord accepts what the pod will read
    f = tmp_path / "policy.ini"
    f.write_text(data["policy.ini"])
    r = subprocess.run([governord(), "--check-policy", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_schema_requires_a_memory_limit(renderer):
    r = renderer.run("--set", "resources.limits.memory=null")
    assert r.returncode != 0
    assert "memory is required" in r.stderr, r.stderr
    r = renderer.run("--set", "resources=null")
    assert r.returncode != 0 and "resources" in r.stderr, r.stderr
    r = renderer.run("--set", "resources.limits.memory=256MB")
    assert r.returncode != 0 and "resources.limits.memory" in r.stderr, r.stderr


def test_no_memory_limit_only_when_allowed(renderer):
    text = renderer.render("--set", "resources.limits.memory=null",
                           "--set", "allowNoMemoryLimit=true")
    assert validate(text).returncode == 0
    docs = documents(text)
    assert "memory" not in (container(one(docs, "Deployment"))["resources"].get("limits") or {})
    # the helm test no longer expects the cgroup limit
    assert "limit_source" not in one(docs, "Pod")["spec"]["containers"][0]["command"][2]


def test_schema_refuses_unknown_values(renderer):
    r = renderer.run("--set", "replicas=2")
    assert r.returncode != 0 and "replicas" in r.stderr, r.stderr


def test_policy_volume_reaches_the_daemon(default_docs):
    """The ConfigMap is a whole-directory volume at the directory of --policy."""
    dep = one(default_docs, "Deployment")
    cm = one(default_docs, "ConfigMap")
    c = container(dep)
    args = c["args"]
    policy = args[args.index("--policy") + 1]
    mounts = c["volumeMounts"]
    assert all("subPath" not in m and "subPathExpr" not in m for m in mounts), \
        "a subPath mount never sees the kubelet's ConfigMap updates"
    (mount,) = [m for m in mounts if policy.startswith(m["mountPath"].rstrip("/") + "/")]
    assert mount["mountPath"] == "/etc/governor" and mount["readOnly"] is True
    (vol,) = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert vol["configMap"]["name"] == cm["metadata"]["name"]
    assert "items" not in vol["configMap"]
    key = policy[len(mount["mountPath"].rstrip("/")) + 1:]
    assert key in cm["data"]
    # no checksum annotation: a policy change must not restart the pods
    annotations = dep["spec"]["template"]["metadata"].get("annotations", {})
    assert not any(a.startswith("checksum/") for a in annotations)


def test_probes_env_and_shutdown(default_docs, renderer):
    dep = one(default_docs, "Deployment")
    c = container(dep)
    spec = dep["spec"]["template"]["spec"]
    listen = c["args"][c["args"].index("--listen") + 1]
    (port,) = c["ports"]
    assert listen == f"0.0.0.0:{port['containerPort']}"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe"):
        assert port_number(c, c[probe]["httpGet"]["port"]) == port["containerPort"]
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    # governord exits within 5 s of SIGTERM after its shutdown delay
    assert shutdown_delay_seconds(c) == 3
    assert spec["terminationGracePeriodSeconds"] >= shutdown_delay_seconds(c) + 5
    assert c["resources"]["limits"]["memory"] == "256Mi"
    # HPA on: the Deployment leaves replicas to the autoscaler
    hpa_docs = documents(renderer.render(*VALUE_SETS["hpa-on"][0]))
    assert "replicas" not in one(hpa_docs, "Deployment")["spec"]
    hpa = one(hpa_docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]


def test_shutdown_delay_instead_of_a_pre_stop_hook(renderer):
    """The image has no shell: no preStop command on any Kubernetes version;
    governord's --shutdown-delay does the waiting, and a grace period not
    longer than the delay is refused."""
    for version in ("1.31.0", "1.29.0", "1.25.0"):
        c = container(one(documents(renderer.render("--kube-version", version)), "Deployment"))
        assert "lifecycle" not in c
        args = c["args"]
        assert args[args.index("--shutdown-delay") + 1] == "3s"
    c = container(one(documents(renderer.render("--set", "shutdownDelaySeconds=0")),
                      "Deployment"))
    assert shutdown_delay_seconds(c) == 0
    r = renderer.run("--set", "shutdownDelaySeconds=20")
    assert r.returncode != 0 and "terminationGracePeriodSeconds must be longer" in r.stderr


def restricted_violations(spec):
    """What in a pod spec breaks the restricted Pod Security Standard."""
    bad = []
    psc = spec.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            bad.append(key)
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                       "persistentVolumeClaim", "projected", "secret"}
    for v in spec.get("volumes", []):
        types = set(v) - {"name"}
        if not types <= allowed_volumes:
            bad.append(f"volume {v['name']}: {types - allowed_volumes}")
    for c in spec.get("initContainers", []) + spec["containers"]:
        sc = c.get("securityContext", {})
        name = c["name"]
        if sc.get("privileged"):
            bad.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
            bad.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            bad.append(f"{name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{name}: seccompProfile {seccomp}")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            bad.append(f"{name}: capabilities do not drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            bad.append(f"{name}: adds capabilities {caps['add']}")
        if c.get("ports") and any(p.get("hostPort") for p in c["ports"]):
            bad.append(f"{name}: hostPort")
    return bad


def test_restricted_pod_security(renderer):
    docs = documents(renderer.render(*VALUE_SETS["everything-on"][0]))
    dep = one(docs, "Deployment")
    test_pod = one(docs, "Pod")
    assert restricted_violations(dep["spec"]["template"]["spec"]) == []
    assert restricted_violations(test_pod["spec"]) == []
    c = container(dep)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert dep["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    assert not [d for d in docs if d["kind"] == "Secret"], "nothing needs a Secret"


def test_ingress_service_and_scraping(default_docs, renderer):
    dep = one(default_docs, "Deployment")
    svc = one(default_docs, "Service")
    ing = one(default_docs, "Ingress")
    c = container(dep)
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    (sport,) = svc["spec"]["ports"]
    assert port_number(c, sport["targetPort"]) == c["ports"][0]["containerPort"]
    assert ing["spec"]["ingressClassName"] == "nginx"
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "metrics-app.local"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == svc["metadata"]["name"]
    assert backend["port"]["name"] == sport["name"]
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert ann["prometheus.io/port"] == str(c["ports"][0]["containerPort"])
    assert ann["prometheus.io/path"] == "/metrics"
    docs = documents(renderer.render(*VALUE_SETS["everything-on"][0]))
    sm = one(docs, "ServiceMonitor")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"][0]["port"] == sport["name"]
    assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_helm_test_pod_checks_counter_and_governor(default_docs):
    pod = one(default_docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][-1]
    svc = one(default_docs, "Service")
    base = f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}"
    assert f"{base}/counter" in script and f"{base}/governor" in script
    assert f'"{NAMESPACE}"' in script


def test_image_agrees_with_the_deployment(default_docs):
    """The Dockerfile's final image runs what the Deployment expects."""
    c = container(one(default_docs, "Deployment"))
    psc = one(default_docs, "Deployment")["spec"]["template"]["spec"]["securityContext"]
    instructions = dockerfile_final_stage()
    stage = dict(instructions)
    assert json.loads(stage["ENTRYPOINT"]) == c["command"]
    assert str(c["ports"][0]["containerPort"]) in stage["EXPOSE"].split()
    user, _, group = stage["USER"].partition(":")
    assert user.isdigit() and int(user) != 0, "a numeric non-root user (runAsNonRoot can check it)"
    assert (int(user), int(group)) == (psc["runAsUser"], psc["runAsGroup"])
    # the image's default policy sits where the chart mounts the ConfigMap: the
    # final stage (FROM scratch) is the file system scripts/image-rootfs.sh made
    args = c["args"]
    policy = args[args.index("--policy") + 1]
    copies = [rest.split() for word, rest in instructions if word == "COPY"]
    assert copies == [["--from=build", "/rootfs/", "/"]]
    assert json.loads(stage["CMD"]) == ["--policy", policy]
    assert f'"$root{policy}"' in (REPO / "scripts" / "image-rootfs.sh").read_text()


def test_deploy_files():
    app = yaml.safe_load((REPO / "deploy" / "application.yaml").read_text())
    r = validate((REPO / "deploy" / "application.yaml").read_text())
    assert r.returncode == 0 and "Valid: 1" in r.stdout, r.stdout
    src = app["spec"]["source"]
    assert (REPO / src["path"] / "Chart.yaml").is_file()
    assert src["path"] == "charts/metrics-app"
    kind = yaml.safe_load((REPO / "deploy" / "kind-cluster.yaml").read_text())
    assert kind["kind"] == "Cluster" and kind["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    (node,) = kind["nodes"]
    assert 'node-labels: "ingress-ready=true"' in node["kubeadmConfigPatches"][0]
    assert {m["hostPort"] for m in node["extraPortMappings"]} >= {80, 443}
    readme = (REPO / "README.md").read_text()
    deploy = readme[readme.index("## Deploy to Kubernetes"):]
    for ref in ("deploy/kind-cluster.yaml", "deploy/application.yaml", "charts/metrics-app",
                "metrics-app.local", src["repoURL"]):
        assert ref in deploy, f"README's deploy section does not mention {ref}"
