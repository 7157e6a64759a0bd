"""reporting.score_log: the score CSV of 04_score.sh round-trips its values exactly, a watcher
continues it after a restart, a line torn by a crash is cut off, and a CSV of other settings is refused."""

from __future__ import annotations

import json
import logging

import pytest

from reporting.score_log import ScoreLog, ScoreLogError, ScoreRow, read_scores, state_path, write_scores

SETTINGS = {"model": "/m/fan", "system": "classical", "scorer": "knn", "threshold_quantile": 0.9}
ROWS = [
    ScoreRow("/in/a b.wav", "fan", "00", "2026-11-30T08:00:00", 0.1 + 0.2, 0, 1 / 3, 42.0),
    ScoreRow("/in/c,d.wav", "fan", "00", "2026-11-30T09:00:00", 12.5, 1, 1 / 3, 100.0),
]


def test_rows_read_back_bit_for_bit(tmp_path):
    out = tmp_path / "scores.csv"
    write_scores(out, ROWS, SETTINGS)
    assert read_scores(out) == ROWS
    assert out.read_text().splitlines()[0] == "file,machine,section,modified,score,decision,threshold,percentile"
    assert json.loads(state_path(out).read_text()) == SETTINGS


def test_a_watcher_continues_its_csv_and_cuts_off_a_torn_line(tmp_path, caplog):
    out = tmp_path / "scores.csv"
    assert ScoreLog(out, SETTINGS).resume() == []
    ScoreLog(out, SETTINGS).append(ROWS[:1])
    with out.open("a") as f:
        f.write("/in/torn.wav,fan,00,2026-11-30T1")  # a crash in the middle of a write
    log = ScoreLog(out, SETTINGS)
    with caplog.at_level(logging.WARNING):
        assert log.resume() == ROWS[:1]
    assert "its last line was cut off" in caplog.text
    log.append(ROWS[1:])
    assert read_scores(out) == ROWS


def test_a_csv_of_other_settings_or_of_another_program_is_refused(tmp_path):
    out = tmp_path / "scores.csv"
    write_scores(out, ROWS, SETTINGS)
    with pytest.raises(ScoreLogError, match=r"holds scores of other settings \(scorer 'knn' -> 'lof'\)"):
        ScoreLog(out, {**SETTINGS, "scorer": "lof"}).resume()
    state_path(out).unlink()
    with pytest.raises(ScoreLogError, match="scores.csv.state.json does not: it was not written by 04_score.sh"):
        ScoreLog(out, SETTINGS).resume()
    other = tmp_path / "other.csv"
    other.write_text("name,value\nx,1\n")
    with pytest.raises(ScoreLogError, match="is not a score CSV of 04_score.sh"):
        read_scores(other)
