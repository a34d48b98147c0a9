"""The process a model's chat template runs in, and how to start it.

It caps its own address space (CHILD_MEMORY_LIMIT) and, before each request, its CPU time, so a
template stays bounded even if the parent is gone and nobody kills it. It then says it is ready,
compiles the template it is sent (engine/jinja_sandbox.py) and answers render requests, one JSON
line in and one out over its stdin and stdout. engine/chat_template.py is the parent's side.

Frozen builds: `sys.executable` is the app itself, so the child is started as `<app> --tinychat-template-child`;
the app's entry point calls `serve_if_requested()` first thing.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from engine.jinja_sandbox import RUNAWAY, UNSAFE, SandboxFault, compile_template, render_template

CHILD_FLAG = "--tinychat-template-child"
CHILD_MEMORY_LIMIT = 1 << 30
# The child runs with the folder holding the `engine` package as its cwd, so `-m engine.template_child`
# is this very code whether TinyChat is installed or run from a source tree.
PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def child_command() -> list[str]:
    """The command that starts a template child (run it with `PACKAGE_PARENT` as its cwd)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, CHILD_FLAG]
    return [sys.executable, "-m", "engine.template_child", CHILD_FLAG]


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line. surrogatepass: a lone surrogate in a message or a template crosses unchanged."""
    return json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """The message in one protocol line; raises ValueError for anything else."""
    return json.loads(line.decode("utf-8", "surrogatepass"))


def _set_soft_limit(limit: int, value: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: the parent's wall-clock limit still applies
        return
    with contextlib.suppress(ValueError, OSError):
        hard = resource.getrlimit(limit)[1]
        resource.setrlimit(limit, (value if hard == resource.RLIM_INFINITY else min(value, hard), hard))


def _limit_cpu(seconds: float) -> None:
    """Let the next request use at most `seconds` more CPU time (SIGXCPU ends the child after that)."""
    try:
        import resource
    except ImportError:
        return
    used = resource.getrusage(resource.RUSAGE_SELF)
    # At least a second beyond `seconds`: while the parent lives, it kills the child first (0.5 s after).
    _set_soft_limit(resource.RLIMIT_CPU, int(used.ru_utime + used.ru_stime + seconds) + 2)


def _fault(exc: SandboxFault) -> dict[str, Any]:
    # The template writes `detail` and `said` too: keep them short enough for a log line and a sentence.
    return {"kind": exc.kind, "detail": exc.detail[:1000], "line": exc.line, "said": (exc.said or "")[:1000]}


def serve() -> int:
    """The child's life: limit itself, say ready, compile the template it is sent (`template`,
    `time_limit`), answer render requests (`contexts`, `time_limit`, `max_output`) until its stdin closes."""
    try:
        import resource

        _set_soft_limit(resource.RLIMIT_AS, CHILD_MEMORY_LIMIT)
        _set_soft_limit(resource.RLIMIT_CORE, 0)  # a child killed for its CPU time leaves no core file
    except ImportError:
        pass
    out = sys.stdout.buffer

    def reply(message: dict[str, Any]) -> None:
        out.write(encode(message))
        out.flush()

    reply({"ready": True})
    template = None
    for line in sys.stdin.buffer:
        request = decode(line)
        if "template" in request:
            _limit_cpu(request["time_limit"])
            try:
                template = compile_template(request["template"])
                reply({"compiled": True})
            except SandboxFault as exc:
                reply(_fault(exc))
            continue
        _limit_cpu(request["time_limit"])
        deadline = time.monotonic() + request["time_limit"]
        results: list[dict[str, Any]] = []
        for context in request["contexts"]:
            try:
                results.append({"text": render_template(template, context, deadline, request["max_output"])})
            except SandboxFault as exc:
                results.append(_fault(exc))
                if exc.kind in (RUNAWAY, UNSAFE):  # out of time or hostile: nothing more is tried
                    break
        reply({"results": results})
    return 0


def serve_if_requested(argv: list[str] | None = None) -> None:
    """For entry points: if started as the template child, serve and exit."""
    argv = sys.argv[1:] if argv is None else argv
    if argv == [CHILD_FLAG]:
        sys.exit(serve())


if __name__ == "__main__":
    serve_if_requested()
