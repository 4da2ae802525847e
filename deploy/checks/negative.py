"""Negative cases: each breaks a good render in one way that one rule must catch. A rule
without a case here, or a case its rule lets pass, fails deploy/check: a check that cannot
fail proves nothing."""

from __future__ import annotations

from typing import Any, Callable

Doc = dict[str, Any]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    for d in docs:
        if d.get("kind") == kind and d["metadata"]["name"] == name:
            return d
    raise KeyError(f"{kind}/{name} not in the render the negative cases start from")


def pod(docs: list[Doc], name: str = "fab-apc") -> Doc:
    return find(docs, "Deployment", name)["spec"]["template"]["spec"]


def container(docs: list[Doc], name: str = "fab-apc") -> Doc:
    return pod(docs, name)["containers"][0]


def set_env(c: Doc, var: str, value: str) -> None:
    for e in c["env"]:
        if e["name"] == var:
            e.clear()
            e.update({"name": var, "value": value})
            return
    c["env"].append({"name": var, "value": value})


def drop_env(c: Doc, var: str) -> None:
    c["env"] = [e for e in c["env"] if e["name"] != var]


def add(docs: list[Doc], doc: Doc) -> None:
    docs.append(doc)


Mutation = Callable[[list[Doc]], None]

# (rule that must fail, what the mutation does, the mutation)
CASES: list[tuple[str, str, Mutation]] = [
    ("schema", "a misspelt field (readinessprobe)",
     lambda d: container(d).update(readinessprobe=container(d)["readinessProbe"])),
    ("schema", "replicas as a string",
     lambda d: find(d, "Deployment", "fab-spec")["spec"].update(replicas="two")),
    ("schema", "a PodDisruptionBudget with an unknown field",
     lambda d: find(d, "PodDisruptionBudget", "fab-fdc")["spec"].update(maxUnavailabel=1)),
    ("rollout", "maxUnavailable left to its 25% default",
     lambda d: find(d, "Deployment", "fab-apc")["spec"]["strategy"]["rollingUpdate"].pop("maxUnavailable")),
    ("rollout", "the Recreate strategy",
     lambda d: find(d, "Deployment", "fab-fdc")["spec"].update(strategy={"type": "Recreate"})),
    ("probes", "readiness on the public port",
     lambda d: container(d)["readinessProbe"]["httpGet"].update(port="http")),
    ("probes", "liveness on /readyz (a database outage would restart every pod)",
     lambda d: container(d)["livenessProbe"]["httpGet"].update(path="/readyz")),
    ("probes", "no startup probe",
     lambda d: container(d, "fab-spec").pop("startupProbe")),
    ("probes", "ADMIN_PORT moved without moving the probes",
     lambda d: set_env(container(d), "ADMIN_PORT", "9191")),
    ("timing", "grace period equal to delay + timeout, no margin",
     lambda d: pod(d).update(terminationGracePeriodSeconds=30)),
    ("timing", "grace period left at its 30 s default",
     lambda d: pod(d).pop("terminationGracePeriodSeconds")),
    ("timing", "a preStop sleep added without a longer grace period",
     lambda d: container(d).update(lifecycle={"preStop": {"sleep": {"seconds": 10}}})),
    ("timing", "SHUTDOWN_TIMEOUT raised in fdc's env only",
     lambda d: set_env(container(d, "fab-fdc"), "SHUTDOWN_TIMEOUT", "1m")),
    ("timing", "SHUTDOWN_TIMEOUT raised through the ConfigMap (env removed)",
     lambda d: (drop_env(container(d), "SHUTDOWN_TIMEOUT"),
                find(d, "ConfigMap", "fab-config")["data"].update(SHUTDOWN_TIMEOUT="45s"))),
    ("timing", "SHUTDOWN_DELAY that orderly cannot parse",
     lambda d: set_env(container(d), "SHUTDOWN_DELAY", "5")),
    ("resources", "no memory limit",
     lambda d: container(d)["resources"]["limits"].pop("memory")),
    ("images", "the :latest tag",
     lambda d: container(d).update(image="registry.example.com/orderly/fab:latest")),
    ("images", "the base's placeholder image",
     lambda d: container(d).update(image="fab")),
    ("security", "privilege escalation allowed",
     lambda d: container(d)["securityContext"].update(allowPrivilegeEscalation=True)),
    ("security", "runAsNonRoot dropped",
     lambda d: pod(d)["securityContext"].pop("runAsNonRoot")),
    ("selectors", "a canary Deployment whose selector also selects the stable pods",
     lambda d: add(d, canary_overlapping(find(d, "Deployment", "fab-apc")))),
    ("budgets", "a PodDisruptionBudget selecting a misspelt app",
     lambda d: find(d, "PodDisruptionBudget", "fab-apc")["spec"]["selector"]["matchLabels"].update(app="fab-acp")),
    ("budgets", "a Deployment no budget covers",
     lambda d: d.remove(find(d, "PodDisruptionBudget", "fab-spec"))),
    ("autoscalers", "an autoscaler targeting a Deployment not in the render",
     lambda d: find(d, "HorizontalPodAutoscaler", "fab-fdc")["spec"]["scaleTargetRef"].update(name="fab-fcd")),
    ("autoscalers", "replicas set under an autoscaler",
     lambda d: find(d, "Deployment", "fab-apc")["spec"].update(replicas=3)),
    ("autoscalers", "minReplicas above maxReplicas",
     lambda d: find(d, "HorizontalPodAutoscaler", "fab-spec")["spec"].update(minReplicas=5)),
    ("autoscalers", "CPU scaling without a CPU request",
     lambda d: container(d, "fab-spec")["resources"]["requests"].pop("cpu")),
    ("services", "a Service selecting nothing",
     lambda d: find(d, "Service", "fab-spec")["spec"].update(selector={"app": "spec"})),
    ("services", "a targetPort the pods do not declare",
     lambda d: find(d, "Service", "fab-apc")["spec"]["ports"][0].update(targetPort="web")),
    ("references", "envFrom a ConfigMap not in the render",
     lambda d: container(d)["envFrom"][0]["configMapRef"].update(name="fab-settings")),
]


def canary_overlapping(stable: Doc) -> Doc:
    import copy
    canary = copy.deepcopy(stable)
    canary["metadata"]["name"] += "-canary"
    canary["spec"]["selector"]["matchLabels"].pop("track")
    canary["spec"]["template"]["metadata"]["labels"]["track"] = "canary"
    canary["spec"]["replicas"] = 1
    return canary


# Dockerfiles that the static check must reject (under checks/fixtures), each with a phrase
# every expected problem's message contains.
DOCKERFILES = [
    ("Dockerfile.shell-entrypoint", ["ENTRYPOINT /fab all is in shell form"]),
    ("Dockerfile.root", ["sets no USER"]),
    ("Dockerfile.root-user", ["USER 0:0 is root", "CMD fab all is in shell form"]),
    ("Dockerfile.single-stage", ["single stage", "FROM rust: pin a tag"]),
]
