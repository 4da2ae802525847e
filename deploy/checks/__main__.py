"""deploy/check: renders every overlay, validates every object against the Kubernetes schema
(kubernetes-validate, strict), checks the rules of rules.py and the Dockerfile, and proves
each check can fail on the negative cases of negative.py. Run through `deploy/check`, which
sets up the virtualenv."""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
from typing import Any

import kubernetes_validate

import dockerfile
import negative
import render
import rules

HERE = os.path.dirname(os.path.abspath(__file__))
DEPLOY = os.path.dirname(HERE)
OVERLAYS = os.path.join(DEPLOY, "k8s", "overlays")
DOCKERFILE = os.path.join(DEPLOY, "docker", "Dockerfile")
# The Kubernetes version the manifests must be valid for: the newest the pinned
# kubernetes-validate knows.
KUBERNETES_VERSION = "1.37.0"
# The overlay the negative cases mutate.
NEGATIVE_BASE = "production"


class Tally:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def record(self, what: str, problems: list[str]) -> None:
        if problems:
            self.failed += 1
            print(f"FAIL {what}")
            for problem in problems:
                print(f"     - {problem}")
        else:
            self.passed += 1
            print(f"ok   {what}")


def schema_problems(docs: list[dict[str, Any]], version: str) -> list[str]:
    problems = []
    for doc in docs:
        what = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            problems.append(f"{what}: {path}: {e.message}")
        except (kubernetes_validate.SchemaNotFoundError,
                kubernetes_validate.InvalidSchemaError) as e:
            problems.append(f"{what}: {e.message}")
    return problems


def run_rules(docs: list[dict[str, Any]]) -> dict[str, list[str]]:
    out = {}
    for rule_id, rule in rules.RULES.items():
        try:
            out[rule_id] = rule(docs)
        except (ValueError, KeyError, TypeError) as e:
            out[rule_id] = [f"could not check: {e!r}"]
    return out


def hadolint() -> str | None:
    local = os.path.join(os.path.dirname(sys.executable), "hadolint")
    return local if os.path.exists(local) else shutil.which("hadolint")


def main() -> int:
    parser = argparse.ArgumentParser(prog="deploy/check", description=__doc__)
    parser.add_argument("--renderer", choices=["auto", "builtin", "kubectl"], default="auto",
                        help="auto: kubectl kustomize when installed (and compared with the "
                             "built-in renderer), else the built-in one")
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    parser.add_argument("--print", dest="print_overlay", metavar="OVERLAY",
                        help="print an overlay's rendered objects as JSON lines and exit")
    args = parser.parse_args()

    kubectl = render.kubectl() if args.renderer in ("auto", "kubectl") else None
    if args.renderer == "kubectl" and kubectl is None:
        print("kubectl with kustomize v5+ is not installed", file=sys.stderr)
        return 2

    def build(overlay: str) -> list[dict[str, Any]]:
        path = os.path.join(OVERLAYS, overlay)
        return render.kubectl_build(kubectl, path) if kubectl else render.build(path)

    overlays = sorted(o for o in os.listdir(OVERLAYS) if os.path.isdir(os.path.join(OVERLAYS, o)))
    if args.print_overlay:
        for doc in build(args.print_overlay):
            print(json.dumps(doc, sort_keys=True))
        return 0

    tally = Tally()
    print(f"renderer: {'kubectl kustomize (' + kubectl + ')' if kubectl else 'built-in'}; "
          f"kubernetes {args.kubernetes_version} (kubernetes-validate "
          f"{kubernetes_validate.__version__}, strict)")

    renders: dict[str, list[dict[str, Any]]] = {}
    for overlay in overlays:
        docs = build(overlay)
        renders[overlay] = docs
        if kubectl and args.renderer == "auto":
            builtin = render.normalise(render.build(os.path.join(OVERLAYS, overlay)))
            same = builtin == render.normalise(docs)
            tally.record(f"{overlay}: the built-in renderer agrees with kubectl kustomize",
                         [] if same else ["outputs differ (run with --renderer builtin and "
                                          "--renderer kubectl and --print to compare)"])
        kinds = sorted({d["kind"] for d in docs})
        print(f"---- {overlay}: {len(docs)} objects ({', '.join(kinds)})")
        tally.record(f"{overlay}: schema", schema_problems(docs, args.kubernetes_version))
        for rule_id, problems in run_rules(docs).items():
            tally.record(f"{overlay}: {rule_id}", problems)

    print("---- Dockerfile")
    with open(DOCKERFILE, encoding="utf-8") as f:
        tally.record("deploy/docker/Dockerfile: exec-form entrypoint, non-root, multi-stage, "
                     "pinned bases", dockerfile.check(f.read()))
    lint = hadolint()
    if lint:
        out = subprocess.run([lint, DOCKERFILE], capture_output=True, text=True, check=False)
        tally.record("deploy/docker/Dockerfile: hadolint",
                     [line for line in out.stdout.splitlines() if line.strip()]
                     + ([f"hadolint exited {out.returncode}"] if out.returncode else []))
    else:
        tally.record("hadolint is installed (deploy/requirements.txt)", ["hadolint not found"])

    print(f"---- negative cases (each breaks the '{NEGATIVE_BASE}' render; its check must fail)")
    good = renders[NEGATIVE_BASE]
    covered = set()
    for rule_id, what, mutate in negative.CASES:
        docs = copy.deepcopy(good)
        mutate(docs)
        if rule_id == "schema":
            problems = schema_problems(docs, args.kubernetes_version)
        else:
            problems = run_rules(docs)[rule_id]
        covered.add(rule_id)
        tally.record(f"{rule_id} rejects {what}",
                     [] if problems else [f"the '{rule_id}' check passed a broken manifest"])
    for rule_id in ["schema", *rules.RULES]:
        tally.record(f"{rule_id} has a negative case",
                     [] if rule_id in covered else [f"no negative case for '{rule_id}'"])
    for name, expected in negative.DOCKERFILES:
        with open(os.path.join(HERE, "fixtures", name), encoding="utf-8") as f:
            problems = dockerfile.check(f.read())
        missing = [e for e in expected if not any(e in p for p in problems)]
        tally.record(f"the Dockerfile check rejects fixtures/{name}",
                     [f"no problem says '{e}' (found: {problems})" for e in missing])

    print(f"deploy check: {tally.passed} passed, {tally.failed} failed")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
