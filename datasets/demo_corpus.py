"""Write a small synthetic corpus in the DCASE 2024 layout, for the demo and the tests.

    python -m datasets.demo_corpus --out data/demo

Writes `<out>/dev_data/raw/<machine>/{train,test}/*.wav` with `attributes_00.csv`, and
`<out>/eval_data/raw/<machine>/{train,test}/*.wav` whose test clips carry anonymous names, plus
the official-format label list `<out>/eval_data_list_demo.csv` for them. Everything is
deterministic for a given seed and takes seconds.

The sounds are synthetic machines, NOT a substitute for real DCASE data: a harmonic rotor, a
resonant pump, a gear mesh, a clicking valve. Each has an operating attribute (speed, load,
pattern) that is shifted in the target domain, and a microphone attribute. Source and target
training clips are imbalanced like DCASE's 990:10, scaled down. Every clip is scaled to a random
loudness, so level alone tells nothing; anomalies (imbalance wobble, cavitation crackle, a broken
tooth, a leak hiss) are small changes of spectral and temporal structure.
"""

from __future__ import annotations

import argparse
import csv
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from datasets.corpus_layout import attribute_string, clip_name, write_attribute_table, write_wav

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Machine:
    name: str
    attribute: str  # the operating attribute that the domain shift changes
    source_values: tuple[str, ...]
    target_values: tuple[str, ...]
    render: Callable[[np.random.Generator, float, bool, int], np.ndarray]  # (rng, value, anomalous, samples)


def _t(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _coloured_noise(rng: np.random.Generator, n: int, low: float, high: float) -> np.ndarray:
    sos = signal.butter(2, [low, high], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(n))


def _rotor(rng, speed, anomalous, n):
    """Blade-pass harmonics of a rotor at `speed` rev/s; anomaly: imbalance wobble + half-order tone."""
    t = _t(n)
    f0 = speed * 6 * (1 + 0.01 * rng.standard_normal())
    x = sum((0.8**k) * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 8))
    x = x + 0.6 * _coloured_noise(rng, n, 200, 6000)
    if anomalous:
        wobble = 1 + 0.15 * np.sin(2 * np.pi * speed * t + rng.uniform(0, 2 * np.pi))
        x = x * wobble + 0.08 * np.sin(2 * np.pi * 2.5 * f0 * t)
    return x


def _pump(rng, load, anomalous, n):
    """Resonant flow noise whose resonances move with `load`; anomaly: sparse cavitation crackle."""
    centre = 400 + 30 * load
    x = sum(
        _coloured_noise(rng, n, c * 0.9, c * 1.1) * g
        for c, g in ((centre, 1.0), (2.3 * centre, 0.6), (4.1 * centre, 0.3))
    )
    x = x + 0.3 * _coloured_noise(rng, n, 100, 7000)
    if anomalous:
        crackle = (rng.random(n) < 0.002) * rng.standard_normal(n) * 2.5
        x = x + signal.sosfilt(signal.butter(2, 3000, btype="highpass", fs=SAMPLE_RATE, output="sos"), crackle)
    return x


def _gears(rng, speed, anomalous, n):
    """Gear-mesh tone (teeth x speed) with harmonics; anomaly: a broken tooth, one knock per revolution."""
    t = _t(n)
    mesh = 23 * speed * (1 + 0.005 * rng.standard_normal())
    x = (
        np.sin(2 * np.pi * mesh * t)
        + 0.5 * np.sin(2 * np.pi * 2 * mesh * t + 1.0)
        + 0.5 * _coloured_noise(rng, n, 100, 5000)
    )
    if anomalous:
        period = int(SAMPLE_RATE / speed)
        knocks = np.zeros(n)
        knocks[rng.integers(0, period) :: period] = 1.2
        ring = np.exp(-np.arange(400) / 60.0) * np.sin(2 * np.pi * 1800 * np.arange(400) / SAMPLE_RATE)
        x = x + np.convolve(knocks, ring)[:n]
    return x


def _valve(rng, pattern, anomalous, n):
    """Open/close clicks every `pattern` tenths of a second over a hum; anomaly: a leak hiss while closed."""
    period = int(SAMPLE_RATE * pattern / 10)
    clicks = np.zeros(n)
    start = rng.integers(0, period)
    clicks[start::period] = 1.0
    click = np.exp(-np.arange(300) / 40.0) * rng.standard_normal(300)
    x = (
        np.convolve(clicks, click)[:n] * 4
        + 0.3 * np.sin(2 * np.pi * 50 * _t(n))
        + 0.2 * _coloured_noise(rng, n, 100, 4000)
    )
    if anomalous:
        x = x + 0.2 * _coloured_noise(rng, n, 4000, 7500)
    return x


DEV_MACHINES = (
    Machine("SynthFan", "spd", ("20", "25"), ("32",), _rotor),
    Machine("SynthPump", "load", ("4", "6"), ("9",), _pump),
    Machine("SynthGearbox", "spd", ("14", "18"), ("24",), _gears),
    Machine("SynthValve", "pat", ("3", "5"), ("7",), _valve),
)
EVAL_MACHINES = (
    Machine("SynthBlower", "spd", ("15", "18"), ("24",), _rotor),
    Machine("SynthConveyor", "spd", ("10", "12"), ("16",), _gears),
)


@dataclass(frozen=True)
class CorpusSize:
    seconds: float = 2.0
    source_train: int = 60
    target_train: int = 4
    test_per_group: int = 12  # clips per (domain, normal/anomaly)


def render_clip(
    machine: Machine, domain: str, anomalous: bool, rng: np.random.Generator, seconds: float
) -> tuple[np.ndarray, str, str]:
    """One clip: [samples] float32, its attribute value and microphone."""
    value = rng.choice(machine.source_values if domain == "source" else machine.target_values)
    mic = "1" if domain == "source" else "2"
    n = int(seconds * SAMPLE_RATE)
    x = machine.render(rng, float(value), anomalous, n)
    if mic == "2":  # another microphone: a duller, noisier channel
        x = signal.sosfilt(signal.butter(2, 4000, fs=SAMPLE_RATE, output="sos"), x) + 0.3 * np.std(
            x
        ) * rng.standard_normal(n)
    x = x / (np.sqrt(np.mean(x**2)) + 1e-12) * 0.05 * 10 ** (rng.uniform(-6, 6) / 20)
    return np.clip(x, -1, 1).astype(np.float32), str(value), mic


def write_machine(
    raw_dir: Path, machine: Machine, size: CorpusSize, seed: int, anonymous_test: bool
) -> list[tuple[str, str]]:
    """Write one machine type's clips and attribute table; return (anonymous, labelled) test names."""
    rng = np.random.default_rng([seed, zlib.crc32(machine.name.encode())])
    plan = [("train", "source", False)] * size.source_train + [("train", "target", False)] * size.target_train
    for domain in ("source", "target"):
        for anomalous in (False, True):
            plan += [("test", domain, anomalous)] * size.test_per_group
    test_order = rng.permutation(sum(1 for p in plan if p[0] == "test"))
    rows, renames, counters, test_i = [], [], {}, 0
    for split, domain, anomalous in plan:
        wave, value, mic = render_clip(machine, domain, anomalous, rng, size.seconds)
        label = "anomaly" if anomalous else "normal"
        key = (split, domain, label)
        index = counters.get(key, 0)
        counters[key] = index + 1
        pairs = [(machine.attribute, value), ("mic", mic)]
        name = clip_name(domain, split, label, index, attribute_string(pairs))
        if split == "test" and anonymous_test:
            anonymous = f"section_00_{test_order[test_i]:04d}.wav"
            test_i += 1
            renames.append((anonymous, name))
            name = anonymous
        write_wav(raw_dir / machine.name / split / name, wave, SAMPLE_RATE)
        listed = [] if split == "test" and anonymous_test else [part for pair in pairs for part in pair]
        rows.append([f"{machine.name}/{split}/{name}"] + listed)
    write_attribute_table(raw_dir / machine.name, rows)
    return sorted(renames)


def write_corpus(out: Path, size: CorpusSize = CorpusSize(), seed: int = 0) -> Path:
    """Write the whole demo corpus under `out`; return `out`."""
    for machine in DEV_MACHINES:
        write_machine(out / "dev_data" / "raw", machine, size, seed, anonymous_test=False)
    with (out / "eval_data_list_demo.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        for machine in EVAL_MACHINES:
            writer.writerow([machine.name])
            writer.writerows(write_machine(out / "eval_data" / "raw", machine, size, seed, anonymous_test=True))
    return out


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/demo"), help="corpus folder (default: data/demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=CorpusSize.seconds, help="clip length")
    parser.add_argument("--source-train", type=int, default=CorpusSize.source_train)
    parser.add_argument("--target-train", type=int, default=CorpusSize.target_train)
    parser.add_argument("--test-per-group", type=int, default=CorpusSize.test_per_group)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    size = CorpusSize(args.seconds, args.source_train, args.target_train, args.test_per_group)
    write_corpus(args.out, size, args.seed)
    print(f"demo corpus written to {args.out} (synthetic sounds: not a substitute for real DCASE data)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
