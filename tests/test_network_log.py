"""The network log and airplane mode (engine/network_log.py), against the local fake Hub and real sockets.

The audit hook is installed in this test process (it cannot be removed; with airplane mode off it only
records). Every test starts from an empty log with airplane mode off.
"""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import network_log
from engine.catalog import Catalog
from engine.download import TransferSettings
from engine.hub import HubSession
from engine.models import ModelManager
from engine.network_log import LOG, AirplaneModeOn, NetworkRefused
from engine.progress import Progress
from tests.fakehub import FakeHub, gguf_entry, write_catalog
from tests.fixtures.gguf_model import build_cached

REPO = "test/Tiny-GGUF"
NAME = "tiny.q4_k_m.gguf"
LABEL = "tiny Q4_K_M"
SETTINGS = TransferSettings(backoff_base_s=0.01, retries=2, margin_bytes=0, report_interval_s=0,
                            chunk_size=64 * 1024)


@pytest.fixture(autouse=True)
def _clean_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    network_log.install()
    LOG.clear()
    network_log.set_airplane(False)
    yield
    network_log.set_airplane(False)


@pytest.fixture(scope="module")
def model_file() -> Path:
    return build_cached("small", "Q4_K_M", scripted=True)


@pytest.fixture
def hub(model_file: Path) -> Iterator[FakeHub]:
    with FakeHub() as h:
        h.commit = h.add_repo(REPO, {NAME: model_file})
        yield h


def manager(tmp_path: Path, endpoint: str, commit: str = "main") -> ModelManager:
    catalog = Catalog.load(write_catalog(tmp_path / "catalog.json", [gguf_entry(REPO, commit, NAME)]))
    return ModelManager(tmp_path / "models", catalog, endpoint=endpoint, settings=SETTINGS, stall_timeout=5)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A port on 127.0.0.1 that must see no connection: `accept` times out if none came."""
    s = socket.create_server(("127.0.0.1", 0))
    s.settimeout(0.5)
    yield s
    s.close()


def assert_nobody_connected(listener: socket.socket) -> None:
    with pytest.raises(TimeoutError):
        conn, _ = listener.accept()
        conn.close()


def port_of(s: socket.socket | FakeHub) -> int:
    return s.getsockname()[1] if isinstance(s, socket.socket) else int(s.endpoint.rsplit(":", 1)[1])


def to(port: int) -> list[network_log.Attempt]:
    """The logged attempts aimed at `port` (the test process's own listening sockets are left out)."""
    return [a for a in LOG.attempts() if a.port == port and a.kind != "listen"]


# --- the log -------------------------------------------------------------------------------------------
def test_a_download_logs_its_lookup_and_connections_with_its_purpose_and_bytes(tmp_path, hub, model_file):
    mm = manager(tmp_path, f"http://localhost:{port_of(hub)}", hub.commit)
    mm.ensure_available("tiny", "Q4_K_M")
    attempts = to(port_of(hub))
    assert {str(a.purpose) for a in attempts} == {f"Model download: {LABEL}"}  # its metadata request included
    assert any(a.kind == "lookup" and a.host == "localhost" and not a.refused for a in attempts)
    connected = [a for a in attempts if a.kind == "connect"]
    assert connected and all(a.host.startswith("localhost (") for a in connected)
    received = sum(a.received for a in attempts)
    assert model_file.stat().st_size < received < model_file.stat().st_size + 10_000  # the file + metadata


def test_a_hub_metadata_request_on_its_own_is_logged_as_such(hub):
    with HubSession(hub.endpoint) as session:
        snapshot = session.snapshot(REPO, hub.commit, [NAME])
    assert snapshot.files[0].name == NAME
    [attempt] = to(port_of(hub))
    assert str(attempt.purpose) == f"Hub metadata: {REPO}" and attempt.received > 0


def test_an_installed_level_makes_no_attempt(tmp_path, hub):
    mm = manager(tmp_path, hub.endpoint, hub.commit)
    mm.ensure_available("tiny", "Q4_K_M")
    LOG.clear()
    mm.ensure_available("tiny", "Q4_K_M")
    assert LOG.attempts() == ()


def test_huggingface_hubs_own_client_is_logged_as_unknown(hub, monkeypatch):
    from huggingface_hub import HfApi, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the app sets it; a library might not honour it
    info = HfApi(endpoint=hub.endpoint).model_info(REPO, revision="main")
    assert info.sha == hub.commit
    attempts = to(port_of(hub))
    assert attempts and all(a.purpose == network_log.UNKNOWN for a in attempts)


def test_a_library_request_carries_the_purpose_a_feature_set(hub):
    with network_log.purpose("Checking for updates", "TinyChat"):
        urllib.request.urlopen(f"{hub.endpoint}/api/models/{REPO}/revision/main").read()
    assert {str(a.purpose) for a in to(port_of(hub))} == {"Checking for updates: TinyChat"}


def test_threads_do_not_inherit_a_purpose(hub):
    def fetch() -> None:
        urllib.request.urlopen(f"{hub.endpoint}/api/models/{REPO}/revision/main").read()

    with network_log.purpose("Model download", "x"):
        t = threading.Thread(target=fetch)
        t.start()
        t.join()
    assert {a.purpose for a in to(port_of(hub))} == {network_log.UNKNOWN}


# --- airplane mode -------------------------------------------------------------------------------------
def test_airplane_mode_refuses_a_download_before_any_connection(tmp_path, listener):
    network_log.set_airplane(True)
    mm = manager(tmp_path, f"http://127.0.0.1:{port_of(listener)}")
    with pytest.raises(AirplaneModeOn) as err:
        mm.ensure_available("tiny", "Q4_K_M")
    assert err.value.message.startswith("Airplane mode is on, so TinyChat does not connect to the internet.")
    assert "allow it for this one download" in err.value.message
    assert_nobody_connected(listener)
    assert mm.installed() == ()


def test_the_hook_refuses_even_code_that_skips_the_check(listener):
    network_log.set_airplane(True)
    with HubSession(f"http://127.0.0.1:{port_of(listener)}") as session, pytest.raises(AirplaneModeOn):
        session.snapshot(REPO, "main", [NAME])
    assert_nobody_connected(listener)
    [attempt] = to(port_of(listener))
    assert attempt.refused and attempt.kind == "connect" and attempt.purpose.feature == "Hub metadata"


def test_airplane_mode_refuses_raw_sockets_lookups_and_listening_for_other_computers(listener):
    network_log.set_airplane(True)
    with pytest.raises(NetworkRefused):
        socket.create_connection(("127.0.0.1", port_of(listener)))
    with pytest.raises(OSError) as err:
        urllib.request.urlopen("http://huggingface.co/")
    assert network_log.refusal_in(err.value) is not None
    with pytest.raises(NetworkRefused):
        socket.gethostbyname("huggingface.co")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(NetworkRefused):
        udp.sendto(b"x", ("127.0.0.1", port_of(listener)))
    with pytest.raises(NetworkRefused):
        udp.bind(("0.0.0.0", 0))
    udp.bind(("127.0.0.1", 0))  # listening to this computer only lets nothing out
    udp.close()
    assert_nobody_connected(listener)
    refused = [a for a in LOG.attempts() if a.refused]
    assert [(a.kind, a.host) for a in refused] == [
        ("connect", "127.0.0.1"), ("lookup", "huggingface.co"), ("lookup", "huggingface.co"),
        ("send", "127.0.0.1"), ("listen", "0.0.0.0")]


def test_local_sockets_are_neither_logged_nor_refused():
    network_log.set_airplane(True)
    a, b = socket.socketpair()
    a.sendall(b"ping")
    assert b.recv(4) == b"ping"
    a.close()
    b.close()
    assert LOG.attempts() == ()


def test_allowing_once_lets_that_download_through_and_nothing_after(tmp_path, hub, listener):
    network_log.set_airplane(True)
    mm = manager(tmp_path, hub.endpoint, hub.commit)
    with network_log.allow_once():
        mm.ensure_available("tiny", "Q4_K_M")
    assert mm.find("tiny", "Q4_K_M") is not None
    assert all(not a.refused for a in to(port_of(hub)))
    with pytest.raises(NetworkRefused):
        socket.create_connection(("127.0.0.1", port_of(listener)))
    assert_nobody_connected(listener)


def test_switching_airplane_mode_on_mid_download_stops_it_and_keeps_the_bytes(tmp_path, hub, model_file):
    mm = manager(tmp_path, hub.endpoint, hub.commit)

    def on_progress(p: Progress) -> None:
        if p.phase == "downloading" and p.done > 0:
            network_log.set_airplane(True)

    with pytest.raises(AirplaneModeOn):
        mm.ensure_available("tiny", "Q4_K_M", progress=on_progress)
    part = next((tmp_path / "models").rglob(NAME + ".part"))
    kept = part.stat().st_size
    assert 0 < kept < model_file.stat().st_size
    network_log.set_airplane(False)
    hub.reset_counters()
    mm.ensure_available("tiny", "Q4_K_M")
    # Resumed, not fetched again (what the client asked for: the byte count of the first, cut-off
    # response may still be growing on the server's side when the counters are reset).
    assert [r.range for r in hub.cdn_requests()] == [f"bytes={kept}-"]


def test_the_log_keeps_the_newest_attempts_and_counts_them_all():
    log = network_log.NetworkLog(keep=3)
    for port in range(5):
        log.record(network_log.Attempt(0.0, "connect", "h", port, network_log.UNKNOWN, False))
        log.count_received(10 * port)
    assert [(a.port, a.received) for a in log.attempts()] == [(2, 20), (3, 30), (4, 40)]
    assert log.total == 5
