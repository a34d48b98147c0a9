"""Child process for template tests that must survive a template that hangs or eats memory.

Reads `{"template": ..., "messages": [[role, content], ...]}` as JSON on stdin, makes the gguf-jinja
format and renders the messages exactly as the engine does, and prints one JSON line:
`{"parts": n, "length": n}` or `{"error": sentence}`. It runs under a 4 GiB address-space limit so a
template that escapes the app's own limits fails here instead of exhausting the machine; the test
that starts it applies a timeout, so a template that escapes the deadline fails instead of hanging.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.chat_format import get_format
from engine.types import EngineError, Message

MEMORY_LIMIT = 4 << 30


def main() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))
    logging.getLogger().addHandler(logging.NullHandler())  # the app logs to a file: stderr is for crashes
    request = json.loads(sys.stdin.buffer.read().decode("utf-8", "surrogatepass"))
    messages = [Message(role, content) for role, content in request["messages"]]
    try:
        parts = get_format("gguf-jinja", gguf_template=request["template"]).render(messages)
    except EngineError as exc:
        print(json.dumps({"error": exc.message}))
        return 0
    print(json.dumps({"parts": len(parts), "length": sum(len(p.text) for p in parts)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
