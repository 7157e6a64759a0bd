"""Folder layouts -> Clip records, attribute tables, evaluation labels, and the layout errors."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datasets.manifest import DatasetError, discover_machines, find_raw_dir, machine_clips, open_dataset


def _wav(path: Path, seconds: float = 0.1, rate: int = 16000, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros((int(seconds * rate), channels), dtype=np.float32), rate)
    return path


def test_real_subset_clips_with_attribute_values(shared_dir):
    raw = shared_dir / "data" / "dcase2023t2_dev_real_subset"
    assert discover_machines(raw) == ["ToyCar", "ToyTrain", "bearing", "fan", "gearbox", "slider", "valve"]
    test = machine_clips(raw, "slider", "test")
    assert [c.name for c in test] == sorted(c.name for c in test)
    clip = test[0]
    assert (clip.machine, clip.section, clip.domain, clip.split, clip.label, clip.index) == (
        "slider",
        "00",
        "source",
        "test",
        "normal",
        27,
    )
    assert clip.attributes == (("vel", "730"), ("ac", "0.11"))


def test_attribute_table_wins_over_the_name(tmp_path):
    machine = tmp_path / "gearbox"
    _wav(machine / "train" / "section_00_source_train_normal_0000_noAttribute.wav")
    (machine / "attributes_00.csv").write_text(
        "file_name,d1p,d1v,d2p,d2v\ngearbox/train/section_00_source_train_normal_0000_noAttribute.wav,volt,1.5,wt,150\n"
    )
    (clip,) = machine_clips(tmp_path, "gearbox", "train")
    assert clip.attributes == (("volt", "1.5"), ("wt", "150"))
    assert clip.attribute_string == "noAttribute"


def test_2021_development_test_folders(tmp_path):
    _wav(tmp_path / "fan" / "train" / "section_00_source_train_normal_0000_a_1.wav")
    _wav(tmp_path / "fan" / "source_test" / "section_00_source_test_anomaly_0000.wav")
    _wav(tmp_path / "fan" / "target_test" / "section_00_target_test_normal_0000.wav")
    clips = machine_clips(tmp_path, "fan", "test")
    assert [(c.domain, c.label, c.split) for c in clips] == [
        ("source", "anomaly", "test"),
        ("target", "normal", "test"),
    ]


def test_evaluation_labels_give_anonymous_clips_their_truth(tmp_path):
    _wav(tmp_path / "Vacuum" / "test" / "section_00_0000.wav")
    _wav(tmp_path / "Vacuum" / "test" / "section_00_0001.wav")
    (tmp_path / "Vacuum" / "eval_labels.csv").write_text(
        "section_00_0000.wav,section_00_target_test_anomaly_0001_noAttribute.wav\n"
    )
    clips = machine_clips(tmp_path, "Vacuum", "test")
    assert [(c.name, c.domain, c.label, c.is_labelled) for c in clips] == [
        ("section_00_0000.wav", "target", "anomaly", True),
        ("section_00_0001.wav", None, None, False),
    ]


def test_three_accepted_layouts(tmp_path, demo_corpus):
    official = tmp_path / "data"
    _wav(official / "dcase2024t2" / "dev_data" / "raw" / "fan" / "train" / "section_00_source_train_normal_0000_.wav")
    assert find_raw_dir(official, 2024, "dev") == official / "dcase2024t2" / "dev_data" / "raw"
    assert open_dataset(official, 2024, "dev", []).expected_channels == 1
    assert find_raw_dir(demo_corpus, 2024, "dev") == demo_corpus / "dev_data" / "raw"
    assert open_dataset(demo_corpus, 2024, "dev", []).expected_channels is None
    own = tmp_path / "plant"
    _wav(own / "compressor" / "train" / "section_00_source_train_normal_0000_.wav")
    assert find_raw_dir(own, 2024, "dev") == own


def test_a_clip_with_another_channel_count_among_your_own_recordings_is_named(tmp_path, caplog):
    """Your own recordings promise no channel count, so each clip's data.channel is used; a stereo
    clip among mono ones (or the reverse) is most likely a mistake, and said so."""
    for i in range(3):
        _wav(tmp_path / "fan" / "train" / f"section_00_source_train_normal_{i:04d}_.wav")
    stereo = _wav(tmp_path / "fan" / "test" / "section_00_0000.wav", channels=2)
    _wav(tmp_path / "fan" / "test" / "section_00_0001.wav")
    (tmp_path / "fan" / "test" / "section_00_0002.wav").write_bytes(b"garbage")  # decoding will name it
    _wav(tmp_path / "pump" / "train" / "section_00_source_train_normal_0000_.wav", channels=2)  # all stereo: fine
    with caplog.at_level(logging.WARNING, logger="datasets.audio"):
        assert open_dataset(tmp_path, 2024, "dev", []).expected_channels is None
    assert caplog.messages == [
        f"fan: mixed channel counts, most clips have 1 but 1 of 5 do not (data.channel of "
        f"each is used): {stereo} (2 ch)"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="datasets.audio"):
        open_dataset(tmp_path, 2024, "dev", ["pump"])
    assert caplog.messages == []


def test_a_warning_about_many_odd_clips_names_ten(tmp_path, caplog):
    names = [f"section_00_source_train_normal_{i:04d}_.wav" for i in range(23)]
    for i, name in enumerate(names):
        _wav(tmp_path / "valve" / "train" / name, channels=1 if i < 12 else 2)
    with caplog.at_level(logging.WARNING, logger="datasets.audio"):
        open_dataset(tmp_path, 2024, "dev", [])
    named = ", ".join(f"{tmp_path / 'valve' / 'train' / name} (2 ch)" for name in names[12:22])
    assert caplog.messages == [
        f"valve: mixed channel counts, most clips have 1 but 11 of 23 do not (data.channel of "
        f"each is used): {named} and 1 more"
    ]


def test_missing_data_root_says_which_download_to_run(tmp_path):
    with pytest.raises(DatasetError, match=r"run ./00_download.sh -d --year 2025 first"):
        find_raw_dir(tmp_path / "nowhere", 2025, "dev")
    with pytest.raises(DatasetError, match=r"./00_download.sh -e --year 2024 -a"):
        find_raw_dir(tmp_path, 2024, "eval")


def test_empty_machine_folder_and_missing_machine(tmp_path):
    (tmp_path / "fan" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"no train clips \(\*\.wav\) in .*fan/train"):
        machine_clips(tmp_path, "fan", "train")
    with pytest.raises(DatasetError, match="has no test folder"):
        machine_clips(tmp_path, "fan", "test")
    with pytest.raises(DatasetError, match="machine type\\(s\\) valve not found.*present: fan"):
        open_dataset(tmp_path, 2024, "dev", ["valve"])


def test_machine_names_with_underscores_are_refused_before_any_work(tmp_path):
    _wav(tmp_path / "pump_A" / "train" / "section_00_source_train_normal_0000_.wav")
    with pytest.raises(DatasetError, match="pump_A .*contain '_'.*rename them \\(e.g. pump-A\\)"):
        open_dataset(tmp_path, 2024, "dev", [])


def test_unrecognised_file_name_is_named(tmp_path):
    _wav(tmp_path / "fan" / "train" / "my_recording.wav")
    with pytest.raises(DatasetError, match="my_recording.wav.*matches no DCASE naming scheme"):
        machine_clips(tmp_path, "fan", "train")


def test_split_in_name_must_match_folder(tmp_path):
    _wav(tmp_path / "fan" / "train" / "section_00_source_test_normal_0000_.wav")
    with pytest.raises(DatasetError, match="the name says 'test' but the file lies in a train folder"):
        machine_clips(tmp_path, "fan", "train")


def test_real_clips_copied_into_the_official_layout(shared_dir, tmp_path):
    raw = tmp_path / "dcase2023t2" / "dev_data" / "raw"
    shutil.copytree(shared_dir / "data" / "dcase2023t2_dev_real_subset", raw, ignore=shutil.ignore_patterns("*.csv"))
    dataset = open_dataset(tmp_path, 2023, "dev", ["fan", "valve"])
    assert dataset.machines == ["fan", "valve"] and dataset.expected_channels == 1
    assert [c.label for c in dataset.clips("valve", "test")] == ["anomaly", "normal"]
