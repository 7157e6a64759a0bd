"""Write a DCASE-sized synthetic domain-shift corpus in the DCASE 2024 development layout.

    python -m datasets.shift_corpus --out data/shift [--seed N] [--preset dcase|small] [--workers N]

Writes `<out>/dev_data/raw/<machine>/{train,test}/*.wav` (16 kHz mono 16-bit PCM) with
`attributes_00.csv` per machine type, and `<out>/shift_corpus.log`; reads nothing. Preset `dcase`:
the seven machine types of `datasets.shift_machines`, 990 source + 10 target training clips each and
50 test clips per domain and label, 10 s long; preset `small` (for tests): four machine types, 60 + 4
training clips, 8 per test cell, 2 s.

Every clip has its own random stream derived from (seed, machine type, position in the plan), so the
same seed gives the same bytes whatever the number of worker processes (on one machine: another
CPU's floating-point kernels may round a rare sample differently). A machine type is written to
`<out>/.partial/` and moved into place when complete, with a `.completed` stamp naming the preset,
seed and generator version: a rerun skips what is complete, and `--force` rewrites it.

Each clip is the machine in one operating condition (attribute values drawn evenly, in random order,
from its domain's values), as its microphone hears it, mixed with a factory background at a random
machine-to-background ratio and scaled to a random loudness (-6..+6 dB), so level alone says
nothing. Anomalous test clips have one fault each, kinds in turn, severity uniform in [0, 1].
Machine types with hidden attributes are named `..._noAttribute.wav`, as in DCASE 2024, and list
`noAttribute` in their attribute table; their true conditions come from `plan_machine`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.runtime import setup_logging
from datasets.corpus_layout import attribute_string, clip_name, write_attribute_table, write_wav
from datasets.filenames import HIDDEN_ATTRIBUTES
from datasets.shift_machines import MACHINES, Fault, MachineType
from datasets.synth_signals import SAMPLE_RATE, factory_background, unit_rms

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1  # bump when any sound changes, so an old corpus is not taken for a new one
COMPLETED = ".completed"
SOURCE_BACKGROUNDS = ("hall", "workshop")
LOUDNESS_DB = 6.0  # clip level: 0.05 RMS, +-this many dB


@dataclass(frozen=True)
class Preset:
    machines: tuple[str, ...]
    seconds: float
    source_train: int
    target_train: int
    test_per_cell: int  # clips per (domain, normal | anomaly)


PRESETS = {
    "dcase": Preset(tuple(m.name for m in MACHINES), 10.0, 990, 10, 50),
    "small": Preset(("ShiftFan", "ShiftValve", "ShiftGearbox", "ShiftBearing"), 2.0, 60, 4, 8),
}
MACHINES_BY_NAME = {m.name: m for m in MACHINES}


@dataclass(frozen=True)
class ClipPlan:
    """Everything that decides one clip: where it goes, its true condition and fault, its random stream."""

    machine: str
    split: str  # train | test
    domain: str  # source | target
    label: str  # normal | anomaly
    index: int
    attributes: tuple[tuple[str, str], ...]  # the true operating condition, hidden or not
    fault: Fault | None
    entropy: tuple[int, int, int]  # seed, machine type, position in the plan

    @property
    def file_name(self) -> str:
        hidden = MACHINES_BY_NAME[self.machine].hidden
        return clip_name(
            self.domain,
            self.split,
            self.label,
            self.index,
            HIDDEN_ATTRIBUTES if hidden else attribute_string(list(self.attributes)),
        )

    @property
    def relative_path(self) -> str:
        """`<machine>/<split>/<file name>`, as the attribute table lists it."""
        return f"{self.machine}/{self.split}/{self.file_name}"

    def table_row(self) -> list[str]:
        hidden = MACHINES_BY_NAME[self.machine].hidden
        pairs = [HIDDEN_ATTRIBUTES, ""] if hidden else [part for pair in self.attributes for part in pair]
        return [self.relative_path, *pairs]


def plan_machine(machine: MachineType, preset: Preset, seed: int) -> list[ClipPlan]:
    """Every clip of one machine type: training clips (source, then target), then the four test cells."""
    key = zlib.crc32(machine.name.encode())
    rng = np.random.default_rng([seed, key])
    cells = [("train", "source", "normal", preset.source_train), ("train", "target", "normal", preset.target_train)]
    cells += [("test", d, label, preset.test_per_cell) for d in ("source", "target") for label in ("normal", "anomaly")]
    plans: list[ClipPlan] = []
    for split, domain, label, count in cells:
        conditions = list(itertools.product(*[[(a.key, v) for v in getattr(a, domain)] for a in machine.attributes]))
        chosen = rng.permutation(np.arange(count) % len(conditions))
        kinds = rng.permutation(np.arange(count) % len(machine.faults))
        severities = rng.random(count)
        for index in range(count):
            fault = Fault(machine.faults[kinds[index]], float(severities[index])) if label == "anomaly" else None
            plans.append(
                ClipPlan(
                    machine.name, split, domain, label, index, conditions[chosen[index]], fault, (seed, key, len(plans))
                )
            )
    return plans


def render_clip(plan: ClipPlan, seconds: float) -> np.ndarray:
    """[samples] float32 audio of one planned clip, peak below 1."""
    machine = MACHINES_BY_NAME[plan.machine]
    rng = np.random.default_rng(plan.entropy)
    n = int(seconds * SAMPLE_RATE)
    values = dict(plan.attributes)
    sound = unit_rms(machine.sound(rng, values, plan.fault, n))
    background = values[machine.background] if machine.background else str(rng.choice(SOURCE_BACKGROUNDS))
    ratio_db = rng.uniform(*machine.snr_db)
    x = unit_rms(sound + 10 ** (-ratio_db / 20) * factory_background(rng, background, n))
    x *= 0.05 * 10 ** (rng.uniform(-LOUDNESS_DB, LOUDNESS_DB) / 20)
    peak = np.max(np.abs(x))
    if peak > 0.99:  # rare loud impacts: scale the clip rather than clip it
        x *= 0.99 / peak
    return x.astype(np.float32)


def _write_clip(job: tuple[ClipPlan, float, Path]) -> None:
    plan, seconds, folder = job
    write_wav(folder / plan.split / plan.file_name, render_clip(plan, seconds), SAMPLE_RATE)


def write_corpus(out: Path, preset_name: str = "dcase", seed: int = 0, workers: int = 1, force: bool = False) -> Path:
    """Write every machine type of a preset under `<out>/dev_data/raw/`; return that folder.

    Raises:
        FileExistsError: a machine folder holds another corpus (or a broken one) and `force` is off.
    """
    preset = PRESETS[preset_name]
    raw = out / "dev_data" / "raw"
    stamp = json.dumps({"preset": preset_name, "seed": seed, "generator_version": GENERATOR_VERSION}, sort_keys=True)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for name in preset.machines:
            final = raw / name
            if (final / COMPLETED).is_file() and (final / COMPLETED).read_text() == stamp and not force:
                log.info("skipping %s, already written (%s)", final, stamp)
                continue
            if final.exists() and not force:
                raise FileExistsError(
                    f"{final} holds another or an unfinished corpus (not {stamp}): pass --force "
                    "to rewrite it, or choose another --out"
                )
            partial = out / ".partial" / name
            shutil.rmtree(partial, ignore_errors=True)
            plans = plan_machine(MACHINES_BY_NAME[name], preset, seed)
            jobs = [(p, preset.seconds, partial) for p in plans]
            for _ in tqdm(pool.map(_write_clip, jobs, chunksize=8), total=len(jobs), desc=name, unit="clip"):
                pass
            write_attribute_table(partial, [p.table_row() for p in plans])
            (partial / COMPLETED).write_text(stamp)
            shutil.rmtree(final, ignore_errors=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            partial.rename(final)
            log.info("%s: %d clips -> %s", name, len(plans), final)
    shutil.rmtree(out / ".partial", ignore_errors=True)
    return raw


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/shift"), help="corpus folder (default: data/shift)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="dcase",
        help="dcase: 7 machine types, 1000 + 200 clips of 10 s each; small: 4 types, 96 clips of 2 s",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes rendering clips")
    parser.add_argument("--force", action="store_true", help="rewrite machine types already written")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.workers < 1 or args.seed < 0:
        parser.error(f"--workers must be at least 1 and --seed at least 0, got {args.workers} and {args.seed}")
    setup_logging(args.out / "shift_corpus.log")
    log.info(
        "shift corpus: preset %s, seed %d, %d worker(s), generator version %d -> %s",
        args.preset,
        args.seed,
        args.workers,
        GENERATOR_VERSION,
        args.out,
    )
    try:
        raw = write_corpus(args.out, args.preset, args.seed, args.workers, args.force)
    except FileExistsError as e:
        log.error("%s", e)
        return 1
    log.info("done: %s (synthetic sounds: a benchmark of domain shift, not a substitute for real DCASE data)", raw)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
