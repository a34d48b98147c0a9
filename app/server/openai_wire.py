"""The OpenAI wire format: request bodies → engine messages and parameters, answers → response objects,
and errors in OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from engine.types import GenerationParams, GenerationStats, Message

MAX_STOP_STRINGS = 4  # as OpenAI's API
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
FINISH = {"stop": "stop", "length": "length", "cancelled": "stop", "error": "stop"}


class ApiError(Exception):
    """A request the server refuses, with its HTTP status and OpenAI error fields."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI clients parse into their error classes."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ApiRequest:
    """One completion request, parsed: what to generate and how to send it back."""

    model: str | None
    messages: tuple[Message, ...]
    params: GenerationParams
    stream: bool
    include_usage: bool


def _bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param)


def _number(body: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise _bad(f"'{key}' must be a number from {lo:g} to {hi:g}.", key)
    return float(value)


def _integer(body: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(f"'{key}' must be a whole number from {lo} to {hi}.", key)
    return value


def _stop(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or len(stops) > MAX_STOP_STRINGS or \
            not all(isinstance(s, str) and s for s in stops):
        raise _bad(f"'stop' must be a string or a list of up to {MAX_STOP_STRINGS} non-empty strings.", "stop")
    return tuple(stops)


def _params(body: dict[str, Any], defaults: GenerationParams, n_ctx: int) -> GenerationParams:
    if body.get("n", 1) != 1:
        raise _bad("This server generates one choice per request: 'n' must be 1.", "n")
    max_tokens = _integer(body, "max_completion_tokens", 1, n_ctx)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1, n_ctx)
    values: dict[str, Any] = {
        "temperature": _number(body, "temperature", 0.0, 2.0), "top_p": _number(body, "top_p", 0.0, 1.0),
        "max_tokens": max_tokens, "seed": _integer(body, "seed", -(2**63), 2**63 - 1),
    }
    params = replace(defaults, **{k: v for k, v in values.items() if v is not None}, stop=_stop(body.get("stop")))
    if params.seed is not None:
        params = replace(params, seed=params.seed % 2**31)  # llama.cpp takes a 32-bit seed
    return params


def _content(value: object, index: int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: only text ones can be read by this model
        texts = [p.get("text") for p in value if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) == len(value) and all(isinstance(t, str) for t in texts):
            return "".join(texts)  # type: ignore[arg-type]
    raise _bad(f"messages[{index}].content must be text: this model reads no images, audio or files.",
               f"messages[{index}].content")


def _messages(value: object) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise _bad("'messages' must be a non-empty list.", "messages")
    out = []
    for i, m in enumerate(value):
        role = ROLES.get(m.get("role")) if isinstance(m, dict) else None
        if role is None:
            raise _bad(f"messages[{i}].role must be one of {', '.join(ROLES)}: this server runs no tools.",
                       f"messages[{i}].role")
        out.append(Message(role, _content(m.get("content"), i)))  # type: ignore[arg-type]
    if not any(m.role == "user" for m in out):
        raise _bad("'messages' must include at least one user message.", "messages")
    return tuple(out)


def _common(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _bad("'model' must be a string.", "model")
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return {"model": model, "stream": body.get("stream") is True, "include_usage": include_usage}


def parse_chat(body: object, defaults: GenerationParams, n_ctx: int) -> ApiRequest:
    """A `/v1/chat/completions` body; raises ApiError (400) for anything this server cannot honour."""
    common = _common(body)
    assert isinstance(body, dict)
    return ApiRequest(messages=_messages(body.get("messages")), params=_params(body, defaults, n_ctx), **common)


def parse_completion(body: object, defaults: GenerationParams, n_ctx: int) -> ApiRequest:
    """A `/v1/completions` body. The model is a chat model, so the prompt is answered as one user
    message in its chat format (the same prompt the window would build)."""
    common = _common(body)
    assert isinstance(body, dict)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise _bad("'prompt' must be one non-empty string.", "prompt")
    return ApiRequest(messages=(Message("user", prompt),), params=_params(body, defaults, n_ctx), **common)


def usage(stats: GenerationStats | None) -> dict[str, Any]:
    """OpenAI's `usage`, with the tokens found already evaluated in the KV cache as `cached_tokens`."""
    prompt = stats.prompt_tokens if stats else 0
    completion = stats.completion_tokens if stats else 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": stats.reused_tokens if stats else 0}}


@dataclass(frozen=True)
class Reply:
    """Builds the response objects of one request (ids and timestamps shared by all its chunks)."""

    model: str
    chat: bool
    id: str = ""
    created: int = 0

    @classmethod
    def new(cls, model: str, chat: bool) -> Reply:
        return cls(model, chat, ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex, int(time.time()))

    def _envelope(self, choices: list[dict[str, Any]], chunk: bool) -> dict[str, Any]:
        kind = ("chat.completion" if self.chat else "text_completion") + (".chunk" if chunk and self.chat else "")
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model, "choices": choices}

    def whole(self, text: str, finish: str, stats: GenerationStats | None) -> dict[str, Any]:
        """The non-streaming response."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": FINISH.get(finish, "stop"), "logprobs": None}
        if self.chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return {**self._envelope([choice], chunk=False), "usage": usage(stats)}

    def piece(self, text: str | None, finish: str | None = None, first: bool = False) -> dict[str, Any]:
        """One streamed chunk: text (the first one also names the role), or the finish reason."""
        choice: dict[str, Any] = {"index": 0, "finish_reason": FINISH.get(finish, "stop") if finish else None,
                                  "logprobs": None}
        if self.chat:
            delta: dict[str, Any] = {"role": "assistant"} if first else {}
            if text is not None:
                delta["content"] = text
            choice["delta"] = delta
        else:
            choice["text"] = text or ""
        return self._envelope([choice], chunk=True)

    def usage_piece(self, stats: GenerationStats | None) -> dict[str, Any]:
        """The last streamed chunk when `stream_options.include_usage` was asked for."""
        return {**self._envelope([], chunk=True), "usage": usage(stats)}
