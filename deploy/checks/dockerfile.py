"""A static check of a Dockerfile's runtime stage, for what hadolint does not enforce as an
error: the process that gets SIGTERM is the binary, and it does not run as root."""

from __future__ import annotations

import json
import re


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        parts = line.split(None, 1)
        out.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
    return out


def exec_form(arguments: str) -> bool:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return False
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def check(text: str) -> list[str]:
    problems: list[str] = []
    steps = instructions(text)
    froms = [i for i, (ins, _) in enumerate(steps) if ins == "FROM"]
    if not froms:
        return ["no FROM"]
    if len(froms) < 2:
        problems.append("single stage: build in one stage, run from a small runtime image")
    for i in froms:
        image = steps[i][1].split()[0]
        if image.lower() != "scratch" and "$" not in image:
            last = image.rsplit("/", 1)[-1]
            if "@" not in image and (":" not in last or last.endswith(":latest")):
                problems.append(f"FROM {image}: pin a tag or a digest")
    final = steps[froms[-1]:]
    entrypoints = [args for ins, args in final if ins == "ENTRYPOINT"]
    if not entrypoints:
        problems.append("the runtime stage has no ENTRYPOINT")
    elif not exec_form(entrypoints[-1]):
        problems.append(f"ENTRYPOINT {entrypoints[-1]} is in shell form: /bin/sh would be PID 1 "
                        "and not forward SIGTERM; use the exec form [\"/path/to/binary\"]")
    for ins, args in final:
        if ins == "CMD" and not exec_form(args):
            problems.append(f"CMD {args} is in shell form; use the exec form")
    users = [args.strip() for ins, args in final if ins == "USER"]
    if not users:
        problems.append("the runtime stage sets no USER: it would run as root")
    elif re.fullmatch(r"(root|0)(:.*)?", users[-1]):
        problems.append(f"USER {users[-1]} is root")
    return problems
