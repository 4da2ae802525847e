"""Renders a kustomization: with `kubectl kustomize` when it is installed, else with a small
built-in renderer.

The built-in renderer implements only the kustomize features deploy/k8s uses, and refuses
(raises `Unsupported`) any other field, so it can never silently render something different:

- `resources`: files (multi-document YAML) and directories holding a kustomization;
- `namespace`, `namePrefix`, `nameSuffix` (renaming also updates HorizontalPodAutoscaler
  `scaleTargetRef`s to renamed Deployments of the same build; other references are left as
  they are, which is what kustomize does for objects outside the build);
- `labels` (`pairs`, `includeSelectors`, `includeTemplates`) for the kinds used here;
- `images` (`name`, `newName`, `newTag`);
- `patches` with a `path` to a strategic-merge patch, optionally with a `target` of
  `kind` / `name` (lists of containers, env, ports, volumes, volumeMounts merge by key, other
  lists are replaced; `$patch` directives are refused).

When kubectl is present, `deploy/check` renders every overlay both ways and fails if they
differ, which keeps this renderer honest.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from typing import Any

import yaml

Doc = dict[str, Any]


class Unsupported(Exception):
    """A kustomization uses a feature the built-in renderer does not implement."""


SUPPORTED_FIELDS = {
    "apiVersion", "kind", "resources", "namespace", "namePrefix", "nameSuffix", "labels",
    "images", "patches",
}

# Kinds whose pod template carries labels, and where their selectors live.
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def load_docs(path: str) -> list[Doc]:
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def kustomization_file(directory: str) -> str:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"no kustomization in {directory}")


def build(directory: str) -> list[Doc]:
    """The built-in renderer: the objects the kustomization in `directory` produces."""
    kpath = kustomization_file(directory)
    [k] = load_docs(kpath)
    unknown = set(k) - SUPPORTED_FIELDS
    if unknown:
        raise Unsupported(f"{kpath}: fields not supported by the built-in renderer: {sorted(unknown)}")

    docs: list[Doc] = []
    for resource in k.get("resources", []):
        path = os.path.normpath(os.path.join(directory, resource))
        if os.path.isdir(path):
            docs.extend(build(path))
        else:
            docs.extend(copy.deepcopy(load_docs(path)))

    for patch in k.get("patches", []):
        apply_patch(directory, patch, docs)
    for label in k.get("labels", []):
        apply_labels(label, docs)
    for image in k.get("images", []):
        apply_image(image, docs)
    rename(k.get("namePrefix", ""), k.get("nameSuffix", ""), docs)
    if "namespace" in k:
        for doc in docs:
            doc.setdefault("metadata", {})["namespace"] = k["namespace"]
    return docs


def apply_patch(directory: str, patch: Doc, docs: list[Doc]) -> None:
    unknown = set(patch) - {"path", "target"}
    if unknown:
        raise Unsupported(f"patch fields {sorted(unknown)} (only path and target)")
    [body] = load_docs(os.path.join(directory, patch["path"]))
    target = patch.get("target")
    if target is None:
        target = {"kind": body["kind"], "name": body["metadata"]["name"]}
    if set(target) - {"kind", "name"}:
        raise Unsupported(f"patch target fields {sorted(set(target) - {'kind', 'name'})}")
    body = {key: value for key, value in body.items() if key not in ("apiVersion", "kind")}
    if "metadata" in body:
        body["metadata"] = {k: v for k, v in body["metadata"].items() if k != "name"}
    matched = [
        d for d in docs
        if d.get("kind") == target.get("kind", d.get("kind"))
        and d["metadata"]["name"] == target.get("name", d["metadata"]["name"])
    ]
    if not matched:
        raise ValueError(f"patch {patch['path']} matches no object in {directory}")
    for doc in matched:
        merged = merge(doc, body)
        doc.clear()
        doc.update(merged)


MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "env": "name", "ports": "containerPort",
    "volumes": "name", "volumeMounts": "mountPath",
}


def merge(base: Any, patch: Any, field: str = "") -> Any:
    """A strategic merge for the fields deploy/k8s patches."""
    if isinstance(patch, dict):
        if any(str(k).startswith("$") for k in patch):
            raise Unsupported(f"$-directives in a patch ({field})")
        if not isinstance(base, dict):
            return copy.deepcopy(patch)
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = merge(base.get(key), value, key)
        return out
    if isinstance(patch, list) and field in MERGE_KEYS and isinstance(base, list):
        # As kubectl's strategic merge orders them: the patch's items first (merged into the
        # base's item of the same key), then the base's other items.
        key = MERGE_KEYS[field]
        out = []
        for item in patch:
            found = next((b for b in base if b.get(key) == item.get(key)), None)
            out.append(copy.deepcopy(item) if found is None else merge(found, item, field))
        patched = {item.get(key) for item in patch}
        out.extend(copy.deepcopy(b) for b in base if b.get(key) not in patched)
        return out
    return copy.deepcopy(patch)


def set_labels(obj: Doc, path: list[str], pairs: dict[str, str], create: bool) -> None:
    node = obj
    for part in path:
        if part not in node or node[part] is None:
            if not create:
                return
            node[part] = {}
        node = node[part]
        if isinstance(node, list):
            raise Unsupported(f"labels through the list at {'/'.join(path)}")
    node.update(pairs)


def apply_labels(label: Doc, docs: list[Doc]) -> None:
    unknown = set(label) - {"pairs", "includeSelectors", "includeTemplates"}
    if unknown:
        raise Unsupported(f"labels fields {sorted(unknown)}")
    pairs = label.get("pairs", {})
    selectors = label.get("includeSelectors", False)
    templates = label.get("includeTemplates", False) or selectors
    for doc in docs:
        kind = doc.get("kind")
        set_labels(doc, ["metadata", "labels"], pairs, create=True)
        if kind in WORKLOADS and templates:
            set_labels(doc, ["spec", "template", "metadata", "labels"], pairs, create=True)
        if not selectors:
            continue
        if kind == "Service":
            set_labels(doc, ["spec", "selector"], pairs, create=True)
        elif kind in WORKLOADS:
            set_labels(doc, ["spec", "selector", "matchLabels"], pairs, create=kind != "Job")
            pod = doc.get("spec", {}).get("template", {}).get("spec", {})
            for constraint in pod.get("topologySpreadConstraints", []) or []:
                set_labels(constraint, ["labelSelector", "matchLabels"], pairs, create=False)
            for kind_of in ("podAffinity", "podAntiAffinity"):
                affinity = pod.get("affinity", {}).get(kind_of)
                if affinity:
                    raise Unsupported(f"labels with includeSelectors and {kind_of}")
        elif kind == "PodDisruptionBudget":
            set_labels(doc, ["spec", "selector", "matchLabels"], pairs, create=False)
        elif kind in ("HorizontalPodAutoscaler", "ConfigMap", "Secret"):
            pass
        else:
            raise Unsupported(f"labels with includeSelectors on a {kind}")


def apply_image(image: Doc, docs: list[Doc]) -> None:
    unknown = set(image) - {"name", "newName", "newTag"}
    if unknown:
        raise Unsupported(f"images fields {sorted(unknown)}")
    for doc in docs:
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, tag = split_image(container["image"])
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            tag = image.get("newTag", tag)
            container["image"] = f"{name}:{tag}" if tag else name


def split_image(image: str) -> tuple[str, str]:
    if "@" in image:
        raise Unsupported(f"image digests ({image})")
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = image.rsplit(":", 1)
        return name, tag
    return image, ""


def rename(prefix: str, suffix: str, docs: list[Doc]) -> None:
    if not prefix and not suffix:
        return
    renamed: dict[tuple[str, str], str] = {}
    for doc in docs:
        old = doc["metadata"]["name"]
        doc["metadata"]["name"] = f"{prefix}{old}{suffix}"
        renamed[(doc["kind"], old)] = doc["metadata"]["name"]
    for doc in docs:
        if doc.get("kind") == "HorizontalPodAutoscaler":
            ref = doc["spec"]["scaleTargetRef"]
            ref["name"] = renamed.get((ref["kind"], ref["name"]), ref["name"])


def kubectl() -> str | None:
    """kubectl, if it is installed and its kustomize knows `labels` (kustomize v4.1+)."""
    path = shutil.which("kubectl")
    if not path:
        return None
    try:
        out = subprocess.run([path, "version", "--client"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        if line.startswith("Kustomize Version: v"):
            major = line.split("v", 1)[1].split(".", 1)[0]
            if major.isdigit() and int(major) >= 5:
                return path
    return None


def kubectl_build(kubectl_path: str, directory: str) -> list[Doc]:
    out = subprocess.run([kubectl_path, "kustomize", directory], capture_output=True, text=True,
                         timeout=120, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def identity(doc: Doc) -> tuple[str, str, str]:
    meta = doc.get("metadata", {})
    return (doc.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))


def normalise(docs: list[Doc]) -> list[Doc]:
    """The objects in a stable order, for comparing two renderers' output."""
    return sorted(docs, key=identity)
