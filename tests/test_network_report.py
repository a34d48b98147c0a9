"""The network log in words: the status bar's summary, the Network page's rows, and network.log on disk."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from app.core import network_report
from engine import network_log
from engine.network_log import UNKNOWN, Attempt, Purpose

DOWNLOAD = Purpose("Model download", "TinyLlama · Q4_K_M")
API = Purpose("Local API server", "POST /v1/chat/completions")


def attempt(kind: str = "connect", purpose: Purpose = DOWNLOAD, refused: bool = False, received: int = 0,
            port: int | None = 443) -> Attempt:
    return Attempt(0.0, kind, "huggingface.co", port, purpose, refused, received)  # type: ignore[arg-type]


@pytest.mark.parametrize(("attempts", "airplane", "said"), [
    ([], False, "Offline · no connections since start"),
    ([], True, "Airplane mode · no connections since start"),
    ([attempt("lookup"), attempt(received=668_000_000), attempt()], False, "1 download (668 MB)"),
    ([attempt(), attempt(purpose=Purpose("Model download", "other"))], False, "2 downloads (0 bytes)"),
    ([attempt(purpose=UNKNOWN)], False, "1 other connection"),
    ([attempt(refused=True), attempt("lookup", UNKNOWN, refused=True)], True, "Airplane mode · 2 refused"),
    ([attempt(received=1000), attempt(purpose=UNKNOWN), attempt(purpose=UNKNOWN), attempt(refused=True)], True,
     "Airplane mode · 1 download (1 KB) · 2 other connections · 1 refused"),
    ([attempt("listen", UNKNOWN, port=8080)], False, "Offline · no connections since start"),
    ([attempt("request", API), attempt("request", API), attempt(purpose=UNKNOWN)], False,
     "1 other connection · 2 API requests"),
])
def test_the_summary_counts_downloads_other_connections_api_requests_and_refusals(attempts, airplane, said):
    assert network_report.summary(attempts, airplane) == said


def test_a_row_and_a_line_say_what_where_why_and_how_it_ended():
    a = attempt(received=2_500_000)
    assert network_report.row(a)[1:] == ("Connection", "huggingface.co", "443", "Model download: TinyLlama · Q4_K_M",
                                         "2 MB", "allowed")
    assert network_report.describe(attempt("lookup", UNKNOWN, refused=True, port=None)) == (
        "name lookup huggingface.co — Unknown (no TinyChat feature asked) — refused")


@pytest.mark.parametrize(("host", "said"), [
    ("127.0.0.1", "Listening (this computer only)"), ("::1", "Listening (this computer only)"),
    ("localhost", "Listening (this computer only)"), ("0.0.0.0", "Listening"), ("192.168.1.5", "Listening")])
def test_listening_says_whether_other_computers_could_reach_it(host, said):
    a = Attempt(0.0, "listen", host, 0, UNKNOWN, False)
    assert network_report.row(a)[1] == said


def test_every_attempt_is_kept_in_network_log_on_disk(tmp_path: Path):
    network_log.install()
    path = network_report.keep_on_disk(tmp_path / "logs")
    assert path == tmp_path / "logs" / "network.log"
    with network_log.purpose("Model download", "x"), socket.create_server(("127.0.0.1", 0)) as server:
        socket.create_connection(server.getsockname()).close()
        port = server.getsockname()[1]
    text = path.read_text()
    assert f"connection 127.0.0.1:{port} — Model download: x — allowed" in text
    assert "listening (this computer only) 127.0.0.1:0 — Model download: x — allowed" in text
