"""uvicorn serving the API on a socket we bind ourselves: a taken port becomes a sentence for the user
instead of uvicorn's `sys.exit`, and port 0 picks a free one. Runs in the foreground (`tinychat serve`)
or on a thread of its own (the window's switch, benchmarks). Binding is logged as the local API server's
network use, and airplane mode refuses any interface but this computer's own."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading

import uvicorn
from starlette.types import ASGIApp

from engine import network_log

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
GRACE_S = 3  # open streams get this long to finish when the server stops
PURPOSE = "Local API server"  # its listening and its requests, in the network log


class ListenError(Exception):
    """The server could not listen; `message` says what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_loopback(host: str) -> bool:
    """True when only this computer can reach `host`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with network_log.purpose(PURPOSE):
            sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        if network_log.refusal_in(e) is not None:
            raise ListenError(f"Airplane mode is on, so TinyChat listens only on this computer, not on {host}. "
                              "Switch airplane mode off in Settings, or listen on 127.0.0.1.") from e
        if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise ListenError(f"Port {port} is already in use by another program. Choose another port.") from e
        raise ListenError(f"TinyChat could not listen on {host}:{port} ({e.strerror or e}).") from e
    return sock


def base_url(sock: socket.socket) -> str:
    """The `/v1` address clients use for this socket."""
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


def _server(app: ASGIApp) -> uvicorn.Server:
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=GRACE_S)
    return uvicorn.Server(config)


def serve_forever(app: ASGIApp, sock: socket.socket) -> None:
    """Serve in the foreground until Ctrl+C or SIGTERM (uvicorn handles both gracefully)."""
    _server(app).run(sockets=[sock])


class ListenerThread:
    """The API on a background thread, for a host that has its own main loop (the window)."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self._sock = bind(host, port)
        self.url = base_url(self._sock)
        self._server = _server(app)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="api-server", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = GRACE_S + 2) -> None:
        """Stop listening and let open answers end; returns once the thread has."""
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()
