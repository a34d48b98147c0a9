"""The Hugging Face Hub connection the model manager uses: endpoint, token, HTTP client, repo metadata.

This is the only place in TinyChat that opens a network connection, and only when the user asks
for a download. huggingface_hub supplies what it is good at: the endpoint and URL layout
(`hf_hub_url`), auth and user-agent headers (`build_hf_headers`: `HF_TOKEN` or the saved login),
the `ModelInfo` parser and `filter_repo_objects` for allow-patterns.

Why not hf_hub's own session or `get_hf_file_metadata`: the app sets `HF_HUB_OFFLINE=1` at start so
nothing else can reach the network. huggingface_hub 2.x reads that variable once, at import, into
`constants.HF_HUB_OFFLINE`, and its shared httpx2 client refuses every request from a hook while it
is set. Flipping that module constant would open the network for every thread, not just this one
request. So this module owns one explicit `httpx2.Client`, configured like hf_hub's default (follow
redirects, proxies from the environment, TLS verification on) minus the offline hook, for metadata;
file bodies go through `bodies` (engine/body_fetch.py) with the same TLS context. Holding a
`HubSession` *is* the user's permission to go online.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from engine import network_log
from engine.types import DownloadError

if TYPE_CHECKING:
    import httpx2

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class RemoteFile:
    """One file of a repo at a commit: its size and the hash the Hub vouches for.
    `sha256` is the LFS oid for large files; small (non-LFS) files carry their git blob id."""

    name: str
    size: int
    sha256: str | None
    git_blob_id: str | None
    url: str


@dataclass(frozen=True)
class RemoteSnapshot:
    """The files to download from one repo, pinned to the commit the Hub resolved."""

    repo: str
    commit: str
    files: tuple[RemoteFile, ...]

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


def hub_endpoint(explicit: str | None = None) -> str:
    """The Hub address: an explicit value, else `HF_ENDPOINT` (read now, not at import), else huggingface.co."""
    return (explicit or os.environ.get("HF_ENDPOINT", "") or DEFAULT_ENDPOINT).rstrip("/")


def http_error(status: int, repo: str, what: str, error_code: str = "") -> DownloadError:
    """A plain sentence for an HTTP error status from the Hub."""
    detail = f"HTTP {status} {error_code} for {what} in {repo}".strip()
    if status == 401:
        return DownloadError(
            f"The Hub refused access to {repo}: it is private, gated or no longer exists. If you have "
            "access, set a Hugging Face token (HF_TOKEN or `hf auth login`) and try again.",
            detail,
        )
    if status == 403:
        return DownloadError(
            f"{repo} is gated: accept its terms on huggingface.co with your account, set a Hugging Face "
            "token (HF_TOKEN or `hf auth login`) and try again.",
            detail,
        )
    if status == 404:
        return DownloadError(
            f"{what} was not found on the Hub in {repo}: the catalog may be out of date. "
            "Update TinyChat or import the model file yourself.",
            detail,
        )
    if status == 429:
        return DownloadError("The Hub is rate-limiting downloads right now. Wait a few minutes and try again.", detail)
    if status >= 500:
        return DownloadError(
            f"The Hub is having problems (HTTP {status}). Try again later; the download will continue "
            "where it stopped.",
            detail,
        )
    return DownloadError(f"The Hub answered HTTP {status} for {what}. Try again later.", detail)


def network_error(exc: Exception, endpoint: str) -> DownloadError:
    """A plain sentence for a connection that could not be made at all (airplane mode's own when it refused)."""
    if network_log.refusal_in(exc) is not None:
        return network_log.airplane_error("the model", repr(exc))
    return DownloadError(
        f"Can't reach the Hub ({endpoint}): check your internet connection or proxy settings and try again. "
        "The download will continue where it stopped.",
        repr(exc),
    )


class HubSession:
    """An open line to the Hub for one user-requested download. Close it (or use `with`) when done.

    `stall_timeout` is how long a read may wait for the next byte before the transfer counts as stalled.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | bool | None = None,
        *,
        connect_timeout: float = 15.0,
        stall_timeout: float = 20.0,
    ) -> None:
        import httpx2  # imported here: nothing but a user-requested download loads the HTTP stack

        from engine.body_fetch import BodyFetcher

        self.endpoint = hub_endpoint(endpoint)
        self.token = token
        tls = httpx2.create_ssl_context(verify=True, trust_env=True)  # SSL_CERT_FILE/DIR, else the system's CAs
        self.client: httpx2.Client = httpx2.Client(
            follow_redirects=True,  # resolve → CDN; httpx drops Authorization on cross-origin hops
            timeout=httpx2.Timeout(connect=connect_timeout, read=stall_timeout, write=30.0, pool=30.0),
            trust_env=True,  # HTTPS_PROXY / NO_PROXY, as huggingface_hub does
            verify=tls,
        )
        # File bodies: the same TLS checks and environment proxies on a leaner stack (engine/body_fetch.py).
        self.bodies = BodyFetcher(tls, connect_timeout, stall_timeout)

    def __enter__(self) -> HubSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()
        self.bodies.close()

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Auth + user-agent headers exactly as huggingface_hub builds them (token from HF_TOKEN or login)."""
        from huggingface_hub.utils import build_hf_headers

        return build_hf_headers(token=self.token, library_name="tinychat", headers=extra)

    def file_url(self, repo: str, name: str, revision: str) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(repo, name, revision=revision, endpoint=self.endpoint)

    def snapshot(
        self,
        repo: str,
        revision: str,
        names: Sequence[str] = (),
        allow_patterns: Sequence[str] = (),
    ) -> RemoteSnapshot:
        """Resolve `revision` to a commit and describe the wanted files (sizes, hashes, URLs).

        One `model_info(files_metadata=True)` request: it lists every file with its size, blob id and
        LFS sha256, which is what both single-file and allow-pattern downloads need.
        """
        import httpx2
        from huggingface_hub.hf_api import ModelInfo
        from huggingface_hub.utils import filter_repo_objects

        url = f"{self.endpoint}/api/models/{repo}/revision/{quote(revision, safe='')}"
        try:
            with network_log.default_purpose("Hub metadata", repo):
                response = self.client.get(url, params={"blobs": "true"}, headers=self.headers())
                network_log.count_received(len(response.content))
        except httpx2.TimeoutException as exc:
            raise DownloadError(
                "The Hub did not answer in time. Check your connection and try again.", repr(exc)
            ) from exc
        except httpx2.TransportError as exc:
            raise network_error(exc, self.endpoint) from exc
        if response.status_code != 200:
            log.warning("model info %s: HTTP %s %s", url, response.status_code, response.text[:300])
            code = response.headers.get("X-Error-Code", "")
            raise http_error(response.status_code, repo, f"Revision {revision}", code)
        try:
            info = ModelInfo(**response.json())
            siblings = {s.rfilename: s for s in info.siblings or ()}
            commit = info.sha or revision
        except (ValueError, TypeError, KeyError) as exc:
            raise DownloadError(
                "The Hub sent a reply TinyChat does not understand. Try again later.", repr(exc)
            ) from exc

        wanted = list(names) or list(filter_repo_objects(sorted(siblings), allow_patterns=list(allow_patterns)))
        missing = [n for n in wanted if n not in siblings]
        if missing or not wanted:
            raise http_error(404, repo, f"File {missing[0] if missing else ', '.join(allow_patterns)}", "EntryNotFound")
        files = []
        for name in wanted:
            s = siblings[name]
            size = s.lfs.size if s.lfs else s.size
            if size is None:
                raise DownloadError("The Hub did not say how large the model file is. Try again later.", name)
            files.append(
                RemoteFile(
                    name=name,
                    size=int(size),
                    sha256=s.lfs.sha256.lower() if s.lfs else None,
                    git_blob_id=None if s.lfs else s.blob_id,
                    url=self.file_url(repo, name, commit),
                )
            )
        return RemoteSnapshot(repo=repo, commit=commit, files=tuple(files))
