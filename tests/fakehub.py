"""A local stand-in for the Hugging Face Hub, for download tests.

A real HTTP server on 127.0.0.1 answering what TinyChat's model manager asks the Hub:
- `GET /api/models/{repo}/revision/{rev}?blobs=true` → model info with every file's size, blob id and
  LFS sha256 (the shape huggingface_hub's `ModelInfo` parses);
- `HEAD|GET /{repo}/resolve/{rev}/{file}` → small files directly; LFS files as a 302 redirect to
  `/cdn/...` with the `X-Repo-Commit`, `X-Linked-Etag` and `X-Linked-Size` headers;
- `GET /cdn/{sha256}` with `Range: bytes=N-` → 206 partial content.
It never sends xet headers. `faults` switches inject failures; `bytes_sent` and `requests` count what
the server really sent, so tests can prove that resumed bytes were not fetched twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin", ".model")
SEND_BLOCK = 1 << 20  # large writes: the server must outpace any client a benchmark measures
TRICKLE_BLOCK = 16 * 1024  # a slow line delivers small pieces often; a fast one, a hundredth of a second's worth


@dataclass
class Faults:
    """Switches a test flips to make the next requests fail. Counters (`*_times`) count down per
    affected request; `None` means every request."""

    drop_after: int | None = None  # close the connection after sending this many body bytes
    drop_times: int | None = 1
    stall_after: int | None = None  # stop sending after this many body bytes, hold the connection
    stall_times: int | None = 1
    stall_s: float = 30.0
    corrupt: bool = False  # serve wrong bytes of the right size (metadata keeps the true hash)
    status: int | None = None  # answer with this HTTP status
    status_on: str = "all"  # "all" | "api" | "resolve" | "cdn"
    status_times: int | None = None
    trickle_bps: int | None = None  # send at most this many bytes per second
    ignore_range: bool = False  # answer Range requests with the whole file (200)
    no_length: bool = False  # no Content-Length: a dropped connection looks like a clean end of body
    require_token: str | None = None  # 401 unless "Authorization: Bearer <token>" (CDN URLs are signed: not there)
    cdn_host: str | None = None  # redirect to the CDN under this host name, another origin than the Hub's

    def take(self, name: str) -> bool:
        """Consume one use of the `<name>_times` counter; True if the fault applies to this request."""
        times = getattr(self, f"{name}_times")
        if times is None:
            return True
        if times <= 0:
            return False
        setattr(self, f"{name}_times", times - 1)
        return True


@dataclass
class Request:
    """One request the server received, and how many body bytes it answered with."""

    method: str
    path: str
    range: str | None
    sent: int = 0
    authorization: str | None = None
    target: str = ""  # as on the request line: absolute ("http://host/...") when it came through a proxy


@dataclass
class HubFile:
    name: str
    data: bytes
    lfs: bool

    @cached_property  # computed once: every file request checks it, and benchmark files are gigabytes
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @cached_property
    def blob_id(self) -> str:
        h = hashlib.sha1(b"blob %d\0" % len(self.data))
        h.update(self.data)
        return h.hexdigest()


@dataclass
class HubRepo:
    repo_id: str
    commit: str
    files: dict[str, HubFile] = field(default_factory=dict)


class FakeHub:
    """Start with `with FakeHub() as hub:`; `hub.endpoint` goes into `HF_ENDPOINT`. With `tls` (a server
    context holding a certificate) it answers HTTPS."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.repos: dict[str, HubRepo] = {}
        self.faults = Faults()
        self.bytes_sent: dict[str, int] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # --- content -------------------------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes | Path], commit: str | None = None) -> str:
        """Publish `files` (name → bytes or a path to read) as `repo_id` at `commit` (default: one
        derived from the names); returns the commit sha."""
        commit = commit or hashlib.sha1(f"{repo_id}:{sorted(files)}".encode()).hexdigest()
        repo = HubRepo(repo_id, commit)
        for name, content in files.items():
            data = Path(content).read_bytes() if isinstance(content, Path) else content
            repo.files[name] = HubFile(name, data, lfs=name.endswith(LFS_SUFFIXES))
        self.repos[repo_id] = repo
        return commit

    def reset_counters(self) -> None:
        with self.lock:
            self.bytes_sent.clear()
            self.requests.clear()

    def cdn_requests(self) -> list[Request]:
        """The file-content requests (after the resolve redirect), in order."""
        return [r for r in self.requests if r.path.startswith("/cdn/")]

    def served(self, name: str) -> int:
        """Body bytes of file `name` the server has written to sockets."""
        return self.bytes_sent.get(name, 0)

    # --- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> FakeHub:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    # --- routing -------------------------------------------------------------------------------
    def _route(self, head: bool) -> None:
        hub = self.hub
        path = unquote(urlsplit(self.path).path)
        self.request_log = Request(self.command, path, self.headers.get("Range"),
                                   authorization=self.headers.get("Authorization"), target=self.path)
        with hub.lock:
            hub.requests.append(self.request_log)
        kind = "api" if path.startswith("/api/") else "cdn" if path.startswith("/cdn/") else "resolve"
        f = hub.faults
        if f.status is not None and f.status_on in ("all", kind) and f.take("status"):
            return self._error(f.status, "Injected")
        if f.require_token and kind != "cdn" and self.headers.get("Authorization") != f"Bearer {f.require_token}":
            return self._error(401, "GatedRepo")
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path):
            return self._model_info(m[1], m[2])
        if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            return self._resolve(m[1], m[2], m[3], head)
        if m := re.fullmatch(r"/cdn/([^/]+/[^/]+)/([0-9a-f]{64})/(.+)", path):
            repo = hub.repos.get(m[1])
            file = repo.files.get(m[3]) if repo else None
            if file is None or file.sha256 != m[2]:
                return self._error(404, "EntryNotFound")
            return self._send_file(file, head)
        return self._error(404, "RepoNotFound")

    def _repo_at(self, repo_id: str, rev: str) -> HubRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound")
            return None
        if rev not in ("main", repo.commit):
            self._error(404, "RevisionNotFound")
            return None
        return repo

    def _model_info(self, repo_id: str, rev: str) -> None:
        repo = self._repo_at(repo_id, rev)
        if repo is None:
            return
        siblings = []
        for file in repo.files.values():
            s: dict = {"rfilename": file.name, "size": len(file.data), "blobId": file.blob_id}
            if file.lfs:
                s["lfs"] = {"sha256": file.sha256, "size": len(file.data), "pointerSize": 134}
            siblings.append(s)
        body = json.dumps({"_id": repo.commit[:24], "id": repo_id, "modelId": repo_id, "sha": repo.commit,
                           "private": False, "siblings": siblings}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _resolve(self, repo_id: str, rev: str, name: str, head: bool) -> None:
        repo = self._repo_at(repo_id, rev)
        if repo is None:
            return
        file = repo.files.get(name)
        if file is None:
            return self._error(404, "EntryNotFound")
        if not file.lfs:
            return self._send_file(file, head, extra={"X-Repo-Commit": repo.commit, "ETag": f'"{file.blob_id}"'})
        self.send_response(302)
        cdn_host = self.hub.faults.cdn_host
        cdn = self.hub.endpoint.replace("127.0.0.1", cdn_host) if cdn_host else ""
        self.send_header("Location", f"{cdn}/cdn/{repo_id}/{file.sha256}/{name}")
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("X-Linked-Etag", f'"{file.sha256}"')
        self.send_header("X-Linked-Size", str(len(file.data)))
        self.send_header("ETag", f'"{file.blob_id}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    # --- responses -----------------------------------------------------------------------------
    def _error(self, status: int, code: str) -> None:
        body = json.dumps({"error": f"{code} (fake hub)"}).encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_file(self, file: HubFile, head: bool, extra: dict[str, str] | None = None) -> None:
        f = self.hub.faults
        data = file.data
        if f.corrupt:
            data = bytes(b ^ 0x5A for b in data[:64]) + data[64:]
        start = 0
        range_header = self.headers.get("Range")
        if range_header and not f.ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-", range_header.strip())
            start = int(m[1]) if m else 0
            if start >= len(data) and len(data) > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        body = memoryview(data)[start:]  # a view: no copy of a large file per request
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes")
        if not f.no_length:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self._stream(file.name, body)

    def _stream(self, name: str, body: memoryview) -> None:
        hub, f = self.hub, self.hub.faults
        drop_at = f.drop_after if f.drop_after is not None and f.take("drop") else None
        stall_at = f.stall_after if f.stall_after is not None and f.take("stall") else None
        rate, started, sent_then = None, 0.0, 0
        sent = 0
        try:
            while sent < len(body):
                if f.trickle_bps != rate:  # a test may change the line's speed mid-transfer
                    rate, started, sent_then = f.trickle_bps, time.monotonic(), sent
                block = min(max(TRICKLE_BLOCK, rate // 100), SEND_BLOCK, rate) if rate else SEND_BLOCK
                limit = len(body)
                for cut in (drop_at, stall_at):
                    if cut is not None and cut >= sent:
                        limit = min(limit, cut)
                piece = body[sent : min(sent + block, limit)]
                if piece:
                    self.wfile.write(piece)
                    self.wfile.flush()
                    sent += len(piece)
                    with hub.lock:
                        hub.bytes_sent[name] = hub.bytes_sent.get(name, 0) + len(piece)
                        self.request_log.sent += len(piece)
                    if rate:  # on schedule, not after each piece: the time spent sending counts too
                        time.sleep(max(0.0, started + (sent - sent_then) / rate - time.monotonic()))
                if drop_at is not None and sent >= drop_at:
                    break  # vanish mid-body: the client sees a short read
                if stall_at is not None and sent >= stall_at:
                    hub.stopping.wait(f.stall_s)
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


# --- catalogs that point at the fake hub -----------------------------------------------------------
def gguf_entry(repo: str, revision: str, filename: str, *, model: str = "tiny", level: str = "Q4_K_M",
               sha256: str | None = None, size: int | None = None) -> dict:
    """A llama.cpp catalog entry (the packaged catalog's shape) for a file on the fake hub."""
    return {"id": f"{model}-{level.lower()}", "model": model, "level": level, "label": f"{model} {level}",
            "engine": "llama.cpp", "repo": repo, "revision": revision,
            "files": [{"name": filename, "size": size, "sha256": sha256}],
            "size_mb": 1, "memory_mb": 10, "note": "test entry", "verified": sha256 is not None}


def mlx_entry(repo: str, revision: str, allow_patterns: list[str], *, model: str = "tiny", bits: int = 4) -> dict:
    """An MLX catalog entry: the original snapshot (allow-patterns) converted locally to `bits`."""
    return {"id": f"{model}-mlx-{bits}bit", "model": model, "level": f"{bits}bit", "label": f"{model} MLX {bits}-bit",
            "engine": "mlx", "repo": repo, "revision": revision, "source_id": f"{model}-hf",
            "allow_patterns": allow_patterns, "files": [], "bits": bits, "size_mb": 1, "memory_mb": 10,
            "note": "test entry"}


def write_catalog(path: Path, entries: list[dict]) -> Path:
    """Write a catalog file `Catalog.load(path)` reads."""
    path.write_text(json.dumps({"schema": 1, "entries": entries}), encoding="utf-8")
    return path
