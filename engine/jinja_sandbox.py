"""The Jinja sandbox a model's own chat template runs in.

A chat template read from a GGUF file is untrusted data. It runs in the sandbox Hugging Face uses
for chat templates (an immutable `SandboxedEnvironment` with `loopcontrols`, `raise_exception`,
`strftime_now` and a `tojson` that leaves characters alone), made stricter: touching an unsafe
attribute is an error at once instead of a silent undefined, and calls and `range` loops stop at a
deadline. Every failure becomes an `EngineError` with a plain sentence.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from jinja2 import Template, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from engine.types import EngineError

log = logging.getLogger(__name__)

TEMPLATE_TIME_LIMIT_S = 2.0  # a template is data from a file: it may not spin forever
MAX_TEMPLATE_OUTPUT = 16 * 1024 * 1024  # characters
_deadline: ContextVar[float] = ContextVar("chat_template_deadline", default=float("inf"))


class _TemplateTimeout(TemplateError):
    """The template ran past its time or output budget."""


class _TemplateRaised(TemplateError):
    """The template called raise_exception(message)."""


def _check_deadline() -> None:
    if time.monotonic() > _deadline.get():
        raise _TemplateTimeout("the template took too long")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox HF uses for chat templates, stricter: touching an unsafe attribute is an error
    at once (not a silent undefined), and loops and calls stop at a deadline."""

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
    raise _TemplateRaised(message)


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False,
            sort_keys: bool = False) -> str:
    # As transformers does: jinja2's own tojson escapes <, > and & for HTML, which changes prompts.
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def compile_template(source: str) -> Template:
    """`source` compiled in the sandbox; raises `EngineError` (with the line) if it does not compile."""
    env = _Sandbox(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals.update(range=_bounded_range, raise_exception=_raise_exception, strftime_now=_strftime_now)
    env.filters["tojson"] = _tojson
    try:
        return env.from_string(source)
    except TemplateError as exc:
        line = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        log.warning("GGUF chat template does not compile: %s", exc)
        raise EngineError(
            f"The chat template stored in this model file is broken{line}. "
            "Choose another chat format (chatml, llama-2 or zephyr) in Settings.",
            detail=str(exc),
        ) from exc


def render_template(template: Template, context: dict[str, Any]) -> str:
    """`template` rendered with `context` within TEMPLATE_TIME_LIMIT_S and MAX_TEMPLATE_OUTPUT;
    any failure is an `EngineError` saying what went wrong and what to choose instead."""
    token = _deadline.set(time.monotonic() + TEMPLATE_TIME_LIMIT_S)
    try:
        chunks: list[str] = []
        size = 0
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > MAX_TEMPLATE_OUTPUT:
                raise _TemplateTimeout("the template produced an unreasonably long prompt")
            chunks.append(chunk)
        return "".join(chunks)
    except _TemplateRaised as exc:
        raise EngineError(
            f"The model's chat template rejected this conversation: {exc.message} "
            "Choose another chat format in Settings.",
            detail=str(exc),
        ) from exc
    except _TemplateTimeout as exc:
        log.warning("GGUF chat template stopped: %s", exc)
        raise EngineError(
            "The chat template stored in this model file runs away (too slow, or an endless prompt) "
            "and was stopped. Choose another chat format (chatml, llama-2 or zephyr) in Settings.",
            detail=str(exc),
        ) from exc
    except SecurityError as exc:
        log.warning("GGUF chat template tried to leave its sandbox: %s", exc)
        raise EngineError(
            "The chat template stored in this model file tried to do something unsafe and was stopped. "
            "Choose another chat format (chatml, llama-2 or zephyr) in Settings.",
            detail=str(exc),
        ) from exc
    except Exception as exc:  # a template is untrusted data: any failure is a bad template, not a crash
        log.warning("GGUF chat template failed: %r", exc)
        raise EngineError(
            "The chat template stored in this model file failed on this conversation. "
            "Choose another chat format (chatml, llama-2 or zephyr) in Settings.",
            detail=repr(exc),
        ) from exc
    finally:
        _deadline.reset(token)


__all__ = ["MAX_TEMPLATE_OUTPUT", "TEMPLATE_TIME_LIMIT_S", "compile_template", "render_template"]
