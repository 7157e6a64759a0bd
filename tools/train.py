"""Train a system on the normal training clips: `./01_train.sh -d|-e [--system NAME] ...`.

Reads `<raw>/<machine>/train/*.wav` of every selected machine type; writes, per model folder
(`models/<dev|eval>_data/<system>/<machine or all>/`), the model, its resolved `config.yaml`,
`train_scores.csv` (each training clip's score per scorer, for the decision thresholds) and a
`.completed` marker holding the training fingerprint. A finished model with the same
fingerprint is skipped; `--force` retrains. A machine type that fails does not stop the others;
the run exits 1 at the end naming it. Under torchrun (`./01_train.sh --nproc-per-node N`) every
process joins one PyTorch process group and only rank 0 writes files.
"""
from __future__ import annotations

import json
import logging
import os
import sys

import torch
import torch.distributed as dist

from datasets.audio import AudioError
from datasets.manifest import DatasetError, open_dataset
from networks.registry import get_system
from networks.system import RunContext
from tools.cli import config_from_args, run_parser
from tools.atomic import write_csv
from tools.config import ConfigError, save_config
from tools.layout import COMPLETE_MARKER, TRAIN_SCORES_FILE, model_groups, model_root, training_fingerprint
from tools.runtime import pick_device, seed_everything, setup_logging

log = logging.getLogger("train")


def get_parser():
    return run_parser("01_train.sh", "Train an anomalous sound detection system on normal training clips.")


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    try:
        cfg = config_from_args(parser, argv)
        system_cls = get_system(cfg.run.system)
    except (ConfigError, KeyError) as e:
        parser.error(str(e).strip('"'))
    root = model_root(cfg)
    rank = int(os.environ.get("RANK", "0"))
    setup_logging(root / "train.log" if rank == 0 else None, "INFO" if rank == 0 else "WARNING")
    try:
        dataset = open_dataset(cfg.data.root, cfg.data.year, cfg.run.mode, cfg.data.machines)
    except DatasetError as e:
        log.error("%s", e)
        return 1
    device = _init_distributed(pick_device(cfg.run.device))
    log.info("configuration: %s", json.dumps(cfg.to_dict()))
    log.info("system %s, mode %s, data %s, machines %s, device %s, seed %d", cfg.run.system, cfg.run.mode,
             dataset.raw_dir, ",".join(dataset.machines), device, cfg.run.seed)
    ctx = RunContext(cfg, device, dataset.expected_channels)
    failed = []
    for group, machines in model_groups(system_cls.scope, dataset.machines).items():
        out = root / group
        stamp = training_fingerprint(cfg, machines)
        marker = out / COMPLETE_MARKER
        if not cfg.run.force and marker.is_file() and marker.read_text().strip() == stamp:
            log.info("%s: skipping, already trained with this configuration (--force to retrain)", group)
            continue
        log.info("Training %s: %s train clips -> %s", group, ",".join(machines), out)
        seed_everything(cfg.run.seed, device)
        try:
            clips = [c for m in machines for c in dataset.clips(m, "train")]
            system = system_cls(ctx).fit(clips, out)
        except (DatasetError, AudioError, ConfigError) as e:
            log.error("%s: training failed: %s", group, e)
            failed.append(group)
            continue
        except Exception:
            log.exception("%s: training failed", group)
            failed.append(group)
            continue
        if rank == 0:
            marker.unlink(missing_ok=True)
            system.save(out)
            save_config(cfg, out / "config.yaml")
            _write_train_scores(out / TRAIN_SCORES_FILE, system)
            marker.write_text(stamp + "\n")
        log.info("%s: done (%d training clips)", group, len(system.train_clips_))
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    if failed:
        log.error("training failed for: %s", ", ".join(failed))
        return 1
    return 0


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


def _write_train_scores(path, system) -> None:
    scorers = list(system.train_scores_)
    rows = [["machine", "section", "domain", "name"] + scorers]
    rows += [[clip.machine, clip.section, clip.domain, clip.name] + [repr(float(system.train_scores_[s][i])) for s in scorers]
             for i, clip in enumerate(system.train_clips_)]
    write_csv(path, rows)


if __name__ == "__main__":
    sys.exit(main())
