"""./00_download.sh and tools.download end to end against a real HTTP server on 127.0.0.1 that serves
zips built in the DCASE layout at Zenodo's URL paths."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import pytest

from datasets.catalog import year_info
from datasets.manifest import EVAL_LABELS_FILE, machine_clips, open_dataset
from tests.conftest import run_script
from tests.zenodo_fixtures import build_zip, clip_names, eval_labels_for, label_list_text
from tools import download

YEAR = 2024
INFO = year_info(YEAR)
DEV, EVAL = "fan", "3DPrinter"  # 3DPrinter's training zip has the re-uploaded name *_train_r2.zip
FAST = ["--download.backoff_seconds", "0.01", "--download.timeout_seconds", "5", "--download.chunk_bytes", "16384"]


@pytest.fixture(scope="module")
def zips():
    """URL path -> zip bytes for one development and one evaluation machine type of 2024, with the
    catalogue's clip counts, and the label list of the evaluation test clips."""
    test_names = clip_names("eval_test")["test"]
    served = {
        "dev": build_zip(DEV, clip_names("dev")),
        "additional_train": build_zip(EVAL, clip_names("additional_train")),
        "eval_test": build_zip(EVAL, clip_names("eval_test")),
    }
    paths = {kind: "/" + INFO.archive(kind, DEV if kind == "dev" else EVAL).url("").lstrip("/") for kind in served}
    return {
        "bodies": {paths[k]: v for k, v in served.items()},
        "paths": paths,
        "list": label_list_text({EVAL: eval_labels_for(test_names)}),
    }


@pytest.fixture
def served(file_server, zips):
    for path, body in zips["bodies"].items():
        file_server.add(path, body)
    return file_server


def args(server, root, *extra):
    return ["--year", str(YEAR), "--data-root", str(root), "--base-url", server.url, *FAST, *extra]


def test_full_download_unpack_and_label_with_the_shell_script_then_a_rerun_skips(served, zips, tmp_path, repo_root):
    label_list = tmp_path / "eval_data_list_2024.csv"
    label_list.write_text(zips["list"], newline="")
    root = tmp_path / "data"
    command = [
        str(repo_root / "00_download.sh"),
        "-d",
        "-a",
        "-e",
        "--machines",
        f"{DEV},{EVAL}",
        "--jobs",
        "2",
        "--label-list",
        str(label_list),
        *args(served, root),
    ]
    first = run_script(command, cwd=tmp_path, timeout=120)
    assert first.returncode == 0, first.stderr
    log = first.stderr
    assert "Stage 1: download: 3 archives" in log and "to fetch: 3 of 3 files" in log
    assert "Stage 2: unpack" in log and "Stage 3: label" in log
    assert sorted(r.path for r in served.gets()) == sorted(zips["paths"].values())

    dataset = root / "dcase2024t2"
    dev_fan, eval_printer = dataset / "dev_data" / "raw" / DEV, dataset / "eval_data" / "raw" / EVAL
    assert sorted(p.name for p in dev_fan.iterdir()) == [".completed_dev_fan.zip", "attributes_00.csv", "test", "train"]
    assert sorted(p.name for p in eval_printer.iterdir()) == [
        ".completed_eval_data_3DPrinter_test.zip",
        ".completed_eval_data_3DPrinter_train_r2.zip",
        "attributes_00.csv",
        EVAL_LABELS_FILE,
        "test",
        "test_rename",
        "train",
    ]
    assert len(list((eval_printer / "test_rename").iterdir())) == 200
    assert sorted(p.name for p in (dataset / "zips").iterdir()) == sorted(
        ["dev_fan.zip", "eval_data_3DPrinter_train_r2.zip", "eval_data_3DPrinter_test.zip"]
    )
    assert (dataset / "download.log").is_file()
    assert len(open_dataset(root, YEAR, "dev", []).clips(DEV, "train")) == 1000
    evaluation = machine_clips(dataset / "eval_data" / "raw", EVAL, "test")
    assert len(evaluation) == 200 and all(c.is_labelled for c in evaluation)

    requests_before = len(served.requests)
    again = run_script(command, cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("already unpacked, skipping") >= 3
    assert "to fetch: 0 of 3 files" in again.stderr and "already labelled with this list, skipping" in again.stderr
    assert len(served.requests) == requests_before  # nothing fetched, not even a HEAD


def test_dropped_connection_then_a_resumed_run(served, zips, tmp_path):
    path = zips["paths"]["dev"]
    served.files[path].drops = [100_000]
    root = tmp_path / "data"
    assert download.main(["-d", "--machines", DEV, "--download.retries", "0", *args(served, root)]) == 1
    zips_dir = root / "dcase2024t2" / "zips"
    assert (zips_dir / "dev_fan.zip.part").stat().st_size == 100_000
    assert not (zips_dir / "dev_fan.zip").exists() and not (root / "dcase2024t2" / "dev_data" / "raw" / DEV).exists()

    assert download.main(["-d", "--machines", DEV, *args(served, root)]) == 0
    last = served.gets(path)[-1]
    assert (last.range, last.status) == ("bytes=100000-", 206)
    assert (zips_dir / "dev_fan.zip").read_bytes() == zips["bodies"][path]
    assert len(machine_clips(root / "dcase2024t2" / "dev_data" / "raw", DEV, "test")) == 200


def _as_from_a_terminal() -> None:
    """Start the script with Ctrl-C deliverable, as a shell starts it. Signal masks and ignored
    dispositions are inherited: in the whole suite (not alone) the script twice finished with 0 as if
    the Ctrl-C never arrived, which a SIGINT held or ignored in this pytest process would explain."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupted_script_keeps_the_partial_file_and_the_rerun_resumes_it(served, zips, tmp_path, repo_root):
    path = zips["paths"]["dev"]
    # about 80 KB/s: slow enough to interrupt mid-file even when this process is starved of CPU
    # (at 0.3 MB/s a machine at load average 20 finished the whole file before the test looked)
    served.files[path].delay = 0.2
    root = tmp_path / "data"
    part = root / "dcase2024t2" / "zips" / "dev_fan.zip.part"
    command = [str(repo_root / "00_download.sh"), "-d", "--machines", DEV, *args(served, root)]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**os.environ, "PYTHON": sys.executable},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_from_a_terminal,
    )
    deadline = time.monotonic() + 30
    while not (part.exists() and part.stat().st_size >= 32768) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert part.exists(), "the download never started a partial file within 30 s"
    process.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "interrupted: partial downloads are kept" in err
    kept = part.stat().st_size
    assert 0 < kept < len(zips["bodies"][path])
    assert not (root / "dcase2024t2" / "zips" / "dev_fan.zip").exists()
    assert not (root / "dcase2024t2" / "dev_data" / "raw" / DEV).exists()

    served.files[path].delay = 0
    assert download.main(["-d", "--machines", DEV, *args(served, root)]) == 0
    assert served.gets(path)[-1].range == f"bytes={kept}-"
    assert (root / "dcase2024t2" / "dev_data" / "raw" / DEV / ".completed_dev_fan.zip").is_file()


def test_server_without_ranges_restarts_the_file(served, zips, tmp_path, capsys):
    served.ranges = False
    path = zips["paths"]["additional_train"]
    served.files[path].drops = [50_000]
    root = tmp_path / "data"
    assert download.main(["-a", "--machines", EVAL, "--stop_stage", "1", *args(served, root)]) == 0
    assert [r.status for r in served.gets(path)] == [200, 200]
    assert (root / "dcase2024t2" / "zips" / "eval_data_3DPrinter_train_r2.zip").read_bytes() == zips["bodies"][path]
    assert "does not resume transfers" in capsys.readouterr().err


def test_md5_mismatch_stops_with_the_file_named(file_server, zips, tmp_path, capsys):
    # 2023 zips have md5s in the catalogue; the test server's zip is not the real one
    archive = year_info(2023).archive("dev", "fan")
    file_server.add(archive.url(""), zips["bodies"][zips["paths"]["dev"]])
    root = tmp_path / "data"
    status = download.main(
        ["-d", "--year", "2023", "--machines", "fan", "--data-root", str(root), "--base-url", file_server.url, *FAST]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert "md5 mismatch for dev_fan.zip" in err and archive.md5 in err and "1 of 1 archives failed: dev_fan.zip" in err
    assert not (root / "dcase2023t2" / "dev_data" / "raw" / "fan").exists()
    assert list((root / "dcase2023t2" / "zips").iterdir()) == []


def test_truncated_zip_stops_and_a_rerun_fetches_it_again(served, zips, tmp_path, capsys):
    path = zips["paths"]["dev"]
    good = zips["bodies"][path]
    served.add(path, good[: len(good) - 5000])
    root = tmp_path / "data"
    assert download.main(["-d", "--machines", DEV, *args(served, root)]) == 1
    err = capsys.readouterr().err
    assert "dev_fan.zip is corrupt or truncated" in err and "rerun the same command" in err
    assert not (root / "dcase2024t2" / "dev_data" / "raw" / DEV).exists()
    assert not (root / "dcase2024t2" / "dev_data" / ".tmp").exists()

    served.add(path, good)
    assert download.main(["-d", "--machines", DEV, *args(served, root)]) == 0
    assert (root / "dcase2024t2" / "dev_data" / "raw" / DEV / ".completed_dev_fan.zip").is_file()


def test_label_list_from_a_url_and_an_unreachable_one(served, zips, tmp_path, capsys):
    served.add("/lists/eval_data_list_2024.csv", zips["list"].encode())
    root = tmp_path / "data"
    status = download.main(
        [
            "-e",
            "--machines",
            EVAL,
            "--download.retries",
            "0",
            "--label-list",
            "http://127.0.0.1:9/eval_data_list_2024.csv",
            *args(served, root),
        ]
    )
    err = capsys.readouterr().err
    assert status == 1 and "could not fetch the label list" in err
    machine = root / "dcase2024t2" / "eval_data" / "raw" / EVAL
    assert (machine / "test").is_dir() and not (machine / "test_rename").exists()  # data complete, unlabelled

    status = download.main(
        ["-e", "--machines", EVAL, "--label-list", served.url + "/lists/eval_data_list_2024.csv", *args(served, root)]
    )
    assert status == 0
    assert (machine / "test_rename").is_dir() and (machine / EVAL_LABELS_FILE).is_file()


def test_dry_run_no_label_and_not_keeping_zips(served, zips, tmp_path, capsys):
    root = tmp_path / "data"
    assert download.main(["-e", "--machines", EVAL, "--dry-run", *args(served, root)]) == 0
    err = capsys.readouterr().err
    size = len(zips["bodies"][zips["paths"]["eval_test"]])
    assert "eval_data_3DPrinter_test.zip" in err and f"{size / 1000:.1f} KB" in err
    assert served.gets() == [] and not (root / "dcase2024t2" / "zips").exists()

    assert (
        download.main(["-e", "--machines", EVAL, "--no-label", "--download.keep_zips", "false", *args(served, root)])
        == 0
    )
    assert "skipped (--no-label)" in capsys.readouterr().err
    assert not (root / "dcase2024t2" / "eval_data" / "raw" / EVAL / "test_rename").exists()
    assert list((root / "dcase2024t2" / "zips").iterdir()) == []  # keep_zips false: removed once unpacked


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["-e", "--year", "2026"],
            "DCASE2026 Task 2 has no published evaluation test data yet; the newest year that has it is 2025",
        ),
        (["-d", "--year", "2024", "--machines", "fan,hovercraft"], "hovercraft is not a machine type of DCASE2024"),
        (["-d", "--year", "2024", "--machines", "3DPrinter"], "none of --machines 3DPrinter has development data"),
        (["-d", "--year", "2019"], "config key 'data.year' must be >= 2020, got 2019"),
    ],
)
def test_impossible_requests_say_why(argv, message, tmp_path, capsys):
    assert download.main([*argv, "--data-root", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err


def test_nothing_chosen_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        download.main(["--year", "2024"])
    assert e.value.code == 2 and "choose what to download" in capsys.readouterr().err


def test_help_documents_every_option(repo_root):
    result = run_script([str(repo_root / "00_download.sh"), "-h"], timeout=60)
    assert result.returncode == 0
    for action in download.get_parser()._actions:
        if action.help == argparse.SUPPRESS:  # the --section.key options, explained in the epilog
            continue
        for option in action.option_strings:
            assert option in result.stdout, option
        assert action.help and action.help.split()[0] in result.stdout
