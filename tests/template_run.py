"""Render chat templates in tests/render_child.py behind a hang guard (shared by the template tests).

One child serves a whole test module (`render_child` fixture), as starting Python for every case
would cost more than most cases; a case that hangs or crashes fails its test and the child is
started afresh for the next one.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 20.0  # far beyond the app's own limits: reaching it means the template hung the app
HELLO = (("user", "Hello!"),)


class RenderChild:
    """A running tests/render_child.py; its stderr goes to a file that must stay empty."""

    def __init__(self, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr: IO[bytes] | None = None

    def render(self, template: str, messages: Sequence[tuple[str, str]] = HELLO,
               time_limit: float | None = None) -> dict[str, object]:
        """`{"error": sentence}` or `{"parts": n, "length": n}` from rendering `template` (with the
        app's render time limit, or `time_limit` seconds); fails the test on a hang or a crash."""
        if self.proc is None or self.proc.poll() is not None:
            self.stderr = self.stderr_path.open("wb")
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.render_child"], cwd=ROOT,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        request = {"template": template, "messages": list(messages), "time_limit": time_limit}
        self.proc.stdin.write(json.dumps(request, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], HANG_GUARD_S)
        line = self.proc.stdout.readline() if ready else b""
        stderr = self.stderr_path.read_text("utf-8", "replace")
        if not line or stderr:
            self.close()
            what = "did not end within" if not ready else "crashed the renderer or wrote to stderr in"
            pytest.fail(f"rendering the template {what} {HANG_GUARD_S:.0f} s:\n{stderr[-3000:]}")
        return json.loads(line)

    def close(self) -> None:
        """Stop the child (the next render starts a new one)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None


@pytest.fixture(scope="module")
def render_child(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RenderChild]:
    """A render child shared by the tests of one module."""
    child = RenderChild(tmp_path_factory.mktemp("render-child") / "stderr.txt")
    yield child
    child.close()
