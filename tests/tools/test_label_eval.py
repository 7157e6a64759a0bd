"""python -m tools.label_eval: labelling the evaluation clips with a list file, a URL, or none."""

from __future__ import annotations

from datasets.manifest import EVAL_LABELS_FILE
from tools import label_eval


def test_label_eval_command_with_a_file(eval_corpus):
    status = label_eval.main(
        [
            "--label-list",
            str(eval_corpus / "eval_data_list_demo.csv"),
            "--data-root",
            str(eval_corpus),
            "--year",
            "2024",
        ]
    )
    assert status == 0
    for machine in ("SynthBlower", "SynthConveyor"):
        assert (eval_corpus / "eval_data" / "raw" / machine / EVAL_LABELS_FILE).is_file()


def test_label_eval_command_with_a_url(eval_corpus, file_server):
    file_server.add("/lists/eval_data_list_2024.csv", (eval_corpus / "eval_data_list_demo.csv").read_bytes())
    url = file_server.url + "/lists/eval_data_list_{year}.csv"
    status = label_eval.main(["--data-root", str(eval_corpus), "--year", "2024", "--download.label_list_url", url])
    assert status == 0
    assert (eval_corpus / "dcase2024t2" / "eval_data_list_2024.csv").is_file()
    assert (eval_corpus / "eval_data" / "raw" / "SynthBlower" / "test_rename").is_dir()


def test_label_eval_command_without_a_list_says_so(tmp_path, capsys):
    assert label_eval.main(["--data-root", str(tmp_path), "--year", "2026"]) == 1
    assert "no label list is published for DCASE2026" in capsys.readouterr().err


def test_label_eval_command_with_an_unreachable_list_says_what_to_do(eval_corpus, capsys):
    status = label_eval.main(
        [
            "--data-root",
            str(eval_corpus),
            "--year",
            "2024",
            "--label-list",
            "http://127.0.0.1:9/eval_data_list_2024.csv",
            "--download.retries",
            "0",
            "--download.timeout_seconds",
            "2",
        ]
    )
    assert status == 1
    err = capsys.readouterr().err
    assert "could not fetch the label list" in err and "--label-list FILE" in err
