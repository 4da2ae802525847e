"""The checks deploy/check runs on each rendered overlay, beyond the Kubernetes schema.

Each rule takes the rendered objects and returns a list of problems (empty: the rule holds).
Every rule has at least one negative case in `negative.py` that must make it fail.
"""

from __future__ import annotations

import re
from typing import Any, Callable

Doc = dict[str, Any]
Rule = Callable[[list[Doc]], list[str]]

# fab's contract (SPEC.md §5) when a variable is not set.
DEFAULT_ADMIN_PORT = 9090
DEFAULT_SHUTDOWN_DELAY = 0.0
DEFAULT_SHUTDOWN_TIMEOUT = 25.0
# Kubernetes' default terminationGracePeriodSeconds.
DEFAULT_GRACE = 30
# What the grace period must leave after the delay and the drain deadline: the process's own
# exit, the log flush, and the kubelet's slack.
MARGIN_SECONDS = 5.0

PROBES = {"startupProbe": "/startupz", "readinessProbe": "/readyz", "livenessProbe": "/livez"}


def kind(docs: list[Doc], k: str) -> list[Doc]:
    return [d for d in docs if d.get("kind") == k]


def name(doc: Doc) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def pod_spec(doc: Doc) -> Doc:
    return doc.get("spec", {}).get("template", {}).get("spec", {})


def pod_labels(doc: Doc) -> dict[str, str]:
    return doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}) or {}


def selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """Whether a (non-empty) equality selector selects these labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def match_labels(doc: Doc) -> dict[str, str]:
    selector = doc.get("spec", {}).get("selector", {}) or {}
    if selector.get("matchExpressions"):
        raise ValueError(f"{name(doc)}: matchExpressions are not understood by deploy/check")
    return selector.get("matchLabels", {}) or {}


def parse_duration(text: str) -> float:
    """Seconds in a duration as orderly reads it: `500ms`, `5s`, `1.5s`, `2m`, `1m30s`, `0`."""
    text = text.strip()
    if text == "0":
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"'{text}' is not a duration (500ms, 5s, 1m30s)")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def env_of(container: Doc, docs: list[Doc]) -> dict[str, str]:
    """The container's environment values that can be known from the manifests: literal
    `env` values and ConfigMap references resolved in this render (`env` wins over `envFrom`,
    as in Kubernetes); Secret-backed variables are absent."""
    env: dict[str, str] = {}
    maps = {d["metadata"]["name"]: d.get("data", {}) or {} for d in kind(docs, "ConfigMap")}
    for source in container.get("envFrom", []) or []:
        ref = source.get("configMapRef")
        if ref and ref.get("name") in maps:
            prefix = source.get("prefix", "")
            env.update({prefix + k: str(v) for k, v in maps[ref["name"]].items()})
    for var in container.get("env", []) or []:
        if "value" in var:
            env[var["name"]] = str(var["value"])
        ref = (var.get("valueFrom") or {}).get("configMapKeyRef")
        if ref and ref.get("key") in maps.get(ref.get("name"), {}):
            env[var["name"]] = str(maps[ref["name"]][ref["key"]])
    return env


def rollout(docs: list[Doc]) -> list[str]:
    """Rolling updates never take a serving pod away before its replacement is ready."""
    problems = []
    for d in kind(docs, "Deployment"):
        strategy = d.get("spec", {}).get("strategy", {}) or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            problems.append(f"{name(d)}: strategy {strategy.get('type')} (RollingUpdate expected)")
            continue
        unavailable = (strategy.get("rollingUpdate") or {}).get("maxUnavailable")
        if unavailable not in (0, "0", "0%"):
            problems.append(f"{name(d)}: rollingUpdate.maxUnavailable is {unavailable!r} "
                            "(0 expected; the default is 25%)")
    return problems


def probes(docs: list[Doc]) -> list[str]:
    """Startup, readiness and liveness probes hit fab's admin port on their own paths."""
    problems = []
    for d in kind(docs, "Deployment"):
        for c in pod_spec(d).get("containers", []):
            where = f"{name(d)} container {c.get('name')}"
            admin = int(env_of(c, docs).get("ADMIN_PORT", DEFAULT_ADMIN_PORT))
            ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", []) or []}
            for probe, path in PROBES.items():
                get = (c.get(probe) or {}).get("httpGet")
                if not get:
                    problems.append(f"{where}: no {probe} with httpGet {path}")
                    continue
                if get.get("path") != path:
                    problems.append(f"{where}: {probe} path {get.get('path')!r} ({path} expected)")
                port = get.get("port")
                port = ports.get(port) if isinstance(port, str) else port
                if port != admin:
                    problems.append(f"{where}: {probe} port {get.get('port')!r} is not the "
                                    f"admin port {admin} (ADMIN_PORT)")
    return problems


def timing(docs: list[Doc]) -> list[str]:
    """terminationGracePeriodSeconds >= preStop sleep + SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT +
    margin: the kubelet's SIGKILL comes only after fab's own deadline."""
    problems = []
    for d in kind(docs, "Deployment"):
        pod = pod_spec(d)
        grace = pod.get("terminationGracePeriodSeconds", DEFAULT_GRACE)
        for c in pod.get("containers", []):
            env = env_of(c, docs)
            try:
                delay = parse_duration(env.get("SHUTDOWN_DELAY", "0"))
                timeout = parse_duration(env.get("SHUTDOWN_TIMEOUT", "25s"))
            except ValueError as e:
                problems.append(f"{name(d)} container {c.get('name')}: {e}")
                continue
            pre_stop = (c.get("lifecycle") or {}).get("preStop") or {}
            if "exec" in pre_stop or "httpGet" in pre_stop:
                problems.append(f"{name(d)} container {c.get('name')}: preStop exec/httpGet "
                                "has no known length; use sleep or SHUTDOWN_DELAY")
                continue
            sleep = float((pre_stop.get("sleep") or {}).get("seconds", 0))
            need = sleep + delay + timeout + MARGIN_SECONDS
            if grace < need:
                problems.append(
                    f"{name(d)} container {c.get('name')}: terminationGracePeriodSeconds "
                    f"{grace} < preStop sleep {sleep:g} + SHUTDOWN_DELAY {delay:g} + "
                    f"SHUTDOWN_TIMEOUT {timeout:g} + margin {MARGIN_SECONDS:g} = {need:g}")
    return problems


def resources(docs: list[Doc]) -> list[str]:
    """Every container has CPU and memory requests and limits."""
    problems = []
    for d in kind(docs, "Deployment"):
        for c in pod_spec(d).get("containers", []):
            res = c.get("resources") or {}
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (res.get(section) or {}):
                        problems.append(f"{name(d)} container {c.get('name')}: no "
                                        f"resources.{section}.{resource}")
    return problems


def images(docs: list[Doc]) -> list[str]:
    """Images come from a registry with a pinned tag (not the placeholder, not :latest)."""
    problems = []
    for d in kind(docs, "Deployment"):
        for c in pod_spec(d).get("containers", []):
            image = c.get("image", "")
            last = image.rsplit("/", 1)[-1]
            tag = last.split(":", 1)[1] if ":" in last else ""
            if "/" not in image or ("@" not in image and tag in ("", "latest")):
                problems.append(f"{name(d)} container {c.get('name')}: image {image!r} is not "
                                "a registry image with a pinned tag")
    return problems


def security(docs: list[Doc]) -> list[str]:
    """Pods run as non-root without privilege escalation."""
    problems = []
    for d in kind(docs, "Deployment"):
        pod = pod_spec(d)
        for c in pod.get("containers", []):
            ctx = c.get("securityContext") or {}
            non_root = ctx.get("runAsNonRoot", (pod.get("securityContext") or {}).get("runAsNonRoot"))
            if non_root is not True:
                problems.append(f"{name(d)} container {c.get('name')}: runAsNonRoot is not true")
            if ctx.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name(d)} container {c.get('name')}: "
                                "allowPrivilegeEscalation is not false")
    return problems


def selectors(docs: list[Doc]) -> list[str]:
    """Each Deployment selects its own pods and no other Deployment's (stable and canary
    tracks must not adopt each other's pods)."""
    problems = []
    deployments = kind(docs, "Deployment")
    for d in deployments:
        selector = match_labels(d)
        if not selects(selector, pod_labels(d)):
            problems.append(f"{name(d)}: selector {selector} does not select its pod template")
        for other in deployments:
            same = (d["metadata"].get("namespace"), d["metadata"]["name"]) == \
                   (other["metadata"].get("namespace"), other["metadata"]["name"])
            if not same and selects(selector, pod_labels(other)):
                problems.append(f"{name(d)}: selector {selector} also selects {name(other)}'s pods")
    return problems


def budgets(docs: list[Doc]) -> list[str]:
    """Every PodDisruptionBudget selects some Deployment's pods and every Deployment's pods
    are covered by a budget."""
    problems = []
    deployments = kind(docs, "Deployment")
    pdbs = kind(docs, "PodDisruptionBudget")
    for p in pdbs:
        selector = match_labels(p)
        if not any(selects(selector, pod_labels(d)) for d in deployments):
            problems.append(f"{name(p)}: selector {selector} selects no Deployment's pods")
    for d in deployments:
        if not any(selects(match_labels(p), pod_labels(d)) for p in pdbs):
            problems.append(f"{name(d)}: no PodDisruptionBudget selects its pods")
    return problems


def autoscalers(docs: list[Doc]) -> list[str]:
    """Each HorizontalPodAutoscaler targets a Deployment of the render, which leaves `replicas`
    to it and requests the CPU the utilisation target is a fraction of."""
    problems = []
    deployments = {d["metadata"]["name"]: d for d in kind(docs, "Deployment")}
    for h in kind(docs, "HorizontalPodAutoscaler"):
        spec = h.get("spec", {})
        ref = spec.get("scaleTargetRef", {})
        target = deployments.get(ref.get("name")) if ref.get("kind") == "Deployment" else None
        if target is None:
            problems.append(f"{name(h)}: scaleTargetRef {ref.get('kind')}/{ref.get('name')} "
                            "is not in the render")
            continue
        if spec.get("minReplicas", 1) > spec.get("maxReplicas", 0):
            problems.append(f"{name(h)}: minReplicas > maxReplicas")
        if "replicas" in target.get("spec", {}):
            problems.append(f"{name(h)}: its target {name(target)} sets replicas, which every "
                            "apply would reset under the autoscaler")
        uses_cpu = any((m.get("resource") or {}).get("name") == "cpu"
                       for m in spec.get("metrics", []) or [])
        if uses_cpu:
            for c in pod_spec(target).get("containers", []):
                if "cpu" not in ((c.get("resources") or {}).get("requests") or {}):
                    problems.append(f"{name(h)}: scales on CPU but {name(target)} container "
                                    f"{c.get('name')} requests no CPU")
    return problems


def services(docs: list[Doc]) -> list[str]:
    """Each Service selects some Deployment's pods, on a port they declare."""
    problems = []
    deployments = kind(docs, "Deployment")
    for s in kind(docs, "Service"):
        selector = s.get("spec", {}).get("selector") or {}
        backends = [d for d in deployments if selects(selector, pod_labels(d))]
        if not backends:
            problems.append(f"{name(s)}: selector {selector} selects no Deployment's pods")
            continue
        for port in s.get("spec", {}).get("ports", []) or []:
            target = port.get("targetPort", port.get("port"))
            for d in backends:
                declared = [p for c in pod_spec(d).get("containers", [])
                            for p in c.get("ports", []) or []]
                if not any(target in (p.get("name"), p.get("containerPort")) for p in declared):
                    problems.append(f"{name(s)}: targetPort {target!r} is not a port of "
                                    f"{name(d)}")
    return problems


def references(docs: list[Doc]) -> list[str]:
    """ConfigMaps (and their keys) that containers read are in the render. Secrets are
    created out of band (deploy/README.md) and not checked here."""
    problems = []
    maps = {d["metadata"]["name"]: d.get("data", {}) or {} for d in kind(docs, "ConfigMap")}
    for d in kind(docs, "Deployment"):
        for c in pod_spec(d).get("containers", []):
            for source in c.get("envFrom", []) or []:
                ref = source.get("configMapRef")
                if ref and ref.get("name") not in maps and not ref.get("optional"):
                    problems.append(f"{name(d)}: envFrom ConfigMap {ref.get('name')!r} is not "
                                    "in the render")
            for var in c.get("env", []) or []:
                ref = (var.get("valueFrom") or {}).get("configMapKeyRef")
                if ref and ref.get("key") not in maps.get(ref.get("name"), {}) \
                        and not ref.get("optional"):
                    problems.append(f"{name(d)}: env {var['name']} reads ConfigMap "
                                    f"{ref.get('name')!r} key {ref.get('key')!r}, not in the render")
    return problems


RULES: dict[str, Rule] = {
    "rollout": rollout,
    "probes": probes,
    "timing": timing,
    "resources": resources,
    "images": images,
    "security": security,
    "selectors": selectors,
    "budgets": budgets,
    "autoscalers": autoscalers,
    "services": services,
    "references": references,
}
