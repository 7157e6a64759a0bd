"""datasets.loose_clips: recordings of any name get the machine type and section the caller, the
name, the folder or the model says; a polled folder reports a file once it stopped changing and
holds all the audio its header promises."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datasets.loose_clips import StableFiles, expand_paths, loose_clips
from datasets.manifest import DatasetError

TRAINED = [("fan", "00"), ("fan", "01"), ("valve", "00")]


def _wav(path: Path, seconds: float = 0.5) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(16000 * seconds), dtype=np.float32) + 0.1, 16000, subtype="PCM_16")
    return path


def test_machine_and_section_come_from_the_options_the_name_the_folder_or_the_model(tmp_path):
    dcase = _wav(tmp_path / "valve" / "test" / "section_00_source_test_anomaly_0007_p_1.wav")
    plain = _wav(tmp_path / "x" / "pump 3.wav")
    [clip] = loose_clips([dcase], TRAINED)
    assert (clip.machine, clip.section, clip.domain, clip.label, clip.index) == ("valve", "00", "source", "anomaly", 7)
    [clip] = loose_clips([plain], TRAINED, machine="fan", section="01")
    assert (clip.machine, clip.section, clip.domain, clip.label, clip.name) == ("fan", "01", None, None, "pump 3.wav")
    [clip] = loose_clips([plain], TRAINED, machine="valve")  # valve has one section
    assert clip.section == "00"
    [clip] = loose_clips([plain], [("fan", "00")])  # the model knows one machine type and section
    assert (clip.machine, clip.section) == ("fan", "00")
    with pytest.raises(DatasetError, match=r"pump 3.wav: which section it is, its name does not say and the model has several for fan: "
                                           r"give --section \(00, 01\)"):  # fmt: skip
        loose_clips([plain], TRAINED, machine="fan")
    with pytest.raises(DatasetError, match=r"which machine type it is, neither its folder nor the model says: give --machine "
                                           r"\(fan, valve\)"):  # fmt: skip
        loose_clips([plain], TRAINED)
    with pytest.raises(DatasetError, match="machine type 'pump' is not one"):
        loose_clips([plain], TRAINED, machine="pump")


def test_expand_paths_keeps_the_order_given_and_names_what_is_missing(tmp_path):
    a, b = _wav(tmp_path / "d" / "b.WAV"), _wav(tmp_path / "d" / "a.wav")
    single = _wav(tmp_path / "z.wav")
    (tmp_path / "d" / "notes.txt").write_text("not audio")
    assert expand_paths([single, tmp_path / "d"]) == [single, b, a]
    with pytest.raises(DatasetError, match="nothing.wav does not exist"):
        expand_paths([tmp_path / "nothing.wav"])
    with pytest.raises(DatasetError, match="notes.txt is not a WAV file"):
        expand_paths([tmp_path / "d" / "notes.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no WAV files"):
        expand_paths([tmp_path / "empty"])


def test_a_file_is_reported_once_after_two_polls_without_change(tmp_path):
    folder = tmp_path / "inbox"
    source = _wav(tmp_path / "clip.wav")
    folder.mkdir()
    poller = StableFiles(folder, done={"old.wav"})
    shutil.copyfile(source, folder / "old.wav")
    shutil.copyfile(source, folder / "new.wav")
    shutil.copyfile(source, folder / ".tmp.wav")
    whole = source.read_bytes()
    (folder / "growing.wav").write_bytes(whole[:1000])
    assert poller.poll() == []  # first sight
    with (folder / "growing.wav").open("ab") as f:
        f.write(whole[1000:3000])
    assert poller.poll() == [folder / "new.wav"]  # growing.wav changed since the last poll
    assert poller.poll() == []  # growing.wav stopped, but its header promises more audio
    with (folder / "growing.wav").open("ab") as f:
        f.write(whole[3000:])
    assert poller.poll() == []
    assert poller.poll() == [folder / "growing.wav"]
    assert poller.poll() == []
    shutil.rmtree(folder)
    with pytest.raises(DatasetError, match=f"watched folder {folder} disappeared"):
        poller.poll()
