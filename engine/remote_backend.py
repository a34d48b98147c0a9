"""The remote engine: an OpenAI-compatible server (vLLM, llama.cpp's server, Ollama, another TinyChat)
answers instead of a model on this computer. The user chooses it, with its address, in Settings.

It implements the same Engine contract: answers stream in chunks, Stop cuts the connection at once, the
chat is fitted to the server's context the same way, and token counts come from the server's `usage`
where it reports them. The server applies its own chat format, and it neither reports the ids it
generated nor which prompt tokens it found cached, so answers are re-sent as text.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.context import Fit, fit_prompt
from engine.remote_http import Connection, HttpError, events, request_json, unreachable
from engine.types import (
    Chunk,
    ContextOverflowError,
    EngineError,
    GenerationParams,
    GenerationStats,
    LoadOptions,
    LoadReport,
    Message,
    ModelFileError,
    ModelInfo,
    RemoteServer,
)

log = logging.getLogger(__name__)

SERVER_FORMAT = "server"  # the chat format is the server's own
FORMAT_NOTE = "The server applies its own chat format; choose the format on the server."


def remote_model(url: str, model: str = "", api_key: str = "") -> ModelInfo:
    """The ModelInfo for `model` on the server at `url` (empty: the first model the server lists)."""
    host = urlsplit(url).netloc or url
    return ModelInfo(path=Path(), engine="remote", model_id=model, chat_format=SERVER_FORMAT,
                     label=f"{model} at {host}" if model else f"the model at {host}",
                     server=RemoteServer(url.rstrip("/"), api_key))


class RemoteEngine:
    """Engine protocol implementation that sends each answer to an OpenAI-compatible server."""

    name = "remote"

    def __init__(self) -> None:
        self._server: RemoteServer | None = None
        self._model = ""
        self._n_ctx = 0
        self._format = ""
        self._tokenize: bool | None = None  # does the server count a chat's tokens (/tokenize)?

    # ----------------------------------------------------------------- loading
    def load(self, model: ModelInfo, options: LoadOptions) -> LoadReport:
        """Ask the server which models it has; raises EngineError (unreachable, refused) or
        ModelFileError (the server has no such model) with a plain sentence."""
        self.unload()
        if model.server is None:
            raise EngineError("No server address is set. Enter one in Settings → Server.")
        t0 = time.perf_counter()
        try:
            listed = request_json(model.server, "GET", "/models")
        except HttpError as e:
            if e.status in (401, 403):
                raise EngineError("The server refused TinyChat's API key. Check the key in Settings → Server.",
                                  detail=e.message) from e
            raise EngineError(f"The server could not list its models ({e.message}).", detail=e.detail) from e
        entries = [m for m in listed.get("data", []) if isinstance(m, dict)] if isinstance(listed, dict) else []
        names = [str(m.get("id")) for m in entries]
        wanted = model.model_id or (names[0] if names else "")
        if wanted not in names:
            offered = ", ".join(names) or "none"
            raise ModelFileError(f"The model “{wanted}” was not found on the server. It offers: {offered}.",
                                 detail=str(listed)[:300])
        entry = entries[names.index(wanted)]
        self._server, self._model = model.server, wanted
        self._n_ctx = int(entry.get("max_model_len") or entry.get("context_length") or options.n_ctx)
        self._format = str(entry.get("chat_format") or SERVER_FORMAT)
        warnings = (FORMAT_NOTE,) if options.chat_format else ()
        log.info("using %s on %s (context %d)", wanted, urlsplit(model.server.url).netloc, self._n_ctx)
        return LoadReport(chat_format=self._format, n_ctx=self._n_ctx, n_vocab=0, n_threads=0,
                          load_s=time.perf_counter() - t0, warnings=warnings,
                          metadata={"server": model.server.url, "model": wanted})

    def unload(self) -> None:
        """Forget the server (nothing runs on this computer)."""
        self._server, self._model, self._n_ctx, self._format, self._tokenize = None, "", 0, "", None

    @property
    def loaded(self) -> bool:
        return self._server is not None

    @property
    def chat_format(self) -> str:
        return self._format

    def set_chat_format(self, name: str) -> tuple[str, ...]:
        """The server chooses the format: nothing changes here, and the warning says so."""
        return (FORMAT_NOTE,)

    def _require(self) -> RemoteServer:
        if self._server is None:
            raise EngineError("No server is connected. Choose one in Settings → Server.")
        return self._server

    # ---------------------------------------------------------------- counting
    def count_tokens(self, messages: Sequence[Message]) -> int:
        """The prompt's tokens as the server counts them: its `/tokenize` (vLLM, TinyChat) if it has one,
        else the `usage` of a one-token answer (any server; a prompt over its context counts as n_ctx + 1)."""
        server = self._require()
        body = {"model": self._model, "messages": _wire(messages)}
        if self._tokenize is not False:
            try:
                count = request_json(server, "POST", _root_path(server) + "/tokenize", body, absolute=True).get("count")
                if isinstance(count, int):
                    self._tokenize = True
                    return count
            except HttpError as e:
                if e.status not in (404, 405):
                    raise
            self._tokenize = False
        try:
            reply = request_json(server, "POST", "/chat/completions", {**body, "max_tokens": 1, "temperature": 0})
        except HttpError as e:
            if e.status == 400:  # too long for the server's context: more than fits is all that matters here
                return self._n_ctx + 1
            raise
        return int(reply.get("usage", {}).get("prompt_tokens", 0))

    # -------------------------------------------------------------- generating
    def generate(self, messages: Sequence[Message], params: GenerationParams,
                 cancel: threading.Event) -> Iterator[Chunk]:
        """Stream an answer from the server; see Engine.generate. Never raises for runtime problems."""
        t0 = time.perf_counter()
        try:
            server = self._require()
            fit, max_new = fit_prompt(messages, self.count_tokens, self._n_ctx, params.max_tokens,
                                      params.forget_oldest)
        except (ContextOverflowError, EngineError) as e:
            log.warning("generate refused: %s (%s)", e.message, e.detail)
            yield Chunk("", "error", _stats(t0, None, {}, ()), error=e.message)
            return
        body: dict[str, Any] = {
            "model": self._model, "messages": _wire([messages[i] for i in fit.kept]), "stream": True,
            "stream_options": {"include_usage": True}, "max_tokens": max_new, "temperature": params.temperature,
            "top_p": params.top_p}
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        yield from self._stream(server, body, cancel, t0, fit)

    def _stream(self, server: RemoteServer, body: dict[str, Any], cancel: threading.Event, t0: float,
                fit: Fit) -> Iterator[Chunk]:
        t_first: float | None = None
        pieces = 0
        usage: dict[str, Any] = {}
        finish, error = "stop", None
        conn: Connection | None = None
        done = threading.Event()
        try:
            conn = Connection(server, "POST", "/chat/completions", body)
            done = conn.cut_on(cancel)
            for event in events(conn.response()):
                if cancel.is_set():
                    break
                if "error" in event:
                    finish, error = "error", _said(event["error"])
                    break
                usage = event.get("usage") or usage
                for choice in event.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                    if text:
                        t_first = t_first or time.perf_counter()
                        pieces += 1
                        yield Chunk(text)
                    if choice.get("finish_reason"):
                        finish = "length" if choice["finish_reason"] == "length" else "stop"
        except HttpError as e:
            finish, error = "error", f"The server could not answer: {e.message}"
        except (OSError, http.client.HTTPException, ValueError, EngineError) as e:
            if not cancel.is_set():
                err = e if isinstance(e, EngineError) else unreachable(server, e)
                log.warning("remote generation failed: %s", err.detail)
                finish, error = "error", "The connection to the server was lost before the answer ended. Try again."
        finally:
            done.set()
            if conn is not None:
                conn.close()
        if cancel.is_set():
            finish, error = "cancelled", None
        # A server that reports no usage in streams (llama-cpp-python's): the prompt is what was counted to
        # fit it, and each streamed piece is about one token.
        usage = {"prompt_tokens": usage.get("prompt_tokens") or fit.tokens,
                 "completion_tokens": usage.get("completion_tokens") or pieces,
                 "prompt_tokens_details": usage.get("prompt_tokens_details")}
        yield Chunk("", finish, _stats(t0, t_first, usage, fit.forgotten), error=error)  # type: ignore[arg-type]


def _root_path(server: RemoteServer) -> str:
    """The server's path without its trailing `/v1`: where vLLM's /tokenize lives."""
    path = urlsplit(server.url).path
    return path[:-3] if path.endswith("/v1") else path


def _wire(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def _said(error: object) -> str:
    message = error.get("message") if isinstance(error, dict) else error
    return f"The server stopped with an error: {message}"


def _stats(t0: float, t_first: float | None, usage: dict[str, Any], forgotten: tuple[int, ...]) -> GenerationStats:
    now = time.perf_counter()
    first = t_first or now
    completion = int(usage.get("completion_tokens") or 0)
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    gen_time = now - first
    return GenerationStats(
        prompt_tokens=prompt, reused_tokens=cached, completion_tokens=completion, ttft_s=first - t0,
        tokens_per_s=(completion - 1) / gen_time if completion > 1 and gen_time > 0 else 0.0,
        prompt_tokens_per_s=(prompt - cached) / (first - t0) if first > t0 and prompt else 0.0,
        total_s=now - t0, forgotten=forgotten)
