"""The file-name parser on every DCASE naming scheme, the real clips and the official lists."""

from __future__ import annotations

import csv

import pytest

from datasets.filenames import NameFields, UnrecognisedFileName, parse_file_name


@pytest.mark.parametrize(
    "name, expected",
    [
        ("normal_id_00_00000000.wav", NameFields("00", "source", None, "normal", 0, None)),
        ("anomaly_id_04_00000123.wav", NameFields("04", "source", None, "anomaly", 123, None)),
        ("id_05_00000007.wav", NameFields("05", "source", None, None, 7, None)),
        (
            "section_00_source_train_normal_0742_vel_16_loc_A.wav",
            NameFields("00", "source", "train", "normal", 742, "vel_16_loc_A"),
        ),
        (
            "section_00_target_test_anomaly_0015_car_A2_spd_6_mic_2.wav",
            NameFields("00", "target", "test", "anomaly", 15, "car_A2_spd_6_mic_2"),
        ),
        (
            "section_00_source_test_normal_0027_vel_730_ac_0.11.wav",
            NameFields("00", "source", "test", "normal", 27, "vel_730_ac_0.11"),
        ),
        ("section_00_source_test_normal_0000_m-n_W.wav", NameFields("00", "source", "test", "normal", 0, "m-n_W")),
        ("section_02_target_train_normal_0003_.wav", NameFields("02", "target", "train", "normal", 3, "")),
        (
            "section_00_source_train_normal_0001_noAttribute.wav",
            NameFields("00", "source", "train", "normal", 1, "noAttribute"),
        ),
        ("section_03_source_test_anomaly_0000.wav", NameFields("03", "source", "test", "anomaly", 0, None)),
        (
            "section_00_source_normal_0035_weight15_BckgF.wav",
            NameFields("00", "source", None, "normal", 35, "weight15_BckgF"),
        ),
        ("section_03_target_test_0012.wav", NameFields("03", "target", "test", None, 12, None)),
        ("section_00_0000.wav", NameFields("00", None, None, None, 0, None)),
    ],
)
def test_every_naming_scheme(name, expected):
    assert parse_file_name(name) == expected


def test_attribute_pairs_and_hidden_attributes():
    assert parse_file_name("section_00_source_test_normal_0027_vel_730_ac_0.11.wav").attributes == (
        ("vel", "730"),
        ("ac", "0.11"),
    )
    assert parse_file_name("section_00_source_test_normal_0000_m-n_W.wav").attributes == (("m-n", "W"),)
    hidden = parse_file_name("section_00_source_train_normal_0001_noAttribute.wav")
    assert hidden.hidden_attributes and hidden.attributes == ()
    assert parse_file_name("section_02_target_train_normal_0003_.wav").attributes == ()


@pytest.mark.parametrize(
    "name",
    [
        "recording.wav",
        "section_0_source_train_normal_0000.wav",
        "section_00_source_train_normal_0000_a.mp3",
        "normal_00_00000000.wav",
        "",
    ],
)
def test_unrecognised_names_are_named_in_the_error(name):
    with pytest.raises(UnrecognisedFileName, match="matches no DCASE naming scheme") as err:
        parse_file_name(name)
    assert repr(name) in str(err.value)


def test_real_dcase2023_clips_match_their_labels(shared_dir):
    subset = shared_dir / "data" / "dcase2023t2_dev_real_subset"
    with (subset / "labels.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 28
    for row in rows:
        fields = parse_file_name(row["file"].split("/")[-1])
        assert (fields.section, fields.domain, fields.split, fields.label) == (
            row["section"],
            row["domain"],
            row["split"],
            row["label"],
        ), row["file"]


@pytest.mark.parametrize("year", [2020, 2021, 2022, 2023, 2024, 2025])
def test_every_name_in_the_official_label_lists_parses(dcase_reference, year):
    path = dcase_reference / "official_lists" / f"eval_data_list_{year}.csv"
    pairs = 0
    with path.open() as f:
        for row in csv.reader(f):
            if len(row) < 2:
                continue
            anonymous, labelled = parse_file_name(row[0]), parse_file_name(row[1])
            assert anonymous.label is None and labelled.label in ("normal", "anomaly")
            assert anonymous.section == labelled.section
            if year == 2020:
                assert labelled.label == ("anomaly" if row[2] == "1" else "normal")
            else:
                assert labelled.domain in ("source", "target")
            pairs += 1
    assert pairs > 1000


def test_2024_robotic_arm_names_without_split(dcase_reference):
    gt = (
        dcase_reference
        / "official_lists"
        / "evaluator_2024"
        / "ground_truth_attributes"
        / "ground_truth_RoboticArm_section_00_test.csv"
    )
    with gt.open() as f:
        labelled = [row[1] + ".wav" for row in csv.reader(f)]
    fields = [parse_file_name(n) for n in labelled]
    assert all(f.split is None and f.label in ("normal", "anomaly") for f in fields)
    assert {f.domain for f in fields} == {"source", "target"}
