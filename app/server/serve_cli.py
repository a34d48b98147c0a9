"""`tinychat serve`: the model as an OpenAI-compatible HTTP API, without the window.

Listens on 127.0.0.1 unless told otherwise, and on another interface only with an API key. Uses the
same settings (model, chat format, sampling, threads) and the same engine as the window. Conversations
are not kept unless `--store` is given. Problems print one line saying what to do and exit non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from app.core import paths
from app.core.logging_setup import setup_logging
from app.core.model_choice import choose_model, model_from_path
from app.core.settings import load_settings
from app.server.api import ServedModel, ServerHooks, create_app
from app.server.archive import ApiArchive
from app.server.engine_queue import EngineQueue
from app.server.listener import LOOPBACK, ListenError, base_url, bind, is_loopback, serve_forever
from engine import network_log
from engine.select import create_engine
from engine.types import EngineError, LoadOptions

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080
KEY_ENV = "TINYCHAT_API_KEY"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand to the app's command line; it runs `run`."""
    p = commands.add_parser("serve", help="serve the model as an OpenAI-compatible API on this computer",
                            description="Serve the model as an OpenAI-compatible API on this computer.")
    p.add_argument("--model", metavar="PATH", help="a GGUF file (default: the model chosen in TinyChat)")
    p.add_argument("--name", help="the model's name in the API (default: the model's id)")
    p.add_argument("--host", default=LOOPBACK, help="interface to listen on (default: 127.0.0.1, this computer "
                                                    "only; any other needs an API key)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    p.add_argument("--api-key", help=f"require this key as a Bearer token (or set ${KEY_ENV})")
    p.add_argument("--threads", type=int, help="CPU threads (default: the setting, else physical cores)")
    p.add_argument("--store", action="store_true", help="keep each API conversation in TinyChat's history")
    p.set_defaults(run=run)


def _fail(message: str, code: int = 1) -> int:
    print(f"tinychat serve: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Run the parsed `serve` command until Ctrl+C; returns the exit code."""
    setup_logging()
    logging.getLogger("app.server").addHandler(logging.StreamHandler(sys.stderr))  # requests, as they come
    api_key = args.api_key or os.environ.get(KEY_ENV, "")
    if not is_loopback(args.host) and not api_key:
        return _fail(f"listening on {args.host} lets other computers use the model: set an API key with "
                     f"--api-key or ${KEY_ENV}.", 2)
    settings, warnings = load_settings(paths.settings_path())
    for w in warnings:
        log.warning("%s", w)
    network_log.set_airplane(settings.airplane_mode)  # the window's switch holds here too
    if args.model:
        model, reason = model_from_path(Path(args.model).expanduser()), ""
    else:
        model, reason = choose_model(settings)
    if model is None:
        return _fail(reason.replace("from the Model menu", "in TinyChat, or pass --model PATH"))
    try:
        sock = bind(args.host, args.port)
    except ListenError as e:
        return _fail(e.message)
    engine = create_engine(model.engine)
    try:
        report = engine.load(model, LoadOptions(n_ctx=model.n_ctx, n_threads=args.threads or settings.n_threads,
                                                chat_format=settings.chat_format))
    except EngineError as e:
        log.info("load failed: %s", e.detail)
        sock.close()
        return _fail(e.message)
    served = ServedModel(args.name or model.model_id, report.n_ctx, report.chat_format)
    queue = EngineQueue(engine)
    archive = ApiArchive(paths.db_path()) if args.store else None
    hooks = ServerHooks(submit=queue.submit, model=lambda: served, defaults=settings.generation_params,
                        on_answer=archive, api_key=api_key)
    print(f"TinyChat is serving {served.id} at {base_url(sock)} (Ctrl+C stops it)", flush=True)
    try:
        serve_forever(create_app(hooks), sock)
    finally:
        queue.close()
        if archive is not None:
            archive.close()
    return 0
