"""The ASGI app: OpenAI's `/v1/models`, `/v1/chat/completions` and `/v1/completions` (streamed as
server-sent events or whole), plus a vLLM-style `/tokenize` that counts a chat's prompt tokens.

Every answer is a job handed to `submit`, which runs it on the one engine thread: requests queue behind
each other and behind an answer the window is writing. Nothing here knows whether that thread is the
window's or a headless one.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.server.answer import NO_MODEL, Answer, Piece
from app.server.engine_queue import Submit
from app.server.listener import PURPOSE
from app.server.openai_wire import ApiError, ApiRequest, Reply, parse_chat, parse_completion
from engine import network_log
from engine.types import Chunk, EngineError, GenerationParams, Message

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000  # ~250k tokens of text: far more than the model's context


@dataclass(frozen=True)
class ServedModel:
    """The model the server answers with, as `/v1/models` lists it."""

    id: str
    n_ctx: int
    chat_format: str = ""


@dataclass
class ServerHooks:
    """What the server needs from its host (the window, or `tinychat serve`)."""

    submit: Submit  # run a job on the engine thread, after the ones before it
    model: Callable[[], ServedModel | None]  # None: no model is loaded (yet)
    defaults: Callable[[], GenerationParams] = GenerationParams  # the user's sampling settings
    on_busy: Callable[[int], None] | None = None  # requests in progress, after each change
    on_answer: Callable[[tuple[Message, ...], str, Chunk], None] | None = None  # a finished answer (to store it)
    api_key: str = ""  # when set, requests must carry `Authorization: Bearer <key>`
    max_body_bytes: int = MAX_BODY_BYTES


def _json_text(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    log.info("refused %s: %d %s", _request.url.path, exc.status, exc.message)
    return _error(exc)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "No such endpoint. This server offers /v1/models, /v1/chat/completions and /v1/completions." \
        if exc.status_code == 404 else str(exc.detail)
    return _error(ApiError(exc.status_code, message, code="not_found" if exc.status_code == 404 else None))


async def _watch_disconnect(request: Request, answer: Answer) -> None:
    """Cancel the answer when the client goes away before its response has started."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    answer.cancel.set()


class Api:
    """The routes, bound to one host's hooks."""

    def __init__(self, hooks: ServerHooks) -> None:
        self.hooks = hooks
        self.busy = 0

    def _busy(self, step: int) -> None:
        self.busy += step
        if self.hooks.on_busy is not None:
            self.hooks.on_busy(self.busy)

    # --------------------------------------------------------------- request
    def _authorize(self, request: Request) -> None:
        key = self.hooks.api_key
        if not key:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {key}".encode()):
            raise ApiError(401, "This server needs an API key: send it as 'Authorization: Bearer <key>'.",
                           code="invalid_api_key")

    async def _json(self, request: Request) -> object:
        limit = self.hooks.max_body_bytes
        too_big = ApiError(413, f"The request body is larger than this server accepts ({limit} bytes).",
                           code="request_too_large")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise too_big
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > limit:
                raise too_big
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as e:
            raise ApiError(400, f"The request body is not valid JSON ({e}).", code="invalid_json") from e

    def _served(self) -> ServedModel:
        served = self.hooks.model()
        if served is None:
            raise ApiError(503, NO_MODEL, type_="server_error", code="model_not_loaded")
        return served

    @staticmethod
    def _check_model(name: str | None, served: ServedModel) -> None:
        if name is not None and name != served.id:
            raise ApiError(404, f"The model '{name}' does not exist here. This server runs '{served.id}' "
                                "(see GET /v1/models).", param="model", code="model_not_found")

    # ---------------------------------------------------------------- routes
    async def models(self, request: Request) -> Response:
        self._authorize(request)
        served = self.hooks.model()
        data = [self._model_object(served)] if served else []
        return JSONResponse({"object": "list", "data": data})

    async def model(self, request: Request) -> Response:
        self._authorize(request)
        served = self._served()
        self._check_model(request.path_params["model"], served)
        return JSONResponse(self._model_object(served))

    @staticmethod
    def _model_object(served: ServedModel) -> dict[str, Any]:
        return {"id": served.id, "object": "model", "created": 0, "owned_by": "tinychat",
                "max_model_len": served.n_ctx, "chat_format": served.chat_format}

    async def tokenize(self, request: Request) -> Response:
        """vLLM's shape: {"model", "messages"} → {"count", "max_model_len"} (the prompt's tokens, the
        generation prompt included). Lets a remote TinyChat fit a chat to this model's context."""
        self._authorize(request)
        served = self._served()
        body = await self._json(request)
        req = parse_chat(body, self.hooks.defaults(), served.n_ctx)
        self._check_model(req.model, served)
        loop = asyncio.get_running_loop()
        counted: asyncio.Future[int] = loop.create_future()

        def count(engine: Any) -> None:
            try:
                if engine is None:
                    raise EngineError(NO_MODEL)
                n = engine.count_tokens(req.messages)
                loop.call_soon_threadsafe(counted.set_result, n)
            except Exception as e:
                loop.call_soon_threadsafe(counted.set_exception, e)

        self.hooks.submit(count)
        try:
            n = await counted
        except Exception as e:
            raise ApiError(503, getattr(e, "message", "The tokens could not be counted."), "server_error") from e
        return JSONResponse({"count": n, "max_model_len": served.n_ctx})

    async def chat(self, request: Request) -> Response:
        return await self._complete(request, chat=True)

    async def completions(self, request: Request) -> Response:
        return await self._complete(request, chat=False)

    async def _complete(self, request: Request, chat: bool) -> Response:
        self._authorize(request)
        served = self._served()
        body = await self._json(request)
        defaults = replace(self.hooks.defaults(), forget_oldest=True)  # clients resend the whole chat each time
        req = (parse_chat if chat else parse_completion)(body, defaults, served.n_ctx)
        self._check_model(req.model, served)
        # Busy from the moment it is queued until the engine is done with it, whatever the client does.
        answer = Answer(req.messages, req.params, served.n_ctx, asyncio.get_running_loop(),
                        on_end=lambda: self._busy(-1))
        t0 = time.perf_counter()
        watcher = asyncio.ensure_future(_watch_disconnect(request, answer))
        try:
            self._busy(+1)
            self.hooks.submit(answer.run)
            pieces = answer.pieces()
            first = await anext(pieces)
            if first.refused is not None:
                overflow = first.status == 400
                raise ApiError(first.status, first.refused, "invalid_request_error" if overflow else "server_error",
                               param="messages" if overflow else None,
                               code="context_length_exceeded" if overflow else "model_not_loaded")
            reply = Reply.new(served.id, chat)
            if not req.stream:
                return await self._whole(req, reply, first, pieces, t0)
            watcher.cancel()  # from here on sse-starlette watches the connection
            return EventSourceResponse(self._stream(req, reply, first, pieces, answer, t0), sep="\n", ping=15)
        except asyncio.CancelledError:
            answer.cancel.set()
            raise
        finally:
            watcher.cancel()

    async def _whole(self, req: ApiRequest, reply: Reply, first: Piece, pieces: AsyncIterator[Piece],
                     t0: float) -> Response:
        parts = [first.text]
        final = first.final
        async for piece in pieces:
            parts.append(piece.text)
            final = piece.final or final
        assert final is not None
        text = "".join(parts)
        self._finished(req, text, final, t0)
        if final.finish_reason == "error" and not text:
            raise ApiError(500, final.error or "The model could not answer.", "server_error")
        return JSONResponse(reply.whole(text, final.finish_reason or "stop", final.stats))

    async def _stream(self, req: ApiRequest, reply: Reply, first: Piece, pieces: AsyncIterator[Piece],
                      answer: Answer, t0: float) -> AsyncIterator[dict[str, str]]:
        parts: list[str] = []
        final: Chunk | None = None
        try:
            yield {"data": _json_text(reply.piece("" if reply.chat else None, first=True))}
            piece: Piece | None = first
            while piece is not None:
                if piece.text:
                    parts.append(piece.text)
                    yield {"data": _json_text(reply.piece(piece.text))}
                if piece.final is not None:
                    final = piece.final
                    break
                piece = await anext(pieces, None)
            assert final is not None
            if final.finish_reason == "error" and final.error:
                yield {"data": _json_text(ApiError(500, final.error, "server_error").body())}
            else:
                yield {"data": _json_text(reply.piece(None, final.finish_reason or "stop"))}
                if req.include_usage:
                    yield {"data": _json_text(reply.usage_piece(final.stats))}
            yield {"data": "[DONE]"}
            self._finished(req, "".join(parts), final, t0)
        finally:
            answer.cancel.set()  # a no-op once the answer is complete; stops the engine if the client left
            if final is None:
                log.info("client left during a streamed answer after %.2f s", time.perf_counter() - t0)

    def _finished(self, req: ApiRequest, text: str, final: Chunk, t0: float) -> None:
        s = final.stats
        log.info("answered %d messages: %s, %d+%d tokens (%d reused) in %.2f s", len(req.messages),
                 final.finish_reason, s.prompt_tokens if s else 0, s.completion_tokens if s else 0,
                 s.reused_tokens if s else 0, time.perf_counter() - t0)
        if self.hooks.on_answer is not None and final.finish_reason in ("stop", "length"):
            try:
                self.hooks.on_answer(req.messages, text, final)
            except Exception:  # storing is a convenience: never fail the answer for it
                log.exception("could not store the API conversation")


class _NetworkLogged:
    """Each request enters the network log (Help ▸ Network…) with its client's address and its path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host, port = scope.get("client") or ("?", None)
            with network_log.purpose(PURPOSE, f"{scope['method']} {scope['path']}"):
                network_log.record_request(str(host), port)
        await self.app(scope, receive, send)


def create_app(hooks: ServerHooks) -> Starlette:
    """The ASGI application for `hooks`."""
    api = Api(hooks)
    routes = [
        Route("/v1/models", api.models, methods=["GET"]),
        Route("/v1/models/{model:path}", api.model, methods=["GET"]),
        Route("/v1/chat/completions", api.chat, methods=["POST"]),
        Route("/v1/completions", api.completions, methods=["POST"]),
        Route("/tokenize", api.tokenize, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={ApiError: _api_error, HTTPException: _http_error},
                    middleware=[Middleware(_NetworkLogged)])
    app.state.api = api
    return app
