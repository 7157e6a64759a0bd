"""A real HTTP server on 127.0.0.1 that serves files like Zenodo, and zips built in the DCASE layout.

The server can refuse range requests, drop the connection part-way through a file, and change a
file's ETag; it records every request so tests can check what the client asked for.
"""

from __future__ import annotations

import hashlib
import io
import re
import socket
import threading
import time
import wave
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Served:
    body: bytes
    drops: list[int] = field(default_factory=list)  # per coming GET: close after this many body bytes
    etag: str | None = None
    delay: float = 0.0  # seconds to wait after each 16 KB sent (a slow server)

    def __post_init__(self):
        if self.etag is None:
            self.etag = '"' + hashlib.md5(self.body).hexdigest() + '"'


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    if_range: str | None
    status: int


class FileServer:
    """Serves `files` (URL path -> Served) on 127.0.0.1; `ranges=False` makes it ignore Range."""

    def __init__(self):
        self.files: dict[str, Served] = {}
        self.ranges = True
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, path: str, body: bytes, drops: list[int] | None = None) -> Served:
        served = Served(body, list(drops or []))
        self.files[path] = served
        return served

    def gets(self, path: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and (path is None or r.path == path)]

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep the test output clean
                pass

            def _record(self, status: int) -> None:
                with server._lock:
                    server.requests.append(
                        Request(
                            self.command, self.path, self.headers.get("Range"), self.headers.get("If-Range"), status
                        )
                    )

            def do_HEAD(self):
                self._respond(head=True)

            def do_GET(self):
                self._respond(head=False)

            def _respond(self, head: bool) -> None:
                served = server.files.get(self.path)
                if served is None:
                    self._record(404)
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body, start, status = served.body, 0, 200
                wanted = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                if wanted and server.ranges and (if_range is None or if_range == served.etag):
                    start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
                    if start >= len(body):
                        self._record(416)
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                self._record(status)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("ETag", served.etag)
                if server.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if head:
                    return
                payload = body[start:]
                with server._lock:
                    drop = served.drops.pop(0) if served.drops else None
                if drop is not None:
                    self.wfile.write(payload[:drop])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                try:
                    for offset in range(0, len(payload), 16384):
                        self.wfile.write(payload[offset : offset + 16384])
                        if served.delay:
                            self.wfile.flush()
                            time.sleep(served.delay)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client went away

        return Handler


@pytest.fixture
def file_server():
    server = FileServer().start()
    yield server
    server.stop()


def tiny_wav() -> bytes:
    """A valid 16 kHz mono 16-bit WAV of 16 samples."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x01\x00" * 16)
    return buffer.getvalue()


def clip_names(kind: str, train: int = 1000, test: int = 200, section: str = "00") -> dict[str, list[str]]:
    """Folder -> clip names as DCASE 2022-2025 zips of `kind` hold them (990:10 source:target train
    split, a quarter of the test clips per domain and label; evaluation test clips anonymous)."""
    folders: dict[str, list[str]] = {}
    if kind in ("dev", "additional_train"):
        target = max(train // 100, 1)
        folders["train"] = [f"section_{section}_source_train_normal_{i:04d}_a_1.wav" for i in range(train - target)]
        folders["train"] += [f"section_{section}_target_train_normal_{i:04d}_a_2.wav" for i in range(target)]
    if kind == "dev":
        folders["test"] = [
            f"section_{section}_{domain}_test_{label}_{i:04d}_a_1.wav"
            for domain in ("source", "target")
            for label in ("normal", "anomaly")
            for i in range(test // 4)
        ]
    if kind == "eval_test":
        folders["test"] = [f"section_{section}_{i:04d}.wav" for i in range(test)]
    return folders


def build_zip(
    machine: str,
    folders: dict[str, list[str]],
    top: str | None = None,
    attributes: bool = True,
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """A zip holding `<top>/<folder>/<clip>.wav` (top defaults to the machine; "" for none) and an
    attribute table, like the official archives."""
    top = machine if top is None else top
    prefix = f"{top}/" if top else ""
    wav = tiny_wav()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        rows = ["file_name,d1p,d1v"]
        for folder, names in folders.items():
            for name in names:
                zf.writestr(f"{prefix}{folder}/{name}", wav)
                rows.append(
                    f"{machine}/{folder}/{name}," + ("a,1" if "_test_" not in name and folder == "train" else ",")
                )
        if attributes:
            zf.writestr(f"{prefix}attributes_00.csv", "\n".join(rows) + "\n")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buffer.getvalue()


def label_list_text(lists: dict[str, list[tuple[str, str]]], newline: str = "\r\n") -> str:
    """A label list in the official eval_data_list_<year>.csv format."""
    lines = []
    for machine, rows in lists.items():
        lines.append(machine)
        lines += [f"{a},{b}" for a, b in rows]
    return newline.join(lines) + newline


def eval_labels_for(names: list[str]) -> list[tuple[str, str]]:
    """(anonymous, labelled) pairs for anonymous evaluation names, a quarter per domain and label."""
    groups = [(d, l) for d in ("source", "target") for l in ("normal", "anomaly")]
    rows = []
    for i, anonymous in enumerate(names):
        domain, label = groups[i % 4]
        section = anonymous.split("_")[1]
        rows.append((anonymous, f"section_{section}_{domain}_test_{label}_{i:04d}_a_1.wav"))
    return rows


@pytest.fixture
def eval_corpus(tmp_path):
    """`<tmp>/eval_data/raw/<machine>/test/section_00_NNNN.wav` (anonymous, distinct bytes per clip) for
    two machine types, and their label list `<tmp>/eval_data_list_demo.csv` in the official format."""
    lists = {}
    for machine in ("SynthBlower", "SynthConveyor"):
        names = clip_names("eval_test", test=12)["test"]
        test_dir = tmp_path / "eval_data" / "raw" / machine / "test"
        test_dir.mkdir(parents=True)
        for i, name in enumerate(names):
            (test_dir / name).write_bytes(tiny_wav() + i.to_bytes(2, "little"))
        lists[machine] = eval_labels_for(names)[::-1]  # list order is not name order
    (tmp_path / "eval_data_list_demo.csv").write_text(label_list_text(lists), newline="")
    return tmp_path
