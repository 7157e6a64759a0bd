"""Fetch one file over HTTP(S): resumable, retried with backoff, verified, renamed only when complete.

Reads a URL. Writes `<dest>.part` while the transfer runs (with `<dest>.part.json` remembering the
server's ETag/Last-Modified and size, so a later run can resume safely), then `<dest>` once the size
and, where known, the md5 are right. An interrupted or failed transfer leaves only the `.part` files,
which the next call resumes with an HTTP range request; a server that ignores ranges gets a full restart.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.atomic import write_text
from core.config import DownloadConfig

log = logging.getLogger(__name__)

USER_AGENT = "dcase-t2-toolkit-downloader"
# HTTP statuses worth retrying: the server or a proxy is busy or briefly broken.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class DownloadError(RuntimeError):
    """A file could not be fetched or verified; the message names it and says what to do."""


class Progress(Protocol):
    """What `fetch` reports progress to (a tqdm bar fits)."""

    def reset(self, total: int | None = None) -> None: ...

    def update(self, n: int) -> object: ...


@dataclass(frozen=True)
class FetchSettings:
    retries: int = 5  # further attempts after a network error
    backoff_seconds: float = 2.0  # wait before the first retry; doubles with each retry
    max_backoff_seconds: float = 60.0
    timeout_seconds: float = 60.0
    chunk_bytes: int = 1 << 20

    @classmethod
    def from_config(cls, cfg: DownloadConfig) -> FetchSettings:
        """The settings of the `download` configuration section."""
        return cls(
            retries=cfg.retries,
            backoff_seconds=cfg.backoff_seconds,
            timeout_seconds=cfg.timeout_seconds,
            chunk_bytes=cfg.chunk_bytes,
        )


class _Retryable(Exception):
    """A transient failure: the transfer may succeed if tried again."""


def partial_path(dest: Path) -> Path:
    """Where the bytes of an unfinished transfer to `dest` are kept."""
    return dest.with_name(dest.name + ".part")


def _meta_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def file_md5(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex md5 of a file, read in chunks."""
    digest = hashlib.md5()
    with path.open("rb") as f:
        while block := f.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def remote_size(url: str, timeout: float = 30.0) -> int | None:
    """The size a server announces for `url` (HEAD request), or None if it does not say or fails."""
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
    except (OSError, http.client.HTTPException, ValueError) as e:
        log.debug("HEAD %s failed: %s", url, e)
        return None
    return int(length) if length and length.isdigit() else None


def fetch(
    url: str,
    dest: Path,
    md5: str | None = None,
    settings: FetchSettings = FetchSettings(),
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Download `url` to `dest`, resuming `<dest>.part` if an earlier transfer left one.

    Network errors, dropped connections and busy servers (HTTP 5xx, 429) are retried
    `settings.retries` times with exponential backoff, each attempt resuming where the last stopped.
    The file is renamed to `dest` only when it has the announced size and, if `md5` is given, that md5.

    Returns:
        `dest`.
    Raises:
        DownloadError: a permanent HTTP error (e.g. 404), retries exhausted (the `.part` file is kept
            for the next run), an md5 mismatch (the bad file is removed), or cancellation.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = partial_path(dest)
    failures = 0
    while True:
        try:
            _transfer(url, part, _meta_path(dest), settings, progress, cancel)
            break
        except _Retryable as e:
            failures += 1
            have = part.stat().st_size if part.exists() else 0
            if failures > settings.retries:
                raise DownloadError(
                    f"could not download {dest.name} from {url} after {failures} attempts ({e}); "
                    f"{have} bytes are kept in {part}: rerun the same command to resume"
                ) from None
            wait = min(settings.backoff_seconds * 2 ** (failures - 1), settings.max_backoff_seconds)
            log.warning(
                "%s: %s; retrying in %.1f s from byte %d (retry %d of %d)",
                dest.name,
                e,
                wait,
                have,
                failures,
                settings.retries,
            )
            if cancel is not None and cancel.wait(wait):
                raise DownloadError(f"download of {dest.name} cancelled; rerun to resume from {part}") from None
            if cancel is None:
                time.sleep(wait)
    if md5 is not None:
        actual = file_md5(part, settings.chunk_bytes)
        if actual != md5.lower():
            part.unlink()
            _meta_path(dest).unlink(missing_ok=True)
            raise DownloadError(
                f"md5 mismatch for {dest.name} downloaded from {url}: got {actual}, the catalogue records {md5}. "
                f"The bad file was removed. Rerun to download it again; if the mismatch persists, the server "
                f"(check --base-url) serves a different file than datasets/dcase_catalog.yaml describes"
            )
    os.replace(part, dest)
    _meta_path(dest).unlink(missing_ok=True)
    return dest


def _transfer(
    url: str,
    part: Path,
    meta_path: Path,
    settings: FetchSettings,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> None:
    """One HTTP request: continue `part` from its current size (or restart it) until the body ends."""
    have = part.stat().st_size if part.exists() else 0
    meta = _read_meta(meta_path) if have else {}
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
        etag = meta.get("etag")
        # If-Range needs a strong validator; with a weak ETag the date is the safer check.
        validator = etag if etag and not etag.startswith("W/") else meta.get("last_modified")
        if validator:
            # The server answers 200 with the whole file instead of 206 if the file changed since.
            headers["If-Range"] = validator
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=settings.timeout_seconds)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            total = _content_range_total(e.headers.get("Content-Range", ""))
            if total == have:
                return  # the previous attempt already received every byte
            part.unlink()
            raise _Retryable("the server refused to resume the partial file; starting again") from None
        if e.code in RETRY_STATUSES:
            raise _Retryable(f"HTTP {e.code} {e.reason}") from None
        raise DownloadError(
            f"{url} answered HTTP {e.code} {e.reason}: the file is not there. Check --base-url (a mirror must "
            f"serve /records/<id>/files/<zip>) and the record in datasets/dcase_catalog.yaml"
        ) from None
    except (OSError, http.client.HTTPException) as e:
        raise _Retryable(f"{type(e).__name__}: {e}") from None
    with response:
        if response.status == 206:
            start, total = _content_range(response.headers.get("Content-Range", ""))
            if start != have:
                part.unlink()
                raise _Retryable(f"the server resumed at byte {start} instead of {have}; starting again")
            mode = "ab"
        else:
            if have:
                log.info(
                    "%s: the server does not resume transfers (HTTP %d to a range request); restarting from the beginning",
                    part.name,
                    response.status,
                )
            have, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            _write_meta(
                meta_path,
                {
                    "url": url,
                    "etag": response.headers.get("ETag"),
                    "last_modified": response.headers.get("Last-Modified"),
                    "total": total,
                },
            )
        if progress is not None:
            progress.reset(total=total)
            progress.update(have)
        try:
            with part.open(mode) as f:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise DownloadError(f"download of {part.name} cancelled; rerun to resume it")
                    chunk = response.read(settings.chunk_bytes)
                    if not chunk:
                        break
                    f.write(chunk)
                    have += len(chunk)
                    if progress is not None:
                        progress.update(len(chunk))
        except (OSError, http.client.HTTPException) as e:
            if isinstance(e, OSError) and e.errno == 28:  # ENOSPC: retrying cannot help
                raise DownloadError(
                    f"no space left on the device while writing {part}: free space and rerun to resume"
                ) from None
            raise _Retryable(f"connection lost after {have} bytes ({type(e).__name__}: {e})") from None
    if total is not None and have < total:
        raise _Retryable(f"connection closed after {have} of {total} bytes")
    if total is not None and have > total:
        part.unlink()
        raise _Retryable(f"received {have} bytes but {total} were announced; starting again")


def _content_range(value: str) -> tuple[int, int | None]:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value)
    if not match:
        raise _Retryable(f"unusable Content-Range {value!r}")
    total = match.group(3)
    return int(match.group(1)), (int(total) if total != "*" else None)


def _content_range_total(value: str) -> int | None:
    match = re.fullmatch(r"\s*bytes\s+\*/(\d+)\s*", value)
    return int(match.group(1)) if match else None


def _read_meta(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_meta(path: Path, meta: dict) -> None:
    write_text(path, json.dumps(meta))
