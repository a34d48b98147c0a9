"""Child process for template tests that must survive a template that hangs or eats memory.

Reads one request per line on stdin, `{"template": ..., "messages": [[role, content], ...],
"time_limit": seconds or null}`, makes the gguf-jinja format and renders the messages exactly as the
engine does (with the render time limit lowered when one is given), and answers each with one JSON
line: `{"parts": n, "length": n}` or `{"error": sentence}`. It runs under a 4 GiB address-space limit
so a template that escapes the app's own limits fails here instead of exhausting the machine; the
test that drives it applies a hang guard, so a template that escapes the deadline fails the test
instead of hanging the suite. Anything on its stderr is a crash the user would have seen.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import chat_template
from engine.chat_format import get_format
from engine.types import EngineError, Message

MEMORY_LIMIT = 4 << 30
DEFAULT_TIME_LIMIT_S = chat_template.TEMPLATE_TIME_LIMIT_S


def render(request: dict[str, object]) -> dict[str, object]:
    """The outcome of one request."""
    chat_template.TEMPLATE_TIME_LIMIT_S = request.get("time_limit") or DEFAULT_TIME_LIMIT_S  # type: ignore[assignment]
    messages = [Message(role, content) for role, content in request["messages"]]  # type: ignore[union-attr]
    try:
        parts = get_format("gguf-jinja", gguf_template=request["template"]).render(messages)  # type: ignore[arg-type]
    except EngineError as exc:
        return {"error": exc.message}
    return {"parts": len(parts), "length": sum(len(p.text) for p in parts)}


def main() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))
    logging.getLogger().addHandler(logging.NullHandler())  # the app logs to a file: stderr is for crashes
    for line in sys.stdin.buffer:
        outcome = render(json.loads(line.decode("utf-8", "surrogatepass")))
        sys.stdout.write(json.dumps(outcome) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
