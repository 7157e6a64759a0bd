"""Clip -> machine_section_attribute class label, with the domain fallback for hidden attributes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datasets.class_labels import ClassIndex, class_label
from datasets.manifest import machine_clips


def _wav(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(1600, dtype=np.float32), 16000)


def _machine(tmp_path: Path, machine: str, names: list[str], table: str | None = None) -> list:
    for name in names:
        _wav(tmp_path / machine / "train" / name)
    if table is not None:
        (tmp_path / machine / "attributes_00.csv").write_text(table)
    return machine_clips(tmp_path, machine, "train")


def test_attributes_from_the_name_in_their_order(tmp_path):
    clips = _machine(
        tmp_path,
        "fan",
        ["section_00_source_train_normal_0000_m-n_W_mic_1.wav", "section_01_target_train_normal_0003_m-n_X_mic_2.wav"],
    )
    assert [class_label(c) for c in clips] == ["fan_00_m-n_W_mic_1", "fan_01_m-n_X_mic_2"]


def test_hidden_or_missing_attributes_fall_back_to_the_domain(tmp_path):
    clips = _machine(
        tmp_path,
        "ToyDrone",
        [
            "section_00_source_train_normal_0000_noAttribute.wav",
            "section_00_target_train_normal_0000_noAttribute.wav",
            "section_00_source_train_normal_0001_.wav",
        ],
    )
    assert [class_label(c) for c in clips] == ["ToyDrone_00_source", "ToyDrone_00_source", "ToyDrone_00_target"]
    legacy = _machine(tmp_path, "pump", ["normal_id_02_00000000.wav"])  # 2020: no domains, counted as source
    assert class_label(legacy[0]) == "pump_02_source"


def test_attribute_table_wins_over_a_hidden_name(tmp_path):
    (clip,) = _machine(
        tmp_path,
        "gearbox",
        ["section_00_source_train_normal_0000_noAttribute.wav"],
        "file_name,d1p,d1v,d2p,d2v\n"
        "gearbox/train/section_00_source_train_normal_0000_noAttribute.wav,volt,1.5,wt,150\n",
    )
    assert class_label(clip) == "gearbox_00_volt_1.5_wt_150"


def test_real_subset_labels(shared_dir):
    clips = machine_clips(shared_dir / "data" / "dcase2023t2_dev_real_subset", "slider", "test")
    assert class_label(clips[0]) == "slider_00_vel_730_ac_0.11"


def test_class_index_is_sorted_and_names_unknown_labels(tmp_path):
    clips = _machine(
        tmp_path,
        "valve",
        [
            "section_00_source_train_normal_0000_pat_05.wav",
            "section_00_source_train_normal_0001_pat_03.wav",
            "section_00_source_train_normal_0002_pat_05.wav",
        ],
    )
    index = ClassIndex()
    assert index.fit_transform(clips).tolist() == [1, 0, 1]
    assert index.classes_ == ["valve_00_pat_03", "valve_00_pat_05"]
    other = _machine(tmp_path, "slider", ["section_00_source_train_normal_0000_vel_1.wav"])
    with pytest.raises(KeyError, match="slider_00_vel_1 were not among the 2 training classes"):
        index.transform(other)
