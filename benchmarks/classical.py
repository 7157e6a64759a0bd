"""Compare configurations of the classical system on one corpus: domains x feature groups x scorers.

    python -m benchmarks.classical --data-root data/shift --cache-dir exp/features \\
        --domains pooled separate --feature-sets logmel_stats modulation all --scorers gaussian knn

Reads the corpus's development clips (every machine type) through the feature cache (features
are extracted first, once, and not timed). Per configuration (`classical.domains`, a feature set:
one group, or several joined with `+` (`all`: every group), each several-group set once per
`--combine`), fits the classical system on each machine type's training clips and scores its
test clips with the real `ClassicalSystem`, then computes the official metrics. Writes `name
value unit` lines on stdout, per configuration `<domains>/<features>/<combine>`:

- fit_seconds/<config>: fitting the `--scorers`' detectors on all machine types (cached features);
- official_score/<config>/<scorer>, auc_source_hmean/..., auc_target_hmean/..., pauc_hmean/...;
- score_seconds/<config>/<scorer>: scoring all test clips;
- load_average_before / _after, so a figure from a shared machine can be judged.
Everything else `baseline.yaml` sets (or `--set section.key=value` overrides) stays as it is.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import report
from core.config import load_config
from core.runtime import setup_logging
from datasets.manifest import open_dataset
from networks.classical.detectors import DETECTORS
from networks.classical.features import FEATURE_GROUPS, group_vectors
from networks.classical.system import ClassicalSystem
from networks.system import Runtime
from reporting.metrics import hmean, official_score, section_metrics

log = logging.getLogger("benchmark")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.classical", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-root", type=Path, required=True, help="a corpus (data root, dataset or machine folders)"
    )
    parser.add_argument("--year", type=int, default=2024, help="data.year of the corpus layout (default: 2024)")
    parser.add_argument("--cache-dir", type=Path, help="feature cache (default: a temporary folder, removed after)")
    parser.add_argument("--workers", type=int, default=2, help="feature extraction processes (default: 2)")
    parser.add_argument("--domains", nargs="+", default=["pooled", "separate"], choices=["pooled", "separate"])
    parser.add_argument(
        "--feature-sets",
        nargs="+",
        default=[*FEATURE_GROUPS, "all"],
        help="feature groups, several joined with + (all: every group); default: each group, then all",
    )
    parser.add_argument("--combine", nargs="+", default=["mean", "concat"], choices=["mean", "concat"])
    parser.add_argument("--scorers", nargs="+", default=["gaussian", "knn"], choices=list(DETECTORS))
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any other config key, e.g. classical.bands=6"
    )
    return parser


def _feature_set(spec: str) -> list[str]:
    names = list(FEATURE_GROUPS) if spec == "all" else spec.split("+")
    unknown = [n for n in names if n not in FEATURE_GROUPS]
    if unknown:
        raise SystemExit(f"unknown feature group {unknown[0]!r}; valid: {', '.join(FEATURE_GROUPS)}, all")
    return names


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(level="INFO")
    feature_sets = {spec: _feature_set(spec) for spec in args.feature_sets}
    overrides = dict(item.split("=", 1) for item in args.set)
    with tempfile.TemporaryDirectory() as scratch:
        cache = args.cache_dir or Path(scratch) / "features"
        base = {**overrides, "data.cache_dir": str(cache), "data.workers": args.workers}
        cfg = load_config(overrides=base)
        dataset = open_dataset(args.data_root, args.year, "dev", [])
        runtime = Runtime(torch.device("cpu"), cfg.data, dataset.expected_channels)
        clips = {m: {split: dataset.clips(m, split) for split in ("train", "test")} for m in dataset.machines}
        every_group = sorted({g for names in feature_sets.values() for g in names})
        everything = load_config(overrides={**base, "classical.features": every_group})
        for splits in clips.values():  # extract (or check) the features once, untimed
            for split, split_clips in splits.items():
                group_vectors(split_clips, runtime, everything.classical, everything.feature, split == "train")
        report("load_average_before", os.getloadavg()[0], "load")
        for domains in args.domains:
            for spec, names in feature_sets.items():
                for combine in args.combine if len(names) > 1 else ["mean"]:
                    name = f"{domains}/{spec}/{combine}"
                    config = load_config(
                        overrides={
                            **base,
                            "classical.domains": domains,
                            "classical.features": names,
                            "classical.combine": combine,
                        }
                    )
                    _measure(name, config, clips, runtime, args.scorers, Path(scratch))
        report("load_average_after", os.getloadavg()[0], "load")
    return 0


def _measure(name: str, cfg, clips: dict, runtime: Runtime, scorers: list[str], workdir: Path) -> None:
    systems = {}
    start = time.perf_counter()
    for machine, splits in clips.items():
        systems[machine] = ClassicalSystem.from_config(cfg).fit(splits["train"], runtime, workdir, tuple(scorers))
    report(f"fit_seconds/{name}", time.perf_counter() - start, "s")
    for scorer in scorers:
        start = time.perf_counter()
        results = []
        for machine, splits in clips.items():
            test = splits["test"]
            scores = systems[machine].score(test, scorer, runtime)
            for section in sorted({c.section for c in test}):
                idx = [i for i, c in enumerate(test) if c.section == section]
                results.append(
                    section_metrics(
                        machine,
                        section,
                        np.array([test[i].label == "anomaly" for i in idx]),
                        np.array([test[i].domain == "target" for i in idx]),
                        scores[idx],
                        np.zeros(len(idx), dtype=int),  # decisions: not ranked, not measured here
                        cfg.metrics.max_fpr,
                    )
                )
        seconds = time.perf_counter() - start
        report(f"official_score/{name}/{scorer}", official_score(results), "score")
        report(f"auc_source_hmean/{name}/{scorer}", hmean([r.auc["source"] for r in results]), "auc")
        report(f"auc_target_hmean/{name}/{scorer}", hmean([r.auc["target"] for r in results]), "auc")
        report(f"pauc_hmean/{name}/{scorer}", hmean([r.pauc for r in results]), "pauc")
        report(f"score_seconds/{name}/{scorer}", seconds, "s")


if __name__ == "__main__":
    raise SystemExit(main())
