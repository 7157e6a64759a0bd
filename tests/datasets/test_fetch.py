"""datasets.fetch.fetch against a real HTTP server on 127.0.0.1: resume, retry, restart, md5."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from datasets.fetch import DownloadError, FetchSettings, fetch, partial_path, remote_size

FAST = FetchSettings(retries=3, backoff_seconds=0.01, timeout_seconds=5, chunk_bytes=4096)
BODY = os.urandom(200_000)
MD5 = hashlib.md5(BODY).hexdigest()
PATH = "/records/1/files/dev_fan.zip"


def test_full_download_is_verified_and_renamed(file_server, tmp_path):
    file_server.add(PATH, BODY)
    dest = fetch(file_server.url + PATH, tmp_path / "dev_fan.zip", md5=MD5, settings=FAST)
    assert dest.read_bytes() == BODY
    assert not partial_path(dest).exists() and not (tmp_path / "dev_fan.zip.part.json").exists()
    assert [r.range for r in file_server.gets()] == [None]


def test_dropped_connection_resumes_with_a_range_request(file_server, tmp_path):
    file_server.add(PATH, BODY, drops=[70_000])
    dest = fetch(file_server.url + PATH, tmp_path / "dev_fan.zip", md5=MD5, settings=FAST)
    assert dest.read_bytes() == BODY
    first, second = file_server.gets()
    assert (first.status, first.range) == (200, None)
    assert (second.status, second.range) == (206, "bytes=70000-")
    assert second.if_range == file_server.files[PATH].etag  # resumes only the same file


def test_interrupted_run_leaves_a_part_file_that_the_next_run_resumes(file_server, tmp_path):
    file_server.add(PATH, BODY, drops=[50_000])
    dest = tmp_path / "dev_fan.zip"
    with pytest.raises(DownloadError, match="rerun the same command to resume"):
        fetch(file_server.url + PATH, dest, md5=MD5, settings=FetchSettings(retries=0, chunk_bytes=4096))
    assert not dest.exists()
    assert partial_path(dest).stat().st_size == 50_000
    assert json.loads((tmp_path / "dev_fan.zip.part.json").read_text())["total"] == len(BODY)

    fetch(file_server.url + PATH, dest, md5=MD5, settings=FAST)
    assert dest.read_bytes() == BODY
    assert file_server.gets()[-1].range == "bytes=50000-" and file_server.gets()[-1].status == 206


def test_weak_etag_is_not_used_to_guard_a_resume(file_server, tmp_path):
    served = file_server.add(PATH, BODY, drops=[40_000])
    served.etag = 'W/"weak"'
    fetch(file_server.url + PATH, tmp_path / "dev_fan.zip", md5=MD5, settings=FAST)
    second = file_server.gets()[-1]
    assert (second.range, second.if_range, second.status) == ("bytes=40000-", None, 206)


def test_server_without_range_support_restarts_from_the_beginning(file_server, tmp_path):
    file_server.ranges = False
    file_server.add(PATH, BODY, drops=[80_000, 30_000])
    dest = fetch(file_server.url + PATH, tmp_path / "dev_fan.zip", md5=MD5, settings=FAST)
    assert dest.read_bytes() == BODY
    statuses = [(r.status, r.range) for r in file_server.gets()]
    assert statuses == [(200, None), (200, "bytes=80000-"), (200, "bytes=30000-")]


def test_changed_file_on_the_server_is_fetched_again_not_spliced(file_server, tmp_path):
    dest = tmp_path / "dev_fan.zip"
    file_server.add(PATH, os.urandom(len(BODY)), drops=[60_000])
    with pytest.raises(DownloadError):
        fetch(file_server.url + PATH, dest, settings=FetchSettings(retries=0))
    file_server.add(PATH, BODY)  # a new upload: new bytes, new ETag
    fetch(file_server.url + PATH, dest, md5=MD5, settings=FAST)
    assert dest.read_bytes() == BODY
    assert file_server.gets()[-1].status == 200


def test_md5_mismatch_names_the_file_and_leaves_nothing(file_server, tmp_path):
    file_server.add(PATH, BODY)
    dest = tmp_path / "dev_fan.zip"
    with pytest.raises(DownloadError) as e:
        fetch(file_server.url + PATH, dest, md5="0" * 32, settings=FAST)
    assert "dev_fan.zip" in str(e.value) and "0" * 32 in str(e.value) and MD5 in str(e.value)
    assert "Rerun" in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_file_fails_at_once_without_retries(file_server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(file_server.url + "/records/1/files/nope.zip", tmp_path / "nope.zip", settings=FAST)
    assert len(file_server.gets()) == 1


def test_unreachable_server_gives_up_after_the_retries(tmp_path):
    with pytest.raises(DownloadError, match="after 3 attempts"):
        fetch(
            "http://127.0.0.1:9/x.zip",
            tmp_path / "x.zip",
            settings=FetchSettings(retries=2, backoff_seconds=0.01, timeout_seconds=2),
        )


def test_remote_size_from_head(file_server):
    file_server.add(PATH, BODY)
    assert remote_size(file_server.url + PATH) == len(BODY)
    assert remote_size(file_server.url + "/missing") is None
