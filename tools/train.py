"""Train a system on the normal training clips: `./01_train.sh -d|-e [--system NAME] ...`.

Reads `<raw>/<machine>/train/*.wav` of every selected machine type (an ensemble: its members'
models, which are trained first, each into its own folders as `--system <member>` would); writes, per model folder
(`models/<dev|eval>_data/<system>/<machine or all>/`), the model, its resolved `config.yaml`,
`train_scores.csv` (each training clip's score per scorer, for the decision thresholds) and a
`.completed` marker holding the training fingerprint. A finished model with the same
fingerprint whose files load is skipped; a damaged one is rebuilt; `--force` retrains. A machine type that fails does not stop the others;
the run exits 1 at the end naming it. Under torchrun (`./01_train.sh --nproc-per-node N`) every
process joins one PyTorch process group and only rank 0 writes files.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from core.atomic import write_text
from core.cli import RUN_OPTIONS, command_parser, parse_command_line
from core.config import Config, ConfigError, save_config
from core.layout import COMPLETE_MARKER, TRAIN_SCORES_FILE, model_groups, model_root, training_fingerprint
from core.runtime import pick_device, seed_everything, setup_logging
from datasets.audio import AudioError
from datasets.manifest import Dataset, DatasetError, open_dataset
from networks.registry import get_system
from networks.system import ModelFileError, Runtime, System
from networks.train_scores import completion_line, read_train_scores, write_train_scores

log = logging.getLogger("train")


def get_parser():
    return command_parser(
        "01_train.sh",
        "Train an anomalous sound detection system on normal training clips.",
        RUN_OPTIONS,
        mode_required=True,
        epilog="  --nproc-per-node N    (read by 01_train.sh) N training processes, one per GPU, through torchrun /\n"
        '                        PyTorch DDP; several nodes: also set TORCHRUN_ARGS="--nnodes 2 --node-rank 0\n'
        '                        --rdzv-endpoint HOST:29500" (default: --standalone, one node)',
    )


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    try:
        _, cfg = parse_command_line(parser, argv)
        system_cls = get_system(cfg.run.system)
        system_cls.member_configs(cfg)  # an ensemble's unknown member is a usage error before any work
    except (ConfigError, KeyError) as e:
        parser.error(str(e).strip('"'))
    rank = int(os.environ.get("RANK", "0"))
    setup_logging(None, "INFO" if rank == 0 else "WARNING")
    device = pick_device(cfg.run.device)  # before any folder is made: a device this machine lacks leaves none
    try:
        dataset = open_dataset(cfg.data.root, cfg.data.year, cfg.run.mode, cfg.data.machines)
    except DatasetError as e:
        log.error("%s", e)
        return 1
    if rank == 0:  # only now that there is data to train on: a wrong data root leaves no empty folders
        setup_logging(model_root(cfg) / "train.log")
    device = _init_distributed(device)
    runtime = Runtime(device, cfg.data, dataset.expected_channels)
    failed = []
    # An ensemble's members train first, each exactly as `01_train.sh --system <member>` would.
    for member_cfg in system_cls.member_configs(cfg):
        failed += _train_system(member_cfg, dataset, runtime, rank, f"{member_cfg.run.system} ")
    failed += _train_system(cfg, dataset, runtime, rank, "")
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    if failed:
        log.error("training failed for: %s", ", ".join(failed))
        return 1
    return 0


def _train_system(cfg: Config, dataset: Dataset, runtime: Runtime, rank: int, label: str) -> list[str]:
    """Train every model group of `cfg.run.system` into its model folder; return the failed ones
    (prefixed with `label`). Each system logs to its own `train.log` as well as to the console."""
    system_cls = get_system(cfg.run.system)
    root = model_root(cfg)
    if rank == 0:
        setup_logging(root / "train.log")
    log.info("configuration: %s", json.dumps(cfg.to_dict()))
    log.info(
        "system %s, mode %s, data %s, machines %s, device %s, seed %d",
        cfg.run.system,
        cfg.run.mode,
        dataset.raw_dir,
        ",".join(dataset.machines),
        runtime.device,
        cfg.run.seed,
    )
    failed = []
    groups = model_groups(system_cls.scope, dataset.machines)
    for stage, (group, machines) in enumerate(groups.items(), start=1):
        out = root / group
        stamp = training_fingerprint(cfg, machines)
        if not cfg.run.force and _finished(out, stamp, system_cls):
            log.info("%s%s: skipping, already trained with this configuration (--force to retrain)", label, group)
            continue
        log.info(
            "Stage %d: train %s%s: %s -> %s",
            stage,
            label,
            group,
            ", ".join(str(dataset.raw_dir / m / "train") for m in machines),
            out,
        )
        if rank == 0:  # a failed retraining must not leave the previous model looking complete
            (out / COMPLETE_MARKER).unlink(missing_ok=True)
        seed_everything(cfg.run.seed, runtime.device)
        try:
            clips = [c for m in machines for c in dataset.clips(m, "train")]
            system = system_cls.from_config(cfg).fit(clips, runtime, out)
        except (DatasetError, AudioError, ModelFileError) as e:
            log.error("%s%s: training failed: %s", label, group, e)
            failed.append(label + group)
            continue
        except Exception:
            log.exception("%s%s: training failed", label, group)
            failed.append(label + group)
            continue
        if rank == 0:
            system.save(out)
            save_config(cfg, out / "config.yaml")
            write_train_scores(out / TRAIN_SCORES_FILE, system)
            write_text(out / COMPLETE_MARKER, stamp + "\n" + completion_line(out / TRAIN_SCORES_FILE))
        log.info("%s%s: done (%d training clips)", label, group, len(system.train_clips_))
    return failed


def _finished(out: Path, stamp: str, system_cls: type[System]) -> bool:
    """Whether `out` holds a complete model of this configuration that loads: a damaged model
    file or training-score table is rebuilt rather than skipped."""
    marker = out / COMPLETE_MARKER
    if not (marker.is_file() and marker.read_text().partition("\n")[0] == stamp):
        return False
    try:
        system_cls.load(out)
        read_train_scores(out / TRAIN_SCORES_FILE)
    except ModelFileError as e:
        log.warning("%s: retraining, the stored model is unusable: %s", out, e)
        return False
    return True


def _init_distributed(device: torch.device) -> torch.device:
    """Under torchrun (WORLD_SIZE > 1), join the process group (NCCL on GPUs, gloo on CPUs) and
    return this process's device: its own GPU, `cuda:LOCAL_RANK`."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    log.info("process %d of %d, device %s", dist.get_rank(), dist.get_world_size(), device)
    return device


if __name__ == "__main__":
    sys.exit(main())
