"""Run one chat template through tests/template_child.py with a hang guard (shared by the template
tests): the outcome, or a test failure naming what went wrong in the child."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 20.0  # far beyond the app's own limits: reaching it means the template hung the app
HELLO = (("user", "Hello!"),)


def render_in_child(template: str, messages: Sequence[tuple[str, str]] = HELLO) -> dict[str, object]:
    """`{"error": sentence}` or `{"parts": n, "length": n}` from rendering `template` in a child."""
    request = json.dumps({"template": template, "messages": list(messages)}, ensure_ascii=False)
    try:
        done = subprocess.run([sys.executable, "-m", "tests.template_child"], cwd=ROOT, capture_output=True,
                              input=request.encode("utf-8", "surrogatepass"), timeout=HANG_GUARD_S, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"rendering the template did not end within {HANG_GUARD_S:.0f} s")
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0 and not stderr, f"the child failed (exit {done.returncode}):\n{stderr[-3000:]}"
    return json.loads(done.stdout.decode("utf-8").splitlines()[-1])
