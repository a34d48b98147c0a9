"""Every network attempt of this process, seen through Python's audit hooks, and airplane mode.

CPython raises an audit event before each socket operation that can reach another computer
(docs.python.org, "Audit events table"): `socket.connect` (also `connect_ex`), `socket.sendto`,
`socket.sendmsg`, `socket.bind`, and the name lookups `socket.getaddrinfo`, `socket.gethostbyname`
(also `gethostbyname_ex`), `socket.gethostbyaddr` and `socket.getnameinfo`. Higher-level events
(`http.client.connect`, `urllib.Request`, `ftplib.connect`, `smtplib.connect`, …) all end in these, so
the hook watches the socket layer only: whatever Python code opens a connection — ours or a library's —
passes through it. `install()` adds the hook once per process.

Each attempt is recorded with the time, host, port and *purpose*: the feature that asked, held in a
context variable that code starting a network request sets with `purpose(...)` (threads start with
none, so anything not started by a feature is "unknown"). Our downloader adds the bytes it received
with `count_received`; bytes moved by anything else (TLS and HTTP headers, a library's own requests)
cannot be counted from here. Accepting a connection raises no audit event, so the local API server
adds each request it receives itself (`record_request`).

Airplane mode (`set_airplane(True)`) makes the hook refuse, by raising `NetworkRefused` before the
operation happens: connections and datagrams on any internet socket (this computer's own address
too, since a proxy listening there would pass the traffic on), name lookups (a DNS query is a packet),
and listening on any address but this computer's own. `allow_once()` lifts it for the code running in
its `with` block on that thread only (one download the user allowed).

What the hook cannot see: sockets opened by C or C++ code directly (llama.cpp and Qt open none in
TinyChat), child processes, and the name lookup Python does inside `connect()` when handed a host
name rather than an address (our downloader and httpx resolve with `getaddrinfo` first).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Literal

from engine.types import DownloadError

log = logging.getLogger(__name__)

Kind = Literal["connect", "send", "listen", "lookup", "request"]  # request: one received by our API server
LOOKUPS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo"}
ON_SOCKET: dict[str, Kind] = {"socket.connect": "connect", "socket.sendto": "send", "socket.sendmsg": "send",
                              "socket.bind": "listen"}
VERBS: dict[Kind, str] = {"connect": "connect to", "send": "send to", "listen": "listen on", "lookup": "look up",
                          "request": "answer"}
LOCAL_FAMILIES = {getattr(socket, name) for name in ("AF_UNIX", "AF_NETLINK") if hasattr(socket, name)}
MAX_KEPT = 2000


@dataclass(frozen=True)
class Purpose:
    """Which feature asked for the network: `feature` ("Model download") and what for (`subject`)."""

    feature: str
    subject: str = ""

    def __str__(self) -> str:
        return f"{self.feature}: {self.subject}" if self.subject else self.feature


UNKNOWN = Purpose("Unknown (no TinyChat feature asked)")


@dataclass(frozen=True)
class Attempt:
    """One network attempt. `received` is what our downloader received over it (0 when not counted)."""

    when: float  # seconds since the epoch
    kind: Kind
    host: str
    port: int | None
    purpose: Purpose
    refused: bool
    received: int = 0


class NetworkRefused(PermissionError):
    """Airplane mode refused a network operation (raised inside the socket call, before it happens)."""


class AirplaneModeOn(DownloadError):
    """A feature that needs the network was asked for while airplane mode is on."""


_purpose: ContextVar[Purpose] = ContextVar("network_purpose", default=UNKNOWN)
_allowed_once: ContextVar[bool] = ContextVar("network_allowed_once", default=False)
_airplane = False


class NetworkLog:
    """The attempts of this process, oldest first (the newest `keep`; `total` counts them all)."""

    def __init__(self, keep: int = MAX_KEPT) -> None:
        self._lock = threading.Lock()
        self._attempts: deque[Attempt] = deque(maxlen=keep)
        self._received: dict[int, int] = {}  # attempt number → bytes
        self._first = 0  # number of the oldest attempt still kept
        self.total = 0
        self.version = 0  # grows with every change; readers poll it
        self._thread = threading.local()  # the latest connection of each thread, for byte counts
        self._listeners: list[Callable[[Attempt], None]] = []

    def record(self, attempt: Attempt) -> None:
        with self._lock:
            if len(self._attempts) == self._attempts.maxlen:
                self._received.pop(self._first, None)
                self._first += 1
            self._attempts.append(attempt)
            number = self.total
            self.total += 1
            self.version += 1
            listeners = list(self._listeners)
        if attempt.kind in ("connect", "send") and not attempt.refused:
            self._thread.latest = number
        for listener in listeners:
            try:
                listener(attempt)
            except Exception:  # a broken listener must not break the connection it watches
                log.exception("network log listener failed")

    def count_received(self, n: int) -> None:
        """Add `n` bytes to this thread's latest connection."""
        number = getattr(self._thread, "latest", None)
        if number is None or n <= 0:
            return
        with self._lock:
            if number >= self._first:
                self._received[number] = self._received.get(number, 0) + n
                self.version += 1

    def attempts(self) -> tuple[Attempt, ...]:
        """A copy of the kept attempts, oldest first, with their byte counts."""
        with self._lock:
            return tuple(replace(a, received=self._received.get(self._first + i, 0))
                         for i, a in enumerate(self._attempts))

    def add_listener(self, listener: Callable[[Attempt], None]) -> None:
        """Call `listener(attempt)` after each attempt is recorded, on the thread that made it."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Attempt], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def clear(self) -> None:
        """Forget every attempt (tests start from an empty log)."""
        with self._lock:
            self._attempts.clear()
            self._received.clear()
            self._first = self.total
            self.version += 1


LOG = NetworkLog()


# --- the features' side --------------------------------------------------------------------------
@contextlib.contextmanager
def purpose(feature: str, subject: str = "") -> Iterator[Purpose]:
    """Attribute the network attempts made by this thread inside the block to `feature`."""
    p = Purpose(feature, subject)
    token = _purpose.set(p)
    try:
        yield p
    finally:
        _purpose.reset(token)


def default_purpose(feature: str, subject: str = "") -> contextlib.AbstractContextManager[object]:
    """`purpose(feature, subject)` unless a feature already set one (a download asks for metadata as its
    own first step: that request belongs to the download)."""
    return purpose(feature, subject) if _purpose.get() == UNKNOWN else contextlib.nullcontext()


def current_purpose() -> Purpose:
    return _purpose.get()


def set_airplane(on: bool) -> None:
    """Switch airplane mode for the whole process."""
    global _airplane
    if on != _airplane:
        log.info("airplane mode %s", "on" if on else "off")
    _airplane = on


def airplane() -> bool:
    return _airplane


@contextlib.contextmanager
def allow_once() -> Iterator[None]:
    """Let the code in this block (this thread only) use the network although airplane mode is on."""
    token = _allowed_once.set(True)
    try:
        yield
    finally:
        _allowed_once.reset(token)


def network_allowed() -> bool:
    """True unless airplane mode would refuse a connection made here and now."""
    return not _airplane or _allowed_once.get()


def require_network(what: str) -> None:
    """Raise `AirplaneModeOn` (a sentence naming `what`) when airplane mode refuses the network here."""
    if not network_allowed():
        raise airplane_error(what)


def airplane_error(what: str, detail: str = "") -> AirplaneModeOn:
    """The sentence a download refused by airplane mode shows."""
    return AirplaneModeOn(
        f"Airplane mode is on, so TinyChat does not connect to the internet. Downloading {what} needs a "
        "connection to the model hub: allow it for this one download, or switch airplane mode off. Anything "
        "already downloaded is kept.", detail or f"airplane mode: {what}")


def record_request(host: str, port: int | None) -> None:
    """Log a request the local API server received from `host`, under the current purpose."""
    LOG.record(Attempt(time.time(), "request", host, port, _purpose.get(), False))


def count_received(n: int) -> None:
    """Our downloader received `n` bytes on this thread's latest connection."""
    LOG.count_received(n)


def refusal_in(exc: BaseException | None) -> NetworkRefused | None:
    """The airplane-mode refusal behind `exc` (libraries wrap it in their own errors), if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, NetworkRefused):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


# --- the hook ------------------------------------------------------------------------------------
_installed = False
_last_lookup = threading.local()  # (host, port) of this thread's latest lookup, to name the connect after it


def install() -> None:
    """Watch every socket operation of this process from now on (idempotent; hooks cannot be removed)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


def _hook(event: str, args: tuple) -> None:
    if event in ON_SOCKET:
        attempt = _on_socket(ON_SOCKET[event], args)
    elif event in LOOKUPS:
        attempt = _on_lookup(event, args)
    else:
        return
    if attempt is None:
        return
    LOG.record(attempt)
    if attempt.refused:
        where = f"{attempt.host}:{attempt.port}" if attempt.port is not None else attempt.host
        raise NetworkRefused(f"Airplane mode is on: TinyChat refused to {VERBS[attempt.kind]} {where}.")


def _on_socket(kind: Kind, args: tuple) -> Attempt | None:
    try:
        sock, address = args
        if address is None or sock.family in LOCAL_FAMILIES or not isinstance(address, tuple):
            return None  # a local socket, or a send on an already-checked connection
        host, port = _text(address[0]), address[1] if len(address) > 1 and isinstance(address[1], int) else None
    except Exception:  # never let the recorder break a socket call: record what is known
        log.exception("network log: unexpected %s arguments", kind)
        host, port = "?", None
    if kind == "listen":
        refused = not network_allowed() and not is_loopback(host)
    else:
        refused = not network_allowed() and not _socketpair_calling()
        named = getattr(_last_lookup, "value", None)
        if named is not None and named[1] == port and named[0] != host:
            host = f"{named[0]} ({host})"
    return Attempt(time.time(), kind, host, port, _purpose.get(), refused)


def _on_lookup(event: str, args: tuple) -> Attempt | None:
    try:
        if event == "socket.getnameinfo":
            host, port = _text(args[0][0]), args[0][1]
        else:
            host, port = _text(args[0]), args[1] if event == "socket.getaddrinfo" else None
        port = int(port) if isinstance(port, int | str) and str(port).isdigit() else None
    except Exception:
        log.exception("network log: unexpected %s arguments", event)
        host, port = "?", None
    _last_lookup.value = (host, port)
    if _is_numeric(host) and event in ("socket.getaddrinfo", "socket.gethostbyname"):
        return None  # an address, not a name: nothing is asked of a name server
    refused = not network_allowed() and host != "localhost"
    return Attempt(time.time(), "lookup", host, port, _purpose.get(), refused)


def _text(host: object) -> str:
    if isinstance(host, bytes):
        return host.decode("ascii", "replace")
    return "" if host is None else str(host)


def _is_numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
        return True
    except ValueError:
        return host == ""


def is_loopback(host: str) -> bool:
    """True for this computer's own address ("localhost", 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _socketpair_calling() -> bool:
    """Python's own `socket.socketpair` on Windows joins two loopback sockets of this process."""
    try:
        frame = sys._getframe(3)  # _socketpair_calling ← _on_socket ← _hook ← the Python caller of connect
    except ValueError:
        return False
    return frame.f_code.co_name == "socketpair" and frame.f_code.co_filename == socket.__file__
