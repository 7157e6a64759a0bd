"""The training-step benchmark runs as a real process and prints `name value unit` lines per mode."""
from __future__ import annotations

import sys

from tests.conftest import run_script


def test_training_step_benchmark_prints_one_figure_set_per_mode():
    result = run_script([sys.executable, "-m", "tools.benchmark_beats_training", "--preset", "tiny", "--seconds", "1",
                         "--batch", "2", "--iters", "1", "--threads", "1", "--modes", "frozen,finetune", "--no-gpu"],
                        timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = {}
    for line in result.stdout.splitlines():
        name, value, unit = line.split(" ")
        figures[name] = (float(value), unit)
    for mode in ("frozen", "finetune"):
        assert figures[f"cpu_{mode}_train_step_seconds"][1] == "s" and figures[f"cpu_{mode}_train_step_seconds"][0] > 0
        assert figures[f"cpu_{mode}_peak_rss"][1] == "MiB"
    # the frozen encoder trains only pooling, projection and head
    assert figures["cpu_frozen_trainable_parameters"][0] < figures["cpu_finetune_trainable_parameters"][0]
    assert "cpu_lora_train_step_seconds" not in figures and figures["batch"] == (2.0, "clips")
