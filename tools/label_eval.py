"""Label the evaluation test clips of one year with the official list, as its own command.

    python -m tools.label_eval --year 2024                            the official list (fetched, md5-checked)
    python -m tools.label_eval --year 2024 --label-list FILE_OR_URL   a list you have

Reads `<data root>/dcase<year>t2/eval_data/raw/<machine>/test/*.wav` and the list (a local file, or
a URL fetched to `<data root>/dcase<year>t2/eval_data_list_<year>.csv`). Writes
`<machine>/test_rename/` and `<machine>/eval_labels.csv` (see `datasets.label_lists`).
`./00_download.sh -e` runs the same step after unpacking.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from core.cli import command_parser, parse_command_line
from core.config import ConfigError
from core.runtime import setup_logging
from datasets.eval_labels import LabelListError
from datasets.fetch import FetchSettings
from datasets.label_lists import label_evaluation, list_source
from datasets.manifest import DatasetError

log = logging.getLogger("tools.label_eval")


def get_parser() -> argparse.ArgumentParser:
    return command_parser(
        "python -m tools.label_eval",
        "Label the anonymous evaluation test clips with the official eval_data_list_<year>.csv: "
        "writes <machine>/test_rename/<labelled name>.wav and <machine>/eval_labels.csv.",
        ["label_list", "data_root", "year", "machines", "force"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    setup_logging()
    try:
        _, cfg = parse_command_line(parser, argv)
        year = cfg.data.year
        source = list_source(year, cfg.download.label_list_url)
        if source is None:
            log.error(
                "no label list is published for DCASE%d Task 2: nothing labelled. Pass --label-list FILE if you have one",
                year,
            )
            return 1
        label_evaluation(
            Path(cfg.data.root),
            year,
            cfg.data.machines,
            source[0],
            source[1],
            FetchSettings.from_config(cfg.download),
            cfg.run.force,
        )
    except (ConfigError, LabelListError, DatasetError, ValueError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
