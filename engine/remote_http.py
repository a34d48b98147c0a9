"""HTTP for the remote engine, on the standard library: JSON requests and server-sent event streams to
an OpenAI-compatible server, each of which a `threading.Event` can cut off at once (the socket is shut
down under a blocked read, so Stop never waits for the server's next token). Each connection is logged
under the "Remote engine" purpose, and airplane mode's refusal becomes a sentence saying how to lift it."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from engine import network_log
from engine.types import EngineError, RemoteServer

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 600.0  # a busy server may queue a request for minutes
CANCEL_POLL_S = 0.02
PURPOSE = "Remote engine"  # the server the user chose, in the network log
AIRPLANE = "Airplane mode is on — switch it off in Settings to use a remote engine."


class HttpError(EngineError):
    """The server answered with an error status; `status` is it, `message` the server's own words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, detail=f"HTTP {status}")
        self.status = status


def _describe(server: RemoteServer) -> str:
    return urlsplit(server.url).netloc or server.url


def unreachable(server: RemoteServer, e: Exception) -> EngineError:
    """The sentence for a server that cannot be reached."""
    return EngineError(f"TinyChat could not reach the server at {_describe(server)}. Check the address in "
                       "Settings and that the server is running.", detail=repr(e))


class Connection:
    """One request to `server` (a `/v1` base URL); `path` is relative to it, or from the host's root
    with `absolute`."""

    def __init__(self, server: RemoteServer, method: str, path: str, body: dict[str, Any] | None = None,
                 absolute: bool = False) -> None:
        parts = urlsplit(server.url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EngineError(f"“{server.url}” is not a server address. Use one like http://192.168.1.20:8000/v1.")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.server = server
        self.conn = cls(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT_S)
        full = path if absolute else parts.path + path
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if server.api_key:
            headers["Authorization"] = f"Bearer {server.api_key}"
        data = json.dumps(body).encode() if body is not None else None
        try:
            with network_log.purpose(PURPOSE, _describe(server)):
                self.conn.request(method, full, body=data, headers=headers)
            if self.conn.sock is not None:
                self.conn.sock.settimeout(READ_TIMEOUT_S)
        except OSError as e:
            self.conn.close()
            if network_log.refusal_in(e) is not None:
                raise EngineError(AIRPLANE, detail=repr(e)) from e
            raise unreachable(server, e) from e

    def response(self) -> http.client.HTTPResponse:
        """The response once its headers arrived; raises HttpError for an error status."""
        try:
            resp = self.conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            raise unreachable(self.server, e) from e
        if resp.status >= 400:
            raw = resp.read()
            self.conn.close()
            raise HttpError(resp.status, _error_message(raw) or f"the server answered {resp.status} {resp.reason}")
        return resp

    def cut_on(self, cancel: threading.Event) -> threading.Event:
        """Shut the socket down as soon as `cancel` is set; set the returned Event when done."""
        done = threading.Event()
        sock = self.conn.sock

        def watch() -> None:
            while not done.wait(CANCEL_POLL_S):
                if cancel.is_set():
                    with contextlib.suppress(OSError):
                        if sock is not None:
                            sock.shutdown(socket.SHUT_RDWR)
                    return

        threading.Thread(target=watch, name="remote-cancel", daemon=True).start()
        return done

    def close(self) -> None:
        self.conn.close()


def _error_message(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:300]
    err = data.get("error", data.get("detail")) if isinstance(data, dict) else None
    if isinstance(err, dict):
        return str(err.get("message", ""))
    return str(err or "")


def request_json(server: RemoteServer, method: str, path: str, body: dict[str, Any] | None = None,
                 absolute: bool = False) -> Any:
    """One JSON request and its decoded answer."""
    conn = Connection(server, method, path, body, absolute)
    try:
        raw = conn.response().read()
    except (OSError, http.client.HTTPException) as e:
        raise unreachable(server, e) from e
    finally:
        conn.close()
    try:
        return json.loads(raw)
    except ValueError as e:
        raise EngineError(f"The server at {_describe(server)} did not answer like an OpenAI-compatible server.",
                          detail=raw[:300].decode("utf-8", "replace")) from e


def events(resp: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    """The JSON `data:` events of a server-sent event stream, until `[DONE]` or the end."""
    for raw in resp:
        line = raw.decode("utf-8").strip()
        if not line.startswith("data:"):
            continue  # comments (keep-alive pings), event names, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            return
        event = json.loads(data)
        if isinstance(event, dict):
            yield event
