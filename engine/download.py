"""The resumable, verified file transfer behind every model download.

Why not `hf_hub_download` (huggingface_hub 2.4, checked in its source):
- it cannot resume after the process dies: each process writes its own uniquely named `.incomplete`
  file, so a restarted app starts from zero and the old partial file stays behind forever;
- it only compares the size, never the sha256, so wrong bytes of the right size are accepted;
- it has no cancel API (a raising `tqdm_class` at 10 MiB granularity is the only hook);
- and under the app's `HF_HUB_OFFLINE=1` its session refuses every request (see engine/hub.py).
So this module does the transfer itself: one `<name>.part` file per model file, a ranged GET from the
part's current size, sha256 computed incrementally (the bytes already on disk are re-hashed on resume),
the cancel Event checked for every block (≤ 1 MiB), stalls and dropped connections retried with
back-off, and only a verified file is moved into place with `os.replace`.

Speed: the body arrives through engine/body_fetch.py (urllib3: each socket read handed over as it is,
not the httpx stack the metadata uses, which copies every byte four times); each piece is written at
once (engine/part_writer.py) and hashed in batches of up to `chunk_size` on a thread of its own
(engine/file_hash.py `BackgroundHasher`), so on two cores the sha256 runs beside the transfer; cancel,
airplane mode and progress are checked once per batch or report interval, not per piece.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from engine import body_fetch, network_log
from engine.catalog import FileSpec
from engine.file_hash import BackgroundHasher, new_hasher, stream_file
from engine.hub import HubSession, RemoteFile, RemoteSnapshot, http_error, network_error
from engine.part_files import PART_SUFFIX, drop_empty_leftovers, free_bytes, part_bytes
from engine.part_writer import PartWriter
from engine.progress import Meter, ProgressFn, human
from engine.progress import Progress as Progress  # re-exported: the GUI's download code imports it from here
from engine.types import DownloadCancelled, DownloadError

log = logging.getLogger(__name__)

MiB = 1 << 20


@dataclass(frozen=True)
class TransferSettings:
    """Knobs for a transfer; tests shrink the timings."""

    chunk_size: int = MiB  # bytes written and hashed per block; cancel is checked once per block
    retries: int = 5  # consecutive failed attempts that brought no new bytes
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    margin_bytes: int = 256 * MiB  # kept free beyond the model itself
    report_interval_s: float = 0.1


class _Retryable(Exception):
    """An attempt failed in a way another attempt may fix; `error` is what to raise if none does."""

    def __init__(self, error: DownloadError) -> None:
        super().__init__(error.message)
        self.error = error


def _new_hash(remote: RemoteFile) -> BackgroundHasher:
    return BackgroundHasher(new_hasher("sha256" if remote.sha256 else "git-sha1", remote.size))


def _expected_digest(remote: RemoteFile) -> str | None:
    return remote.sha256 or remote.git_blob_id


def _dropped(detail: str) -> DownloadError:
    return DownloadError("The connection to the Hub kept dropping. Check your connection and try again; the "
                         "download will continue where it stopped.", detail)


class _FileTransfer:
    """Download one remote file into `<dest>/<name>.part`, verify it, move it to `<dest>/<name>`."""

    def __init__(self, session: HubSession, repo: str, remote: RemoteFile, dest_dir: Path, meter: Meter,
                 cancel: threading.Event, settings: TransferSettings) -> None:
        self.session, self.repo, self.remote = session, repo, remote
        self.meter, self.cancel, self.settings = meter, cancel, settings
        self.final = dest_dir / remote.name
        self.part = dest_dir / (remote.name + PART_SUFFIX)
        self.hasher = _new_hash(remote)

    def run(self) -> Path:
        try:
            return self._run()
        finally:
            self.hasher.close()

    def _run(self) -> Path:
        if self.final.exists():
            if self._final_is_good():
                return self.final
            self.final.unlink()
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self._resume_hash()
        self.meter.restart_speed()  # the bytes a previous run left were hashed, not downloaded just now
        failures = 0
        while self._have() < self.remote.size:
            self._check_cancel()
            before = self._have()
            try:
                self._attempt()
                if self._have() >= self.remote.size:
                    break
                last_error = _dropped(f"response ended at byte {self._have()} of {self.remote.size}")
            except _Retryable as exc:
                last_error = exc.error
            log.warning("download %s: %s (%s)", self.remote.name, last_error.message, last_error.detail)
            failures = 0 if self._have() > before else failures + 1
            if failures > self.settings.retries:
                raise last_error
            delay = min(self.settings.backoff_base_s * 2 ** max(failures - 1, 0), self.settings.backoff_max_s)
            self.cancel.wait(delay)
            self.meter.restart_speed()
        return self._verify_and_place()

    def _have(self) -> int:
        return self.part.stat().st_size if self.part.exists() else 0

    def _final_is_good(self) -> bool:
        """A final file was verified before it was moved into place; re-check it anyway (an interrupted
        multi-file job, or a crash between placing and recording) rather than trust a stray file."""
        start = self.meter.done
        expected = _expected_digest(self.remote)
        if self.final.stat().st_size == self.remote.size and self._hash_into(self.final) == expected:
            return True
        log.warning("discarding %s: it does not match the Hub's file", self.final)
        self.meter.done = start
        self._fresh_hasher()
        return False

    def _hash_into(self, path: Path) -> str:
        """Feed `path` into `self.hasher`, counting the bytes as done; returns the digest so far."""
        return stream_file(path, self.hasher, check_cancel=self._check_cancel, on_block=self._count_verified,
                           chunk_size=self.settings.chunk_size)

    def _count_verified(self, n: int) -> None:
        self.meter.done += n
        self.meter.report("verifying", self.remote.name)

    def _fresh_hasher(self) -> None:
        self.hasher.close()
        self.hasher = _new_hash(self.remote)

    def _resume_hash(self) -> None:
        """Hash the bytes a previous attempt (maybe a previous process) left in the part file."""
        self._fresh_hasher()
        if self._have() > self.remote.size:
            log.warning("part file %s is larger than the remote file; starting over", self.part)
            self.part.write_bytes(b"")
        elif self._have():
            log.info("resuming %s at byte %d of %d", self.remote.name, self._have(), self.remote.size)
            self._hash_into(self.part)

    def _restart_from_zero(self, why: str) -> None:
        log.warning("%s: %s; starting the file over", self.remote.name, why)
        self.meter.done -= self._have()
        self.part.write_bytes(b"")
        self._fresh_hasher()

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            have = self._have() if self.part.exists() else 0
            raise DownloadCancelled(
                f"Download cancelled. The {human(have)} already downloaded are kept; start it again to continue."
            )

    def _attempt(self) -> None:
        """One ranged GET from the part file's current size to the end (or the first failure)."""
        offset = self._have()
        headers = self.session.headers({"Range": f"bytes={offset}-", "Accept-Encoding": "identity"})
        try:
            response = self.session.bodies.open(self.remote.url, headers)
            try:
                self._check_status(response.status, response.headers, offset)
                self._receive(body_fetch.pieces(response, self.settings.chunk_size))
            finally:
                body_fetch.finish(response)
        except body_fetch.Stalled as exc:
            raise _Retryable(
                DownloadError(
                    "The download stalled: no data arrived for a while, several times in a row. Check your "
                    "connection and try again; it will continue where it stopped.",
                    str(exc),
                )
            ) from exc
        except body_fetch.CannotConnect as exc:
            error = network_error(exc, self.session.endpoint)
            if isinstance(error, network_log.AirplaneModeOn):
                raise error from exc  # refused here, not lost: trying again cannot help
            raise _Retryable(error) from exc
        except body_fetch.Dropped as exc:
            raise _Retryable(_dropped(str(exc))) from exc

    def _check_status(self, status: int, headers: Mapping[str, str], offset: int) -> None:
        """Raise unless the answer is the file from `offset` on (a 200 to a ranged request restarts it)."""
        if status == 416 or (status == 206 and _range_start(headers) != offset):
            self._restart_from_zero(f"server sent HTTP {status} for bytes={offset}-")
            raise _Retryable(DownloadError("The Hub sent an unexpected part of the file.", f"HTTP {status}"))
        if status == 200 and offset > 0:
            self._restart_from_zero("server ignored the Range header")
        elif status not in (200, 206):
            error = http_error(status, self.repo, f"File {self.remote.name}", headers.get("X-Error-Code", ""))
            if status == 429 or status >= 500:
                raise _Retryable(error)
            raise error

    def _receive(self, pieces: Iterator[bytes]) -> None:
        size, block, interval = self.remote.size, self.settings.chunk_size, self.settings.report_interval_s
        next_check = time.monotonic() + interval
        with self.part.open("ab", buffering=0) as f:
            writer = PartWriter(f, self.hasher, self._have(), size, self.remote.name)
            try:
                for piece in pieces:  # as the network delivers them, ≤ one block
                    writer.append(piece)
                    if writer.pending < block and writer.have < size and time.monotonic() < next_check:
                        continue
                    self._account(writer)
                    next_check = time.monotonic() + interval
                    self._check_cancel()
                    network_log.require_network(self.remote.name)  # airplane mode switched on mid-way stops it
                    self.meter.report("downloading", self.remote.name)
                    if writer.have >= size:
                        return
            finally:  # whatever was written is hashed and counted, so a retry continues from it
                self._account(writer)

    def _account(self, writer: PartWriter) -> None:
        received, written = writer.take()
        network_log.count_received(received)
        self.meter.done += written

    def _verify_and_place(self) -> Path:
        self.meter.report("verifying", self.remote.name, force=True)
        with self.part.open("ab+") as f:  # "a": an empty remote file never created its part
            os.fsync(f.fileno())
        digest = self.hasher.hexdigest()
        expected = _expected_digest(self.remote)
        if expected is not None and digest != expected.lower():
            self.part.unlink()
            self.meter.done -= self.remote.size
            raise DownloadError(
                f"The downloaded file {self.remote.name} is damaged: its checksum does not match the Hub's. "
                "It was deleted; try the download again.",
                f"digest {digest} != expected {expected}",
            )
        os.replace(self.part, self.final)
        log.info("verified and placed %s (%s)", self.final, digest)
        return self.final


def _range_start(headers: Mapping[str, str]) -> int | None:
    """First byte of a `Content-Range: bytes a-b/n` header, None if absent or malformed."""
    try:
        return int(headers.get("Content-Range", "").split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _check_against_catalog(remote: RemoteFile, spec: FileSpec | None) -> None:
    """A catalog that pins a size or hash must agree with the Hub's metadata, or the file is not the one
    this version vouches for: refused before a byte is fetched, never accepted quietly."""
    if spec is None:
        return
    size_differs = spec.size is not None and spec.size != remote.size
    hash_differs = spec.sha256 is not None and (remote.sha256 or "") != spec.sha256.lower()
    if size_differs or hash_differs:
        raise DownloadError(
            f"The file changed upstream: the Hub's {remote.name} is not the file this version of TinyChat "
            "expects, so it was not downloaded. Update TinyChat, or import the model file yourself.",
            f"catalog {spec} vs hub size={remote.size} sha256={remote.sha256}",
        )


def download_snapshot(
    session: HubSession,
    snapshot: RemoteSnapshot,
    dest_dir: Path,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    expected: Mapping[str, FileSpec] | None = None,
    extra_space: int = 0,
    settings: TransferSettings | None = None,
    free_space: Callable[[Path], int] = free_bytes,
) -> dict[str, Path]:
    """Download every file of `snapshot` into `dest_dir`, resuming `.part` files, verifying each one
    against the Hub's sha256 (or git blob id for small files) before it is moved into place.

    Refuses to start when the drive lacks the remaining bytes + `extra_space` (e.g. a conversion's
    output) + a margin. Raises `DownloadError` with a plain sentence, `DownloadCancelled` on cancel.
    """
    settings = settings or TransferSettings()
    cancel = cancel or threading.Event()
    expected = expected or {}
    for remote in snapshot.files:
        _check_against_catalog(remote, expected.get(remote.name))
    dest_dir.mkdir(parents=True, exist_ok=True)
    remaining = snapshot.total_size - part_bytes(dest_dir, snapshot)
    needed = remaining + extra_space + settings.margin_bytes
    free = free_space(dest_dir)
    if free < needed:
        raise DownloadError(
            f"Not enough disk space: this download needs {human(needed)} free (including a safety margin) "
            f"but the drive holding {dest_dir} has {human(free)}. Free some space and try again.",
            f"needed={needed} free={free}",
        )
    meter = Meter(progress, snapshot.total_size, settings.report_interval_s)
    placed: dict[str, Path] = {}
    try:
        # Smallest first: a job interrupted late leaves only the big file to resume.
        for remote in sorted(snapshot.files, key=lambda f: f.size):
            placed[remote.name] = _FileTransfer(
                session, snapshot.repo, remote, dest_dir, meter, cancel, settings
            ).run()
    except BaseException:
        drop_empty_leftovers(dest_dir)
        raise
    return placed

