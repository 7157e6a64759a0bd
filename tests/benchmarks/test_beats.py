"""The training-step benchmark runs as a real process and prints `name value unit` lines per mode."""

from __future__ import annotations

import sys

from benchmarks.beats_training import random_classifier
from tests.conftest import parse_figures, run_script


def test_training_step_benchmark_prints_its_figures():
    result = run_script(
        [
            sys.executable,
            "-m",
            "benchmarks.beats_training",
            "--preset",
            "tiny",
            "--seconds",
            "1",
            "--batch",
            "2",
            "--iters",
            "1",
            "--threads",
            "1",
            "--modes",
            "lora",
            "--no-gpu",
        ],
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = parse_figures(result.stdout)
    assert figures["cpu_lora_train_step_seconds"][1] == "s" and figures["cpu_lora_train_step_seconds"][0] > 0
    assert figures["cpu_lora_train_clips_per_s"][1] == "clips/s" and figures["cpu_lora_peak_rss"][1] == "MiB"
    assert figures["batch"] == (2.0, "clips") and "cpu_finetune_train_step_seconds" not in figures


def test_benchmarked_modes_train_what_the_system_trains():
    trainable = {}
    for mode in ("frozen", "lora", "finetune"):
        model, _ = random_classifier("tiny", mode, 10, {})
        trainable[mode] = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith("encoder.") for n in trainable["frozen"])
    assert all("lora_" in n for n in trainable["lora"] if n.startswith("encoder."))
    assert trainable["frozen"] < trainable["finetune"] and len(trainable["lora"]) > len(trainable["frozen"])
