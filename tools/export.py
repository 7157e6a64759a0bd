"""Write a trained model as one self-contained file: `python -m tools.export --model MODEL --out FILE`.

Reads a model folder of `01_train.sh` (or the system's folder of them, with `--machine`); writes
`--out`, a zip archive with the system's weights and fitted scorers (k-NN banks included), its
training settings and training scores (for the decision thresholds and percentiles)
(`networks.model_file`). `./04_score.sh --model FILE` scores with it exactly as with the folder.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.runtime import setup_logging
from networks.model_file import export_model, model_folder
from networks.system import ModelFileError

log = logging.getLogger("export")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.export",
        description="Write a trained model (weights, settings, training scores, k-NN banks) as one file "
        "that ./04_score.sh --model FILE reads.",
        allow_abbrev=False,
    )
    parser.add_argument("--model", type=Path, required=True, help="model folder: models/dev_data/<system>[/<machine>]")
    parser.add_argument("--machine", help="which machine type's model, when --model holds one per machine type")
    parser.add_argument("--out", type=Path, required=True, help="file to write, e.g. fan.model.zip")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        folder = model_folder(args.model, args.machine)
        members = export_model(folder, args.out)
    except ModelFileError as e:
        log.error("%s", e)
        return 1
    log.info("%s -> %s (%.1f MiB: %s)", folder, args.out, args.out.stat().st_size / 2**20, ", ".join(members))
    return 0


if __name__ == "__main__":
    sys.exit(main())
