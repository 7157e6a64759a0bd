"""The demo corpus: DCASE 2024 layout, imbalance, determinism, and anomalies level cannot reveal."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import soundfile as sf

from datasets.demo_corpus import DEV_MACHINES, EVAL_MACHINES, CorpusSize, write_corpus
from datasets.filenames import parse_file_name
from datasets.manifest import machine_clips
from reporting.metrics import section_metrics


def test_layout_and_counts(demo_corpus):
    raw = demo_corpus / "dev_data" / "raw"
    for machine in DEV_MACHINES:
        train = machine_clips(raw, machine.name, "train")
        test = machine_clips(raw, machine.name, "test")
        assert Counter(c.domain for c in train) == {"source": 60, "target": 4}
        assert Counter((c.domain, c.label) for c in test) == {
            (d, l): 12 for d in ("source", "target") for l in ("normal", "anomaly")
        }
        assert {c.attributes[0][0] for c in train} == {machine.attribute}
        assert {c.attributes[0][1] for c in train if c.domain == "target"} <= set(machine.target_values)
        info = sf.info(str(train[0].path))
        assert (info.samplerate, info.channels, info.duration) == (16000, 1, 2.0)


def test_evaluation_part_has_anonymous_names_and_an_official_list(demo_corpus):
    rows = list(csv.reader((demo_corpus / "eval_data_list_demo.csv").open()))
    assert [r[0] for r in rows if len(r) == 1] == [m.name for m in EVAL_MACHINES]
    for machine in EVAL_MACHINES:
        names = sorted(p.name for p in (demo_corpus / "eval_data" / "raw" / machine.name / "test").glob("*.wav"))
        assert names == [f"section_00_{i:04d}.wav" for i in range(48)]
        assert all(parse_file_name(n).label is None for n in names)
    labelled = [parse_file_name(r[1]) for r in rows if len(r) == 2]
    assert Counter((f.domain, f.label) for f in labelled) == {
        (d, l): 24 for d in ("source", "target") for l in ("normal", "anomaly")
    }


def test_same_seed_same_bytes(tmp_path):
    size = CorpusSize(seconds=0.5, source_train=2, target_train=1, test_per_group=1)
    a, b = write_corpus(tmp_path / "a", size, seed=3), write_corpus(tmp_path / "b", size, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) > 20 and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_loudness_alone_does_not_find_the_anomalies(demo_corpus):
    """A trivial detector (clip RMS) stays near chance; the classical system's floor is in the
    end-to-end test."""
    aucs = []
    for machine in DEV_MACHINES:
        clips = machine_clips(demo_corpus / "dev_data" / "raw", machine.name, "test")
        rms = np.array([np.sqrt(np.mean(sf.read(c.path)[0] ** 2)) for c in clips])
        m = section_metrics(
            machine.name,
            "00",
            np.array([c.label == "anomaly" for c in clips]),
            np.array([c.domain == "target" for c in clips]),
            rms,
            np.zeros(len(clips)),
        )
        aucs += [m.auc["source"], m.auc["target"]]
    assert 0.35 < np.mean(aucs) < 0.65
