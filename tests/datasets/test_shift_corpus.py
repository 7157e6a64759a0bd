"""The domain-shift corpus (small preset): DCASE 2024 layout, counts, determinism, unseen target
conditions, hidden attributes, faults that change the sound, and the toolkit reading it."""

from __future__ import annotations

import csv
import dataclasses
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from datasets.class_labels import class_label
from datasets.filenames import parse_file_name
from datasets.manifest import open_dataset
from datasets.shift_corpus import MACHINES_BY_NAME, PRESETS, main, plan_machine, render_clip
from datasets.shift_machines import MACHINES, Fault
from reporting.metrics import section_metrics

SMALL = PRESETS["small"]
CELLS = {
    ("train", "source", "normal"): 60,
    ("train", "target", "normal"): 4,
    **{("test", d, label): 8 for d in ("source", "target") for label in ("normal", "anomaly")},
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("shift")
    assert main(["--out", str(out), "--preset", "small", "--seed", "5", "--workers", "2"]) == 0
    return out


def _wavs(out):
    return sorted(p.relative_to(out) for p in (out / "dev_data" / "raw").rglob("*.wav"))


def test_layout_names_counts_and_lengths(corpus):
    raw = corpus / "dev_data" / "raw"
    assert sorted(d.name for d in raw.iterdir()) == sorted(SMALL.machines)
    assert not (corpus / ".partial").exists()
    for name in SMALL.machines:
        machine = MACHINES_BY_NAME[name]
        files = [p for split in ("train", "test") for p in sorted((raw / name / split).iterdir())]
        fields = [parse_file_name(p.name) for p in files]
        assert Counter((f.split, f.domain, f.label) for f in fields) == CELLS
        assert all(f.section == "00" and f.split == p.parent.name for f, p in zip(fields, files))
        for f in fields:
            if machine.hidden:
                assert f.attribute_string == "noAttribute"
            else:
                assert [k for k, _ in f.attributes] == [a.key for a in machine.attributes]
        # indices run 0..count-1 per cell, as in the official names
        for cell, count in CELLS.items():
            assert sorted(f.index for f in fields if (f.split, f.domain, f.label) == cell) == list(range(count))
        for path in files[:3] + files[-3:]:
            info = sf.info(str(path))
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 32000, "PCM_16")


def test_attribute_table_lists_every_clip_with_its_attributes(corpus):
    raw = corpus / "dev_data" / "raw"
    for name in SMALL.machines:
        machine = MACHINES_BY_NAME[name]
        rows = list(csv.reader((raw / name / "attributes_00.csv").open()))
        width = 1 if machine.hidden else len(machine.attributes)
        assert rows[0] == ["file_name"] + [f"d{i}{p}" for i in range(1, width + 1) for p in ("p", "v")]
        listed = {row[0]: row[1:] for row in rows[1:]}
        assert sorted(listed) == sorted(f"{name}/{p.parent.name}/{p.name}" for p in (raw / name).glob("*/*.wav"))
        for path, pairs in listed.items():
            if machine.hidden:
                assert pairs == ["noAttribute", ""]
            else:
                assert "_".join(pairs) == parse_file_name(path.split("/")[-1]).attribute_string


def test_target_conditions_never_occur_in_the_source_domain():
    for machine in MACHINES:
        assert any(a.shifted for a in machine.attributes), machine.name
        plans = plan_machine(machine, PRESETS["dcase"], seed=0)
        source = {p.attributes for p in plans if p.domain == "source"}
        target = {p.attributes for p in plans if p.domain == "target"}
        assert target and not source & target, machine.name
        conditions = Counter(p.attributes for p in plans if p.split == "train" and p.domain == "source")
        assert max(conditions.values()) - min(conditions.values()) <= 1  # drawn evenly
        for attribute in machine.attributes:  # the source domain has variety to learn from
            values = {dict(condition)[attribute.key] for condition in conditions}
            assert values == set(attribute.source) and len(values) >= 2


def test_visible_target_attribute_values_are_absent_from_the_source_files(corpus):
    raw = corpus / "dev_data" / "raw"
    for name in SMALL.machines:
        if MACHINES_BY_NAME[name].hidden:
            continue
        fields = [parse_file_name(p.name) for p in (raw / name).glob("*/*.wav")]
        by_domain = {d: {f.attributes for f in fields if f.domain == d} for d in ("source", "target")}
        assert by_domain["target"] and not by_domain["source"] & by_domain["target"]


def test_dcase_preset_sizes_and_hidden_machine_types():
    dcase = PRESETS["dcase"]
    assert len(dcase.machines) == 7 and dcase.seconds == 10.0
    assert (dcase.source_train, dcase.target_train, dcase.test_per_cell) == (990, 10, 50)
    assert sum(m.hidden for m in MACHINES) == 2
    assert sum(MACHINES_BY_NAME[m].hidden for m in SMALL.machines) >= 1
    plans = plan_machine(MACHINES_BY_NAME["ShiftFan"], dcase, seed=0)
    assert len(plans) == 1200
    kinds = Counter(p.fault.kind for p in plans if p.fault)
    assert set(kinds) == set(MACHINES_BY_NAME["ShiftFan"].faults) and max(kinds.values()) - min(kinds.values()) <= 1


def test_same_seed_same_bytes_whatever_the_workers_and_another_seed_differs(corpus, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    assert main(["--out", str(again), "--preset", "small", "--seed", "5", "--workers", "1"]) == 0
    assert _wavs(again) == _wavs(corpus) and len(_wavs(corpus)) == 4 * 96
    for relative in _wavs(corpus) + [p.relative_to(corpus) for p in (corpus / "dev_data" / "raw").glob("*/*.csv")]:
        assert (again / relative).read_bytes() == (corpus / relative).read_bytes(), relative
    assert main(["--out", str(other), "--preset", "small", "--seed", "6", "--workers", "2"]) == 0
    hidden = next(w for w in _wavs(corpus) if w.name.endswith("_noAttribute.wav"))  # a name every seed writes
    assert (other / hidden).read_bytes() != (corpus / hidden).read_bytes()


def test_rerun_skips_other_settings_are_refused_and_force_rewrites(corpus, tmp_path):
    out = tmp_path / "c"
    assert main(["--out", str(out), "--preset", "small", "--seed", "5"]) == 0
    clip = out / next(w for w in _wavs(corpus) if w.name.endswith("_noAttribute.wav"))
    before = clip.stat().st_mtime_ns
    assert main(["--out", str(out), "--preset", "small", "--seed", "5"]) == 0
    assert clip.stat().st_mtime_ns == before
    assert (out / "shift_corpus.log").read_text().count("skipping") == len(SMALL.machines)
    assert main(["--out", str(out), "--preset", "small", "--seed", "6"]) == 1
    assert f"{out / 'dev_data' / 'raw' / SMALL.machines[0]} holds another" in (out / "shift_corpus.log").read_text()
    assert "pass --force" in (out / "shift_corpus.log").read_text()
    assert main(["--out", str(out), "--preset", "small", "--seed", "6", "--force"]) == 0
    assert clip.read_bytes() != (corpus / clip.relative_to(out)).read_bytes()


def test_the_toolkit_reads_it_and_hidden_attributes_fall_back_to_the_domain(corpus):
    dataset = open_dataset(corpus, 2024, "dev", [])
    assert dataset.machines == sorted(SMALL.machines) and dataset.expected_channels is None
    for name in dataset.machines:
        train, test = dataset.clips(name, "train"), dataset.clips(name, "test")
        assert (len(train), len(test)) == (64, 32)
        labels = {class_label(c) for c in train}
        if MACHINES_BY_NAME[name].hidden:
            assert labels == {f"{name}_00_source", f"{name}_00_target"}
        else:
            attributes = MACHINES_BY_NAME[name].attributes
            expected = {a.key for a in attributes}
            assert all({k for k, _ in c.attributes} == expected for c in train)
            assert len(labels) > len(attributes)  # one class per operating condition


def test_every_fault_kind_changes_the_sound():
    for machine in MACHINES:
        normal = next(p for p in plan_machine(machine, SMALL, seed=0) if p.split == "test")
        clean = render_clip(normal, SMALL.seconds)
        for kind in machine.faults:
            faulty = render_clip(dataclasses.replace(normal, fault=Fault(kind, 1.0)), SMALL.seconds)
            assert not np.array_equal(faulty, clean), f"{machine.name}: fault {kind!r} leaves the sound unchanged"


def test_loudness_alone_does_not_find_the_anomalies(corpus):
    aucs = []
    for name in SMALL.machines:
        clips = open_dataset(corpus, 2024, "dev", [name]).clips(name, "test")
        rms = np.array([np.sqrt(np.mean(sf.read(c.path)[0] ** 2)) for c in clips])
        m = section_metrics(
            name,
            "00",
            np.array([c.label == "anomaly" for c in clips]),
            np.array([c.domain == "target" for c in clips]),
            rms,
            np.zeros(len(clips)),
        )
        aucs += [m.auc["source"], m.auc["target"]]
    assert 0.3 < np.mean(aucs) < 0.7


@pytest.mark.parametrize("bad", [["--workers", "0"], ["--seed", "-1"], ["--preset", "huge"]])
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, bad):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "c"), *bad])
    assert exit_info.value.code == 2 and not (tmp_path / "c").exists()
