"""The Jinja sandbox a model's own chat template runs in (inside the child of engine/chat_template.py).

It is the sandbox Hugging Face uses for chat templates (an immutable `SandboxedEnvironment` with
`loopcontrols`, `raise_exception`, `strftime_now` and a `tojson` that leaves characters alone),
made stricter: touching an unsafe attribute is an error at once instead of a silent undefined, and
calls and `range` loops stop at a deadline. Those checks name the common failures precisely; the
limits that hold for *every* construct (memory, CPU time, wall clock) are the child process's.
Failures are `SandboxFault`s with a kind; the parent turns them into sentences.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import Any, ClassVar

import jinja2
from jinja2 import Template, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

# What went wrong, for the parent to phrase: the template does not compile (BROKEN), called
# raise_exception (REJECTED), ran past its time, output or memory (RUNAWAY), touched something unsafe
# (UNSAFE), or failed in any other way on this conversation (FAILED).
BROKEN, REJECTED, RUNAWAY, UNSAFE, FAILED = "broken", "rejected", "runaway", "unsafe", "failed"
_deadline: ContextVar[float] = ContextVar("chat_template_deadline", default=float("inf"))


class SandboxFault(Exception):
    """Why a template could not be compiled or rendered: `kind` is one of the kinds above, `detail`
    is for the log, `line` the template line (BROKEN), `said` the raise_exception text (REJECTED)."""

    def __init__(self, kind: str, detail: str, line: int | None = None, said: str | None = None) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.line, self.said = kind, detail, line, said


class _Raised(Exception):
    """The template called raise_exception(message)."""


def _check_deadline() -> None:
    if time.monotonic() > _deadline.get():
        raise SandboxFault(RUNAWAY, "the template took too long")


class GenerationTag(Extension):
    """llama-cpp-python's and transformers' pass-through for `{% generation %}…{% endgeneration %}`
    (it marks the assistant's part for training; rendering just keeps the text)."""

    tags: ClassVar[set[str]] = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> list[jinja2.nodes.Node]:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox HF uses for chat templates, stricter: touching an unsafe attribute is an error
    at once (not a silent undefined), and calls stop at the deadline."""

    # Jinja evaluates constant expressions while it compiles; these operators can turn a few
    # characters into gigabytes or minutes (`'a' * 10**10`, `9 ** (9 ** 9)`), so they always wait
    # for the render, where the deadline applies.
    intercepted_binops = frozenset({"*", "**", "%"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe.")

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        return super().call(context, obj, *args, **kwargs)


def _bounded_range(*args: int) -> Iterator[int]:
    for i in safe_range(*args):
        _check_deadline()
        yield i


def _raise_exception(message: str) -> None:
    raise _Raised(str(message))


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False,
            sort_keys: bool = False) -> str:
    # As transformers does: jinja2's own tojson escapes <, > and & for HTML, which changes prompts.
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def compile_template(source: str) -> Template:
    """`source` compiled in the sandbox; raises `SandboxFault` if it does not compile."""
    env = _Sandbox(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, GenerationTag])
    env.globals.update(range=_bounded_range, raise_exception=_raise_exception, strftime_now=_strftime_now)
    env.filters["tojson"] = _tojson
    try:
        return env.from_string(source)
    except TemplateError as exc:
        raise SandboxFault(BROKEN, str(exc), line=getattr(exc, "lineno", None)) from exc
    except MemoryError as exc:
        raise SandboxFault(RUNAWAY, "compiling the template ran out of memory") from exc
    except Exception as exc:  # too deeply nested for the parser or for Python's own compiler
        raise SandboxFault(BROKEN, repr(exc)) from exc


def render_template(template: Template, context: dict[str, Any], deadline: float, max_output: int) -> str:
    """`template` rendered with `context`, stopped at `deadline` (time.monotonic) or past
    `max_output` characters; raises `SandboxFault` for any failure."""
    token = _deadline.set(deadline)
    try:
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > max_output:
                raise SandboxFault(RUNAWAY, "the template produced an unreasonably long prompt")
            chunks.append(chunk)
        return "".join(chunks)
    except SandboxFault:
        raise
    except _Raised as exc:
        raise SandboxFault(REJECTED, str(exc), said=str(exc)) from exc
    except MemoryError as exc:
        raise SandboxFault(RUNAWAY, "the template ran out of memory") from exc
    except SecurityError as exc:
        raise SandboxFault(UNSAFE, str(exc)) from exc
    except Exception as exc:  # a template is untrusted data: any failure is a bad template, not a crash
        raise SandboxFault(FAILED, repr(exc)) from exc
    finally:
        _deadline.reset(token)


__all__ = ["BROKEN", "FAILED", "REJECTED", "RUNAWAY", "UNSAFE", "SandboxFault", "compile_template",
           "render_template"]
