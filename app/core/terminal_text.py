"""Text from files and databases made safe to print in a terminal.

A title in an imported file can hold escape sequences (recolouring or clearing the terminal, setting
its title), bidirectional overrides that make text read differently than it is, line breaks that forge
extra output lines, or half a UTF-16 pair that no terminal encoding accepts. Each such character is
shown as a visible escape (`\\x1b`, `\\u202e`) instead.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # C0 and C1 controls, DEL
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidirectional marks, embeddings, overrides, isolates
    "\u2028\u2029"  # line and paragraph separators
    "\ud800-\udfff]"  # lone surrogates (undecodable file names arrive as these)
)


def terminal_safe(text: str) -> str:
    """`text` with every control, bidi-override and unencodable character written as an escape."""
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
