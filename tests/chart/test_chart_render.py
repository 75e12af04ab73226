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
    "hpa-on": (["--set", "autoscaling.enabled=true", "--set", "allowPerPodCounter=true"],
               BASE_KINDS + ["HorizontalPodAutoscaler"]),
    "counter-file": (["--set", "counter.store=file"], BASE_KINDS),
    "counter-file-pvc": (["--set", "counter.store=file",
                          "--set", "counter.file.persistence.enabled=true"],
                         BASE_KINDS + ["PersistentVolumeClaim"]),
    "counter-redis-url": (["--set", "counter.store=redis",
                           "--set", "counter.redis.url=redis://redis.shared:6379/2?key=app:n",
                           "--set", "counter.redis.existingSecret=redis-auth",
                           "--set", "replicaCount=3"], BASE_KINDS),
    "counter-redis-bundled": (["--set", "counter.store=redis",
                               "--set", "counter.redis.bundled.enabled=true",
                               "--set", "counter.redis.existingSecret=redis-auth",
                               "--set", "autoscaling.enabled=true"],
                              BASE_KINDS + ["HorizontalPodAutoscaler", "Service", "StatefulSet"]),
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
                       "--set", "counter.store=redis",
                       "--set", "counter.redis.bundled.enabled=true",
                       "--set-json", 'env=[{"name":"GOVERNOR_THREADS","value":"2"}]'],
                      BASE_KINDS + ["HorizontalPodAutoscaler", "PodDisruptionBudget",
                                    "ServiceMonitor", "Service", "StatefulSet"]),
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


# ---- the counter store ------------------------------------------------------------

def refused(renderer, *args):
    r = renderer.run(*args)
    assert r.returncode != 0, f"accepted {args}"
    return r.stderr


@pytest.mark.parametrize("args", [
    ["--set", "replicaCount=2"],
    ["--set", "autoscaling.enabled=true"],
    ["--set", "replicaCount=2", "--set", "counter.store=file"],
    ["--set", "counter.store=redis"],
    ["--set", "counter.store=sql"],
    ["--set", "counter.store=redis", "--set", "counter.redis.url=http://x:1"],
    ["--set", "counter.store=redis", "--set", "counter.redis.url=redis://x"],
    ["--set", "counter.file.lease=0"],
    ["--set", "counter.file.path=relative/counter"],
    ["--set", "counter.file.path=/counter"],
    ["--set", "counter.redis.timeoutMs=0"],
    ["--set", "counter.redis.existingSecret=Bad_Name"],
    ["--set", "counter.redis.bundled.enable=true"],
    ["--set", "counter.typo=1"],
])
def test_schema_refuses_bad_counter_values(renderer, args):
    refused(renderer, *args)


def test_per_pod_counter_only_when_allowed(renderer):
    for extra in (["--set", "replicaCount=2"], ["--set", "autoscaling.enabled=true"]):
        refused(renderer, *extra)
        renderer.render(*extra, "--set", "allowPerPodCounter=true")
        renderer.render(*extra, "--set", "counter.store=redis",
                        "--set", "counter.redis.url=redis://r:6379")


def counter_args(c):
    args = c["args"]
    return args[args.index("--counter") + 1]


def test_counter_store_reaches_the_command(renderer):
    c = container(one(documents(renderer.render()), "Deployment"))
    assert counter_args(c) == "memory:"

    docs = documents(renderer.render("--set", "counter.store=file",
                                     "--set", "counter.file.lease=50"))
    dep = one(docs, "Deployment")
    c = container(dep)
    assert counter_args(c) == "file:/var/lib/governord/counter"
    assert c["args"][c["args"].index("--counter-lease") + 1] == "50"
    mount = [m for m in c["volumeMounts"] if m["name"] == "counter"][0]
    assert mount["mountPath"] == "/var/lib/governord" and not mount.get("readOnly")
    vol = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "counter"][0]
    assert vol == {"name": "counter", "emptyDir": {}}
    assert "strategy" not in dep["spec"]

    docs = documents(renderer.render("--set", "counter.store=file",
                                     "--set", "counter.file.persistence.enabled=true"))
    dep = one(docs, "Deployment")
    vol = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "counter"][0]
    pvc = one(docs, "PersistentVolumeClaim")
    assert vol["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert dep["spec"]["strategy"] == {"type": "Recreate"}


def test_redis_url_password_and_bundled_redis(renderer):
    docs = documents(renderer.render("--set", "counter.store=redis",
                                     "--set", "counter.redis.url=redis://r.ns:6379/1?key=k",
                                     "--set", "counter.redis.existingSecret=redis-auth",
                                     "--set", "counter.redis.timeoutMs=250"))
    dep = one(docs, "Deployment")
    c = container(dep)
    assert counter_args(c) == "redis://r.ns:6379/1?key=k"
    assert c["args"][c["args"].index("--counter-timeout") + 1] == "250"
    env = {e["name"]: e for e in c["env"]}
    assert env["GOVERNOR_COUNTER_PASSWORD_FILE"]["value"] == "/etc/governor-counter/password"
    vol = [v for v in dep["spec"]["template"]["spec"]["volumes"]
           if v["name"] == "counter-password"][0]
    assert vol["secret"]["secretName"] == "redis-auth"
    assert "password" not in json.dumps(c["args"]).lower()

    docs = documents(renderer.render("--set", "counter.store=redis",
                                     "--set", "counter.redis.bundled.enabled=true",
                                     "--set", "counter.redis.existingSecret=redis-auth"))
    sts = one(docs, "StatefulSet")
    svc = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-redis")]
    assert len(svc) == 1
    c = container(one(docs, "Deployment"))
    assert counter_args(c) == f"redis://{svc[0]['metadata']['name']}:6379"
    r = sts["spec"]["template"]["spec"]["containers"][0]
    args = " ".join(r["args"])
    assert "--appendonly yes" in args and "--appendfsync always" in args
    assert "--requirepass $(REDIS_PASSWORD)" in args
    assert r["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "redis-auth"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert not restricted_violations(sts["spec"]["template"]["spec"])
    # the Service selects the Redis pod only, not governord's pods
    assert svc[0]["spec"]["selector"]["app.kubernetes.io/component"] == "counter-redis"


# ---- escape hatches, monitoring objects, the policy check hook (issue 12) ----

EVERYTHING = {
    "image": {"registry": "ghcr.io/example",
              "digest": "sha256:" + "0123456789abcdef" * 4},
    "imagePullSecrets": [{"name": "regcred"}],
    "commonLabels": {"team": "platform"},
    "podLabels": {"tier": "backend"},
    "podAnnotations": {"example.com/note": "x"},
    "priorityClassName": "high",
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                   "whenUnsatisfiable": "ScheduleAnyway"}],
    "extraEnv": [{"name": "A", "value": "1"}],
    "envFrom": [{"configMapRef": {"name": "extra"}}],
    "extraVolumes": [{"name": "scratch", "emptyDir": {}}],
    "extraVolumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
    "startupProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                     "failureThreshold": 30, "periodSeconds": 1},
    "autoscaling": {"enabled": True,
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}}},
    # replicas share one counter (the schema refuses per-pod counters with the HPA)
    "counter": {"store": "redis", "redis": {"url": "redis://redis.example:6379"}},
    "revisionHistoryLimit": 3,
    "networkPolicy": {"enabled": True, "from": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]},
    "serviceMonitor": {"enabled": True, "namespace": "monitoring",
                       "relabelings": [{"action": "replace", "targetLabel": "cluster",
                                        "replacement": "prod"}],
                       "metricRelabelings": [{"action": "drop", "sourceLabels": ["__name__"],
                                              "regex": "governor_memory_usage_.*"}]},
    "podMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True, "ruleLabels": {"team": "platform"}},
    "grafanaDashboard": {"enabled": True},
    "policyCheck": {"enabled": True},
}
EVERYTHING_KINDS = sorted(BASE_KINDS + ["ConfigMap", "ConfigMap", "HorizontalPodAutoscaler",
                                        "Job", "NetworkPolicy", "PodMonitor", "PrometheusRule",
                                        "ServiceMonitor"])


def render_values(renderer, tmp_path, values, *args):
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump(values))
    return renderer.render("-f", str(f), *args)


def test_every_new_value_renders_and_validates_strictly(renderer, tmp_path):
    text = render_values(renderer, tmp_path, EVERYTHING)
    docs = documents(text)
    assert kinds(docs) == EVERYTHING_KINDS
    r = validate(text)
    assert r.returncode == 0 and f"{len(docs)} resources found" in r.stdout \
        and "Invalid: 0" in r.stdout, r.stdout
    dep = one(docs, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    c = container(dep)
    assert c["image"] == "ghcr.io/example/governord@sha256:" + "0123456789abcdef" * 4
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["priorityClassName"] == "high"
    (tsc,) = spec["topologySpreadConstraints"]
    assert tsc["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert {"name": "A", "value": "1"} in c["env"]
    assert c["envFrom"] == [{"configMapRef": {"name": "extra"}}]
    assert {"name": "scratch", "mountPath": "/scratch"} in c["volumeMounts"]
    assert {"name": "scratch", "emptyDir": {}} in spec["volumes"]
    assert c["startupProbe"]["failureThreshold"] == 30
    assert dep["spec"]["revisionHistoryLimit"] == 3
    assert one(docs, "HorizontalPodAutoscaler")["spec"]["behavior"] == \
        {"scaleDown": {"stabilizationWindowSeconds": 600}}
    for d in docs:
        assert d["metadata"]["labels"]["team"] == "platform", d["kind"]
    assert dep["spec"]["template"]["metadata"]["labels"]["tier"] == "backend"
    sm = one(docs, "ServiceMonitor")
    assert sm["metadata"]["namespace"] == "monitoring"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert sm["spec"]["endpoints"][0]["relabelings"][0]["targetLabel"] == "cluster"
    assert sm["spec"]["endpoints"][0]["metricRelabelings"][0]["action"] == "drop"
    pm = one(docs, "PodMonitor")
    assert pm["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "http"
    np_ = one(docs, "NetworkPolicy")
    assert np_["spec"]["podSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert np_["spec"]["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert restricted_violations(spec) == []


def test_image_registry_and_tag(renderer):
    c = container(one(documents(renderer.render("--set", "image.registry=registry.local:5000",
                                                "--set", "image.tag=1.2.3")), "Deployment"))
    assert c["image"] == "registry.local:5000/governord:1.2.3"
    c = container(one(documents(renderer.render()), "Deployment"))
    assert c["image"] == "governord:0.1.0"


def test_scrape_annotations_only_without_an_operator_monitor(renderer):
    for args in (["--set", "serviceMonitor.enabled=true"], ["--set", "podMonitor.enabled=true"]):
        dep = one(documents(renderer.render(*args)), "Deployment")
        ann = dep["spec"]["template"]["metadata"].get("annotations", {})
        assert not any(k.startswith("prometheus.io/") for k in ann), args


def test_chart_bump_alone_does_not_change_the_pod_template(renderer, tmp_path):
    """helm.sh/chart stays out of the pod template: a new chart version with
    the same values and appVersion leaves the template (and the pods) alone."""
    import shutil
    bumped = tmp_path / "metrics-app"
    shutil.copytree(CHART, bumped)
    chart_yaml = (bumped / "Chart.yaml").read_text().replace("version: 0.1.0", "version: 0.1.1")
    (bumped / "Chart.yaml").write_text(chart_yaml)
    old = one(documents(renderer.render()), "Deployment")
    r = subprocess.run(renderer.cmd + ["rel", str(bumped), "-n", NAMESPACE],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    new = one(documents(r.stdout), "Deployment")
    assert old["metadata"]["labels"]["helm.sh/chart"] != new["metadata"]["labels"]["helm.sh/chart"]
    assert old["spec"]["template"] == new["spec"]["template"]
    assert "helm.sh/chart" not in new["spec"]["template"]["metadata"]["labels"]


@pytest.mark.parametrize("args,word", [
    (["--set", "resources.limts.memory=256Mi"], "limts"),
    (["--set", "resources.limits.memroy=256Mi"], "memroy"),
    (["--set", "resources.requests.cpu=fast"], "cpu"),
    (["--set", "image.digest=latest"], "digest"),
    (["--set", "image.tag=1", "--set", "image.registy=x"], "registy"),
    (["--set", "serviceMonitor.relabelings[0].targetLabl=x"], "targetLabl"),
    (["--set", "podMonitor.interval=soon"], "interval"),
    (["--set", "prometheusRule.enable=true"], "enable"),
    (["--set", "grafanaDashboard.lable=x"], "lable"),
    (["--set", "policyCheck.resources.limits.memory=32MB"], "memory"),
    (["--set", "networkPolicy.from[0].podSelecter.a=b"], "podSelecter"),
    (["--set", "autoscaling.behavior.scaledown.x=1"], "scaledown"),
    (["--set", "topologySpreadConstraints[0].maxSkew=1"], "topologyKey"),
    (["--set", "extraVolumeMounts[0].name=x", "--set", "extraVolumeMounts[0].mountPath=/etc/governor"],
     "extraVolumeMounts"),
    (["--set", "resizePolicy[0].resourceName=memory",
      "--set", "resizePolicy[0].restartPolicy=Sometimes"], "restartPolicy"),
])
def test_schema_refuses_typos_in_new_values(renderer, args, word):
    r = renderer.run(*args)
    assert r.returncode != 0, f"{args} accepted"
    assert word in r.stderr, r.stderr


def test_policy_check_hook_runs_check_policy_on_the_rendered_policy(renderer, tmp_path):
    """The hook Job renders and validates, runs before install and upgrade,
    and its command, on the hook ConfigMap's policy, passes a good policy and
    fails a broken one (so `helm upgrade` fails)."""
    docs = documents(renderer.render("--set", "policyCheck.enabled=true"))
    job = one(docs, "Job")
    r = validate(yaml.safe_dump_all(docs))
    assert r.returncode == 0 and "Invalid: 0" in r.stdout, r.stdout
    cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    ann = job["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "pre-install,pre-upgrade"
    spec = job["spec"]["template"]["spec"]
    assert job["spec"]["backoffLimit"] == 0 and spec["restartPolicy"] == "Never"
    assert restricted_violations(spec) == []
    (c,) = spec["containers"]
    assert c["image"] == container(one(docs, "Deployment"))["image"]
    (mount,) = c["volumeMounts"]
    (vol,) = spec["volumes"]
    cm = cms[vol["configMap"]["name"]]
    # the ConfigMap is a hook too, created first (lower weight)
    assert cm["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(cm["metadata"]["annotations"]["helm.sh/hook-weight"]) < \
        int(ann["helm.sh/hook-weight"])
    assert cm["data"]["policy.ini"] == DEFAULT_POLICY
    argv = c["command"]
    assert argv[:2] == ["/usr/local/bin/governord", "--check-policy"]
    (key,) = cm["data"]
    assert argv[2] == mount["mountPath"].rstrip("/") + "/" + key
    for policy, ok in ((DEFAULT_POLICY, True), ("[thresholds]\nhigh = 2\n", False)):
        d = tmp_path / ("good" if ok else "bad")
        d.mkdir()
        (d / key).write_text(policy)
        r = subprocess.run([governord(), "--check-policy", str(d / key)], capture_output=True,
                           text=True)
        assert (r.returncode == 0) == ok, r.stderr
    # a broken policy value renders the same Job around it (the cluster runs it)
    bad = documents(renderer.render("--set", "policyCheck.enabled=true",
                                    "--set-string", "policy=[thresholds]\nhigh = 2\n"))
    assert one(bad, "Job")["spec"]["template"]["spec"]["containers"][0]["command"] == argv


def test_vpa_guidance_and_resize_policy(default_docs):
    """README "VPA and in-place resize": memory stays out of VPA's control,
    requests = limits for memory, and an in-place resize keeps the pod."""
    dep = one(default_docs, "Deployment")
    c = container(dep)
    res = c["resources"]
    assert res["requests"]["memory"] == res["limits"]["memory"]
    assert {"resourceName": "memory", "restartPolicy": "NotRequired"} in c["resizePolicy"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert "targetMemoryUtilizationPercentage" not in values["autoscaling"]
    vpa = yaml.safe_load((REPO / "deploy" / "vpa.yaml").read_text())
    assert vpa["kind"] == "VerticalPodAutoscaler"
    assert vpa["spec"]["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "metrics-app"}
    assert vpa["spec"]["updatePolicy"]["updateMode"] in ("Off", "Initial", "InPlaceOrRecreate")
    for p in vpa["spec"]["resourcePolicy"]["containerPolicies"]:
        assert p["containerName"] == c["name"]
        assert p["controlledResources"] == ["cpu"], "memory must stay out of VPA's control"
        assert "memory" not in p.get("minAllowed", {}) and "memory" not in p.get("maxAllowed", {})
    readme = (REPO / "README.md").read_text()
    assert "deploy/vpa.yaml" in readme


def test_chart_readme_lists_every_value():
    """charts/metrics-app/README.md has a row for every leaf of values.yaml."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()

    def leaves(v, prefix=""):
        if isinstance(v, dict) and v:
            for k, sub in v.items():
                yield from leaves(sub, f"{prefix}{k}.")
        else:
            yield prefix[:-1]

    missing = [k for k in leaves(values) if f"`{k}`" not in readme]
    assert not missing, f"charts/metrics-app/README.md does not list {missing}"
