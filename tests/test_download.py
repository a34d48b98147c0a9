"""Downloads against a real local HTTP server that answers like the Hub (tests/fakehub.py):
progress, cancel, resume, stalls, dropped connections, corrupt bytes, HTTP errors, disk space."""

from __future__ import annotations

import hashlib
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from engine.body_fetch import CannotConnect
from engine.catalog import Catalog
from engine.download import Progress, TransferSettings
from engine.hub import HubSession
from engine.models import MANIFEST, ModelManager
from engine.part_files import PART_SUFFIX
from engine.types import DownloadCancelled, DownloadError
from tests.fakehub import FakeHub, gguf_entry, write_catalog
from tests.fixtures.gguf_model import build_cached

REPO = "test/Tiny-GGUF"
FILE = "tiny.q4_k_m.gguf"
FAST = TransferSettings(backoff_base_s=0.01, backoff_max_s=0.05, retries=3, margin_bytes=0, report_interval_s=0)


@pytest.fixture(autouse=True)
def _hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return build_cached("small", "Q4_K_M", scripted=True).read_bytes()


@pytest.fixture
def hub(model_bytes: bytes):
    with FakeHub() as h:
        h.commit = h.add_repo(REPO, {FILE: model_bytes, "README.md": b"# tiny\n"})
        yield h


def manager(tmp_path: Path, hub: FakeHub, *, settings: TransferSettings = FAST, stall_timeout: float = 5.0,
            entry: dict | None = None, **kw) -> ModelManager:
    catalog = Catalog.load(write_catalog(tmp_path / "catalog.json", [entry or gguf_entry(REPO, hub.commit, FILE)]))
    return ModelManager(tmp_path / "models", catalog, endpoint=hub.endpoint, settings=settings,
                        stall_timeout=stall_timeout, **kw)


def part_path(tmp_path: Path) -> Path:
    return tmp_path / "models" / "llama.cpp" / "tiny-q4_k_m" / (FILE + PART_SUFFIX)


class CancelAfter:
    """A progress callback that sets `cancel` once `nbytes` have arrived, like a user pressing Cancel."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes, self.cancel, self.seen = nbytes, threading.Event(), []

    def __call__(self, p: Progress) -> None:
        self.seen.append(p)
        if p.phase == "downloading" and p.done >= self.nbytes:
            self.cancel.set()


def test_download_reports_progress_and_places_the_verified_file(tmp_path, hub, model_bytes):
    seen: list[Progress] = []
    path = manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M", progress=seen.append)
    assert path.read_bytes() == model_bytes
    assert path.parent == tmp_path / "models" / "llama.cpp" / "tiny-q4_k_m"
    assert not list(path.parent.glob("*" + PART_SUFFIX))
    assert (path.parent / MANIFEST).is_file()
    phases = [p.phase for p in seen]
    assert phases[0] == "metadata" and phases[-1] == "done"
    assert phases.index("downloading") < phases.index("verifying")
    downloading = [p for p in seen if p.phase == "downloading"]
    assert all(p.total == len(model_bytes) and p.file == FILE for p in downloading)
    assert [p.done for p in downloading] == sorted(p.done for p in downloading)
    assert seen[-1].done == seen[-1].total == len(model_bytes)


def test_slow_trickle_reports_speed_and_eta_and_still_completes(tmp_path, hub, model_bytes):
    hub.faults.trickle_bps = 800_000
    seen: list[Progress] = []
    manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M", progress=seen.append)
    late = [p for p in seen if p.phase == "downloading" and p.done > len(model_bytes) // 2]
    assert late and all(p.speed > 0 and p.eta_s is not None for p in late)
    assert 100_000 < late[-1].speed < 8_000_000  # bytes/s of the order the server trickles at


def test_with_the_apps_block_size_a_slow_line_still_shows_progress_and_stops_on_cancel(tmp_path, hub, model_bytes):
    # 1 MiB blocks, as the app uses, and a file smaller than one block: on a slow line progress and
    # cancel must still come every report interval, not once per block.
    hub.faults.trickle_bps = 300_000
    user = CancelAfter(len(model_bytes) * 3 // 4)
    settings = TransferSettings(backoff_base_s=0.01, retries=1, margin_bytes=0)
    assert settings.chunk_size > len(model_bytes) and settings.report_interval_s > 0
    with pytest.raises(DownloadCancelled):
        manager(tmp_path, hub, settings=settings).ensure_available("tiny", "Q4_K_M", progress=user, cancel=user.cancel)
    assert len({p.done for p in user.seen if p.phase == "downloading" and p.done > 0}) >= 3
    kept = part_path(tmp_path).stat().st_size
    assert len(model_bytes) * 3 // 4 <= kept < len(model_bytes)


def test_cancel_stops_the_download_and_keeps_the_partial_file(tmp_path, hub):
    hub.faults.trickle_bps = 400_000
    user = CancelAfter(100_000)
    mm = manager(tmp_path, hub)
    with pytest.raises(DownloadCancelled, match="cancelled"):
        mm.ensure_available("tiny", "Q4_K_M", progress=user, cancel=user.cancel)
    assert part_path(tmp_path).stat().st_size >= 100_000
    assert mm.installed() == ()
    assert [u.state for u in mm.disk_usage()] == ["partial"]


def test_resume_after_cancel_fetches_only_the_missing_bytes(tmp_path, hub, model_bytes):
    hub.faults.trickle_bps = 400_000
    user = CancelAfter(200_000)
    mm = manager(tmp_path, hub)
    with pytest.raises(DownloadCancelled):
        mm.ensure_available("tiny", "Q4_K_M", progress=user, cancel=user.cancel)
    have = part_path(tmp_path).stat().st_size
    hub.faults.trickle_bps = None
    hub.reset_counters()
    path = mm.ensure_available("tiny", "Q4_K_M")
    assert path.read_bytes() == model_bytes
    (resumed,) = hub.cdn_requests()
    assert resumed.range == f"bytes={have}-"
    assert resumed.sent == len(model_bytes) - have  # the bytes already on disk were not fetched again


def test_speed_after_a_resume_counts_only_bytes_that_arrive_not_those_already_on_disk(tmp_path, hub, model_bytes):
    # A previous run left 90% of the file; the rest trickles in at 100 KB/s.
    part = part_path(tmp_path)
    part.parent.mkdir(parents=True)
    have = len(model_bytes) * 9 // 10
    part.write_bytes(model_bytes[:have])
    hub.faults.trickle_bps = 100_000
    seen: list[Progress] = []
    manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M", progress=seen.append)
    measured = [p for p in seen if p.phase == "downloading" and p.speed > 0]
    assert measured
    assert all(p.speed < 300_000 for p in measured), [round(p.speed) for p in measured]
    remaining = len(model_bytes) - have
    assert all(p.eta_s is not None and p.eta_s >= (len(model_bytes) - p.done) / 300_000 for p in measured)
    assert measured[0].done - have < remaining


def test_dropped_connection_is_resumed_from_the_last_byte_received(tmp_path, hub, model_bytes):
    hub.faults.drop_after, hub.faults.drop_times = 300_000, 2
    path = manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M")
    assert path.read_bytes() == model_bytes
    ranges = [r.range for r in hub.cdn_requests()]
    assert ranges == ["bytes=0-", "bytes=300000-", "bytes=600000-"]
    assert hub.served(FILE) == len(model_bytes)  # not one byte fetched twice


def test_a_body_that_ends_early_without_an_error_is_resumed(tmp_path, hub, model_bytes):
    hub.faults.no_length, hub.faults.drop_after, hub.faults.drop_times = True, 300_000, None
    path = manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M")
    assert path.read_bytes() == model_bytes
    assert [r.range for r in hub.cdn_requests()] == ["bytes=0-", "bytes=300000-", "bytes=600000-", "bytes=900000-"]


def test_a_server_that_never_sends_a_byte_gives_up_instead_of_looping(tmp_path, hub):
    hub.faults.no_length, hub.faults.drop_after, hub.faults.drop_times = True, 0, None
    with pytest.raises(DownloadError, match="kept dropping"):
        manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M")
    assert len(hub.cdn_requests()) == FAST.retries + 1


def test_a_stall_is_detected_retried_and_the_download_completes(tmp_path, hub, model_bytes):
    hub.faults.stall_after, hub.faults.stall_s = 250_000, 10.0
    path = manager(tmp_path, hub, stall_timeout=0.4).ensure_available("tiny", "Q4_K_M")
    assert path.read_bytes() == model_bytes
    assert [r.range for r in hub.cdn_requests()] == ["bytes=0-", "bytes=250000-"]


def test_a_connection_that_always_stalls_gives_up_with_a_plain_sentence(tmp_path, hub):
    hub.faults.stall_after, hub.faults.stall_times, hub.faults.stall_s = 0, None, 10.0
    settings = TransferSettings(backoff_base_s=0.01, retries=1, margin_bytes=0)
    with pytest.raises(DownloadError, match="stalled") as info:
        manager(tmp_path, hub, settings=settings, stall_timeout=0.3).ensure_available("tiny", "Q4_K_M")
    assert "continue where it stopped" in info.value.message


def test_corrupt_bytes_are_rejected_and_the_file_removed(tmp_path, hub):
    hub.faults.corrupt = True
    mm = manager(tmp_path, hub)
    with pytest.raises(DownloadError, match="damaged") as info:
        mm.ensure_available("tiny", "Q4_K_M")
    assert "checksum" in info.value.message and "deleted" in info.value.message
    folder = tmp_path / "models" / "llama.cpp" / "tiny-q4_k_m"
    assert not (folder / FILE).exists() and not part_path(tmp_path).exists()
    assert mm.installed() == ()
    hub.faults.corrupt = False
    assert mm.ensure_available("tiny", "Q4_K_M").is_file()  # a clean retry starts over and succeeds


def test_a_server_that_ignores_range_restarts_the_file_cleanly(tmp_path, hub, model_bytes):
    hub.faults.drop_after = 200_000
    hub.faults.ignore_range = True
    path = manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M")
    assert path.read_bytes() == model_bytes


def test_a_missing_file_says_the_catalog_may_be_out_of_date(tmp_path, hub):
    entry = gguf_entry(REPO, hub.commit, "tiny.q9_k.gguf")
    with pytest.raises(DownloadError, match="not found on the Hub") as info:
        manager(tmp_path, hub, entry=entry).ensure_available("tiny", "Q4_K_M")
    assert "out of date" in info.value.message


def test_an_unknown_revision_is_reported_as_not_found(tmp_path, hub):
    entry = gguf_entry(REPO, "0" * 40, FILE)
    with pytest.raises(DownloadError, match="not found"):
        manager(tmp_path, hub, entry=entry).ensure_available("tiny", "Q4_K_M")


def test_a_gated_repo_asks_for_a_token(tmp_path, hub):
    hub.faults.require_token = "hf_secret"
    with pytest.raises(DownloadError, match="token") as info:
        manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M")
    assert "HF_TOKEN" in info.value.message


def test_the_token_from_hf_token_is_sent(tmp_path, hub, model_bytes, monkeypatch):
    hub.faults.require_token = "hf_secret"
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M").read_bytes() == model_bytes


def test_a_server_error_is_retried_then_succeeds(tmp_path, hub, model_bytes):
    hub.faults.status, hub.faults.status_on, hub.faults.status_times = 503, "cdn", 2
    assert manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M").read_bytes() == model_bytes


def test_a_lasting_server_error_says_try_again_later(tmp_path, hub):
    hub.faults.status, hub.faults.status_on = 500, "cdn"
    with pytest.raises(DownloadError, match=r"having problems \(HTTP 500\)"):
        manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M")


def test_a_server_error_on_metadata_is_a_plain_sentence(tmp_path, hub):
    hub.faults.status, hub.faults.status_on = 500, "api"
    with pytest.raises(DownloadError, match="Try again later"):
        manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M")


def test_no_network_says_check_your_connection(tmp_path, hub):
    mm = manager(tmp_path, hub)
    hub.stop()  # nothing listens on the port any more
    with pytest.raises(DownloadError, match="Can't reach the Hub"):
        mm.ensure_available("tiny", "Q4_K_M")


def test_not_enough_disk_space_is_refused_before_any_byte_is_fetched(tmp_path, hub, model_bytes):
    mm = manager(tmp_path, hub, free_space=lambda _p: len(model_bytes) - 1)
    with pytest.raises(DownloadError, match="Not enough disk space"):
        mm.ensure_available("tiny", "Q4_K_M")
    assert hub.served(FILE) == 0
    assert not any("/resolve/" in r.path for r in hub.requests)


def test_free_space_check_counts_only_the_bytes_still_missing(tmp_path, hub, model_bytes):
    hub.faults.trickle_bps = 400_000
    user = CancelAfter(300_000)
    with pytest.raises(DownloadCancelled):
        manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M", progress=user, cancel=user.cancel)
    have = part_path(tmp_path).stat().st_size
    hub.faults.trickle_bps = None
    mm = manager(tmp_path, hub, free_space=lambda _p: len(model_bytes) - have)
    assert mm.ensure_available("tiny", "Q4_K_M").read_bytes() == model_bytes


def test_a_catalog_pinned_hash_that_the_hub_contradicts_is_refused(tmp_path, hub):
    entry = gguf_entry(REPO, hub.commit, FILE, sha256="0" * 64)
    with pytest.raises(DownloadError, match="changed upstream"):
        manager(tmp_path, hub, entry=entry).ensure_available("tiny", "Q4_K_M")
    assert hub.served(FILE) == 0


def test_a_file_replaced_upstream_is_refused_before_a_byte_is_fetched(tmp_path, model_bytes):
    """The catalog pins the bytes it vouches for; the Hub now serves another file under the same name
    (here: another level), with metadata that says so. That is a refusal, never a quiet accept."""
    pinned = gguf_entry(REPO, "main", FILE, sha256=hashlib.sha256(model_bytes).hexdigest(), size=len(model_bytes))
    with FakeHub() as changed:
        changed.add_repo(REPO, {FILE: build_cached("small", "Q8_0", scripted=True).read_bytes()})
        with pytest.raises(DownloadError, match="The file changed upstream") as err:
            manager(tmp_path, changed, entry=pinned).ensure_available("tiny", "Q4_K_M")
        assert changed.served(FILE) == 0
    assert "Update TinyChat, or import the model file yourself" in err.value.message
    assert not (tmp_path / "models" / "llama.cpp" / "tiny-q4_k_m").exists()


def test_a_pinned_size_alone_that_the_hub_contradicts_is_refused(tmp_path, hub, model_bytes):
    entry = gguf_entry(REPO, hub.commit, FILE, size=len(model_bytes) + 1)
    with pytest.raises(DownloadError, match="changed upstream"):
        manager(tmp_path, hub, entry=entry).ensure_available("tiny", "Q4_K_M")
    assert hub.served(FILE) == 0


def test_a_pinned_hash_for_a_file_the_hub_no_longer_stores_in_lfs_is_refused(tmp_path, model_bytes):
    with FakeHub() as plain:
        plain.add_repo(REPO, {"tiny.q4_k_m.dat": model_bytes})  # not an LFS suffix: only a git blob id
        entry = gguf_entry(REPO, "main", "tiny.q4_k_m.dat", sha256=hashlib.sha256(model_bytes).hexdigest())
        with pytest.raises(DownloadError, match="changed upstream"):
            manager(tmp_path, plain, entry=entry).ensure_available("tiny", "Q4_K_M")


def test_a_catalog_pinned_hash_that_matches_is_accepted(tmp_path, hub, model_bytes):
    entry = gguf_entry(REPO, hub.commit, FILE, sha256=hashlib.sha256(model_bytes).hexdigest(), size=len(model_bytes))
    assert manager(tmp_path, hub, entry=entry).ensure_available("tiny", "Q4_K_M").read_bytes() == model_bytes


def test_a_part_file_longer_than_the_remote_file_is_discarded(tmp_path, hub, model_bytes):
    part = part_path(tmp_path)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * (len(model_bytes) + 10))
    assert manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M").read_bytes() == model_bytes


def test_a_part_file_with_wrong_bytes_fails_verification_and_is_removed(tmp_path, hub, model_bytes):
    part = part_path(tmp_path)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 1000)  # resumed from, but not the Hub's bytes: the sha256 catches it
    with pytest.raises(DownloadError, match="damaged"):
        manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M")
    assert not part.exists()


@pytest.mark.parametrize("status", [404, 500])
def test_a_refused_file_leaves_no_empty_part_file_behind(tmp_path, hub, status):
    hub.faults.status, hub.faults.status_on = status, "cdn"
    mm = manager(tmp_path, hub)
    with pytest.raises(DownloadError):
        mm.ensure_available("tiny", "Q4_K_M")
    assert not part_path(tmp_path).exists()
    assert mm.disk_usage() == ()  # nothing to resume, so nothing listed as a partial download


# --- how the body travels: tokens across redirects, proxies from the environment ------------------------
@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_the_token_goes_to_the_hub_but_not_to_a_cdn_on_another_host(tmp_path, hub, model_bytes, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    hub.faults.require_token, hub.faults.cdn_host = "hf_secret", "localhost"  # the Hub is 127.0.0.1
    assert manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M").read_bytes() == model_bytes
    resolve = [r for r in hub.requests if "/resolve/" in r.path]
    assert resolve and all(r.authorization == "Bearer hf_secret" for r in resolve)
    cdn = hub.cdn_requests()
    assert cdn and all(r.authorization is None for r in cdn)


def test_the_token_follows_a_redirect_on_the_same_host(tmp_path, hub, model_bytes, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M").read_bytes() == model_bytes
    assert all(r.authorization == "Bearer hf_secret" for r in hub.cdn_requests())


def test_the_file_comes_through_the_proxy_the_environment_names(tmp_path, hub, model_bytes, no_proxy_env):
    # The fake Hub also answers as a forward proxy: such a request names the whole URL on its request line.
    no_proxy_env.setenv("HTTP_PROXY", hub.endpoint.replace("127.0.0.1", "localhost"))
    assert manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M").read_bytes() == model_bytes
    cdn = hub.cdn_requests()
    assert cdn and all(r.target.startswith(hub.endpoint + "/cdn/") for r in cdn)


def test_no_proxy_sends_the_file_directly(tmp_path, hub, model_bytes, no_proxy_env):
    no_proxy_env.setenv("HTTP_PROXY", "http://localhost:9")  # nothing listens there: using it would fail
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
    assert manager(tmp_path, hub).ensure_available("tiny", "Q4_K_M").read_bytes() == model_bytes
    cdn = hub.cdn_requests()
    assert cdn and all(r.target.startswith("/cdn/") for r in cdn)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate (and its key, in the same file) for 127.0.0.1 and localhost."""
    path = tmp_path_factory.mktemp("tls") / "hub.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(path), "-out", str(path)],
                   check=True, capture_output=True)
    return path


@pytest.fixture
def tls_hub(model_bytes: bytes, certificate: Path):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate)
    with FakeHub(tls=context) as h:
        h.commit = h.add_repo(REPO, {FILE: model_bytes})
        yield h


def test_a_file_from_a_server_whose_certificate_is_not_trusted_is_refused(tls_hub, no_proxy_env):
    no_proxy_env.delenv("SSL_CERT_FILE", raising=False)
    no_proxy_env.delenv("SSL_CERT_DIR", raising=False)
    url = f"{tls_hub.endpoint}/{REPO}/resolve/main/{FILE}"
    with HubSession(tls_hub.endpoint) as session, pytest.raises(CannotConnect, match="CERTIFICATE_VERIFY_FAILED"):
        session.bodies.open(url, {})
    assert tls_hub.cdn_requests() == []


def test_a_file_comes_over_https_from_a_server_trusted_through_ssl_cert_file(tmp_path, tls_hub, model_bytes,
                                                                             certificate, no_proxy_env):
    no_proxy_env.setenv("SSL_CERT_FILE", str(certificate))
    no_proxy_env.setenv("HF_TOKEN", "hf_secret")
    tls_hub.faults.cdn_host = "localhost"
    assert manager(tmp_path, tls_hub).ensure_available("tiny", "Q4_K_M").read_bytes() == model_bytes
    cdn = tls_hub.cdn_requests()
    assert cdn and all(r.authorization is None for r in cdn)
