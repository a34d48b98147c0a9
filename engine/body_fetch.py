"""Opening a model file's body for streaming, on a lean HTTP stack.

Why not the Hub session's httpx client (engine/hub.py), which serves the metadata: on its way to the
caller h11 copies every received byte four times, 0.45 s of CPU per 512 MiB on loopback against 0.08 s
for urllib3's `read1`, which hands over what one socket read brought as one `bytes` (figures in
docs/benchmarks.md, "Downloads"). So bodies go through urllib3 with the settings the httpx client has:
- TLS verification with the same `ssl.SSLContext` (the session passes its own);
- proxies from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, as urllib reads
  them), chosen per hop, since a redirect to a CDN may cross from a proxied host to a bypassed one;
- redirects followed here, hop by hop, dropping `Authorization` and `Cookie` whenever the next hop is
  another scheme, host or port, so a Hub token never reaches a CDN;
- a connect timeout, and a read timeout on every socket read, which is how a stalled line is noticed.
Connections are made by Python's socket module, so engine/network_log.py's audit hook sees and logs
each one under the caller's purpose, and refuses it in airplane mode. (Importing urllib3 binds a socket
to `::1` once to learn whether IPv6 works: the log shows it as "listen on ::1" under the first download.)

Errors come out as three kinds the transfer can act on: `Stalled`, `CannotConnect` (the original
error, e.g. an airplane-mode refusal, stays reachable through `__cause__`) and `Dropped`.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    import urllib3

MAX_REDIRECTS = 10
PRIVATE_HEADERS = {"authorization", "cookie", "proxy-authorization"}


class Stalled(Exception):
    """No byte arrived (or no connection was made) within the timeout."""


class CannotConnect(Exception):
    """The connection could not be made at all: name lookup, refused, TLS, proxy."""


class Dropped(Exception):
    """The connection broke while the answer was being received."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


class BodyFetcher:
    """GETs bodies for streaming; one connection pool per proxy (or none). Close it when done."""

    def __init__(self, ssl_context: ssl.SSLContext, connect_timeout: float, read_timeout: float) -> None:
        import urllib3

        self._ssl_context = ssl_context
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._proxies = urllib.request.getproxies()
        self._managers: dict[str | None, urllib3.PoolManager] = {}

    def open(self, url: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        """GET `url`, following redirects; the final response with its body not yet read (read it with
        `read1`, then `release_conn()`). Raises `Stalled`, `CannotConnect` or `Dropped`."""
        for _ in range(MAX_REDIRECTS + 1):
            response = self._get(url, headers)
            location = response.get_redirect_location()
            if not location:
                return response
            response.drain_conn()
            response.release_conn()
            target = urljoin(url, location)
            if _origin(target) != _origin(url):
                headers = {k: v for k, v in headers.items() if k.lower() not in PRIVATE_HEADERS}
            url = target
        raise Dropped(f"more than {MAX_REDIRECTS} redirects, the last to {url}")

    def _get(self, url: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        import urllib3.exceptions as e

        try:
            return self._manager_for(url).urlopen(
                "GET", url, headers=headers, redirect=False, retries=False, preload_content=False,
                decode_content=False, timeout=self._timeout,
            )
        except (e.NameResolutionError, e.NewConnectionError, e.SSLError, e.ProxyError) as exc:
            raise CannotConnect(repr(exc)) from exc  # before TimeoutError: NewConnectionError is one too
        except e.TimeoutError as exc:
            raise Stalled(repr(exc)) from exc
        except (e.HTTPError, OSError) as exc:
            raise Dropped(repr(exc)) from exc

    def _manager_for(self, url: str) -> urllib3.PoolManager:
        """The pool for `url`'s proxy (or the direct one), made on first use."""
        import urllib3

        scheme, host, port = _origin(url)
        proxy = self._proxies.get(scheme) or self._proxies.get("all")
        if proxy and urllib.request.proxy_bypass(f"{host}:{port}" if port else host):
            proxy = None
        if proxy and "://" not in proxy:
            proxy = "http://" + proxy
        if proxy not in self._managers:
            if proxy is None:
                self._managers[None] = urllib3.PoolManager(num_pools=4, ssl_context=self._ssl_context)
            else:
                auth = urllib3.util.parse_url(proxy).auth
                try:
                    self._managers[proxy] = urllib3.ProxyManager(
                        proxy, num_pools=4, ssl_context=self._ssl_context,
                        proxy_headers=urllib3.make_headers(proxy_basic_auth=auth) if auth else None,
                    )
                except urllib3.exceptions.ProxySchemeUnknown as exc:
                    raise CannotConnect(f"unsupported proxy {proxy!r}: use an http:// or https:// proxy") from exc
        return self._managers[proxy]

    def close(self) -> None:
        """Close every pooled connection."""
        for manager in self._managers.values():
            manager.clear()
        self._managers.clear()


def pieces(response: urllib3.BaseHTTPResponse, most: int) -> Iterator[bytes]:
    """`response`'s body as the network delivers it: what one socket read brought, at most `most`
    bytes, one copy out of the kernel. Raises `Stalled` or `Dropped` (a body cut short included)."""
    import urllib3.exceptions as e

    try:
        while piece := response.read1(most, decode_content=False):
            yield piece
    except e.TimeoutError as exc:
        raise Stalled(repr(exc)) from exc
    except (e.HTTPError, OSError) as exc:
        raise Dropped(repr(exc)) from exc


def finish(response: urllib3.BaseHTTPResponse) -> None:
    """Hand the connection back to the pool if the body was read to its end, else close it: reading the
    rest of a model file (or an error page's unread body) to reuse the connection costs more than a new one."""
    if response.length_remaining != 0:
        response.close()
    response.release_conn()
