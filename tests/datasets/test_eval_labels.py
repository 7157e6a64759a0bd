"""datasets.eval_labels: the official list format, and labelling clips on disk."""

from __future__ import annotations

import os

import pytest

from datasets.catalog import year_info
from datasets.eval_labels import LabelListError, label_machine, parse_label_list, read_label_list
from datasets.manifest import EVAL_LABELS_FILE, machine_clips, read_eval_labels
from tests.zenodo_fixtures import label_list_text, tiny_wav

SMALL_LIST = (
    "fan\r\n"
    "id_01_00000000.wav,normal_id_01_00000098.wav,0\r\n"
    "id_01_00000001.wav,anomaly_id_01_00000064.wav,1\r\n"
    "\r\n"
    "ToyCar\r\n"
    "section_00_0001.wav,section_00_target_test_anomaly_0001_car_A2_spd_6_mic_2.wav\r\n"
    "section_00_0002.wav,section_00_source_normal_0035_weight15_BckgF.wav\r\n"
    "section_03_source_test_0000.wav,section_03_source_test_anomaly_0000.wav\r\n"
)


def test_small_list_in_the_official_format():
    assert parse_label_list(SMALL_LIST) == {
        "fan": [
            ("id_01_00000000.wav", "normal_id_01_00000098.wav"),
            ("id_01_00000001.wav", "anomaly_id_01_00000064.wav"),
        ],
        "ToyCar": [
            ("section_00_0001.wav", "section_00_target_test_anomaly_0001_car_A2_spd_6_mic_2.wav"),
            ("section_00_0002.wav", "section_00_source_normal_0035_weight15_BckgF.wav"),
            ("section_03_source_test_0000.wav", "section_03_source_test_anomaly_0000.wav"),
        ],
    }


@pytest.mark.parametrize(
    "text, why",
    [
        ("section_00_0000.wav,section_00_source_test_normal_0000_a_1.wav\n", "before the first machine-type line"),
        ("fan\nid_01_00000000.wav,normal_id_01_00000098.wav,1\n", "contradicts the label"),
        ("fan\nid_01_00000000.wav,normal_id_01_00000098.wav,x\n", "must be 0 .normal. or 1"),
        ("fan\nsection_00_0000.wav,section_00_0001.wav\n", "carries no domain and label"),
        (
            "fan\nsection_00_source_test_normal_0000_a.wav,section_00_source_test_normal_0000_a.wav\n",
            "already carries a label",
        ),
        (
            "fan\nsection_00_0000.wav,section_01_source_test_normal_0000_a_1.wav\n",
            "section 00 .* differs from section 01",
        ),
        (
            "fan\nsection_00_0000.wav,section_00_source_test_normal_0000_a_1.wav\nsection_00_0000.wav,section_00_source_test_normal_0001_a_1.wav\n",
            "appears twice",
        ),
        ("fan\nhello.wav,section_00_source_test_normal_0000_a_1.wav\n", "matches no DCASE naming scheme"),
        ("fan\nfan\n", "listed twice"),
        ("\n", "holds no machine types"),
    ],
)
def test_malformed_lists_are_refused_with_the_line(text, why):
    with pytest.raises(LabelListError, match=why):
        parse_label_list(text, source="my_list.csv")


EXPECTED_ROWS = {2020: None, 2021: None, 2022: 600, 2023: 200, 2024: 200, 2025: 200}


@pytest.mark.parametrize("year", sorted(EXPECTED_ROWS))
def test_real_official_lists_parse(dcase_reference, year):
    lists = read_label_list(dcase_reference / "official_lists" / f"eval_data_list_{year}.csv")
    info = year_info(year)
    assert set(lists) == set(info.eval_machines)
    for machine, rows in lists.items():
        if EXPECTED_ROWS[year] is not None:
            assert len(rows) == EXPECTED_ROWS[year], machine
        sections = {r[0].split("_")[1] for r in rows}
        assert sections <= set(info.eval_machines[machine]), machine


def test_2020_list_keeps_its_label_field_consistent(dcase_reference):
    text = (dcase_reference / "official_lists" / "eval_data_list_2020.csv").read_text()
    rows = [line.split(",") for line in text.splitlines() if line.count(",") == 2]
    assert len(rows) == 7103  # 7109 lines minus six machine-type lines
    assert parse_label_list(text)["fan"][0] == ("id_01_00000000.wav", "normal_id_01_00000098.wav")


def test_labelling_writes_test_rename_and_the_label_map(eval_corpus):
    lists = read_label_list(eval_corpus / "eval_data_list_demo.csv")
    raw = eval_corpus / "eval_data" / "raw"
    machine = raw / "SynthBlower"
    result = label_machine(machine, lists["SynthBlower"])
    assert result.clips == len(lists["SynthBlower"]) and not result.skipped
    mapping = dict(lists["SynthBlower"])
    assert sorted(p.name for p in (machine / "test_rename").iterdir()) == sorted(mapping.values())
    for anonymous, labelled in mapping.items():
        assert (machine / "test_rename" / labelled).read_bytes() == (machine / "test" / anonymous).read_bytes()
        if result.linked:
            assert os.path.samefile(machine / "test_rename" / labelled, machine / "test" / anonymous)
    assert read_eval_labels(machine) == mapping
    assert (machine / EVAL_LABELS_FILE).read_text().splitlines()[0] == ",".join(sorted(mapping.items())[0])
    clips = machine_clips(raw, "SynthBlower", "test")
    assert all(c.is_labelled for c in clips)
    assert sorted(c.label for c in clips).count("anomaly") == sum("_anomaly_" in v for v in mapping.values())
    assert not any(p.name.startswith(".") for p in machine.iterdir())


def test_2021_style_clips_in_source_and_target_test_folders(tmp_path):
    machine = tmp_path / "raw" / "fan"
    rows = []
    for domain in ("source", "target"):
        (machine / f"{domain}_test").mkdir(parents=True)
        for i in range(3):
            anonymous = f"section_03_{domain}_test_{i:04d}.wav"
            (machine / f"{domain}_test" / anonymous).write_bytes(tiny_wav())
            rows.append((anonymous, f"section_03_{domain}_test_{'anomaly' if i else 'normal'}_{i:04d}.wav"))
    text = label_list_text({"fan": rows})
    result = label_machine(machine, parse_label_list(text)["fan"])
    assert result.clips == 6 and len(list((machine / "test_rename").iterdir())) == 6
    clips = machine_clips(tmp_path / "raw", "fan", "test")
    assert [(c.domain, c.label) for c in clips][:3] == [
        ("source", "normal"),
        ("source", "anomaly"),
        ("source", "anomaly"),
    ]


def test_relabelling_skips_and_force_redoes(eval_corpus):
    lists = read_label_list(eval_corpus / "eval_data_list_demo.csv")
    machine = eval_corpus / "eval_data" / "raw" / "SynthConveyor"
    label_machine(machine, lists["SynthConveyor"])
    assert label_machine(machine, lists["SynthConveyor"]).skipped
    assert not label_machine(machine, lists["SynthConveyor"], force=True).skipped


def test_a_list_that_does_not_fit_the_clips_writes_nothing(eval_corpus):
    lists = read_label_list(eval_corpus / "eval_data_list_demo.csv")
    machine = eval_corpus / "eval_data" / "raw" / "SynthBlower"
    with pytest.raises(LabelListError, match=r"1 listed clips are not there .* 0 clips there are not listed"):
        label_machine(
            machine, lists["SynthBlower"] + [("section_00_9999.wav", "section_00_source_test_normal_9999_a_1.wav")]
        )
    with pytest.raises(LabelListError, match=r"0 listed clips are not there and 1 clips there are not listed"):
        label_machine(machine, lists["SynthBlower"][1:])
    assert not (machine / "test_rename").exists() and not (machine / EVAL_LABELS_FILE).exists()
