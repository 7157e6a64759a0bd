"""Label the evaluation test clips of one year with the official list, as its own command.

    python -m tools.label_eval --year 2024                      the official list (fetched, md5-checked)
    python -m tools.label_eval --year 2024 --list FILE_OR_URL   a list you have

Reads `<data root>/dcase<year>t2/eval_data/raw/<machine>/test/*.wav` and the list (a local file, or
a URL fetched to `<data root>/dcase<year>t2/eval_data_list_<year>.csv`). Writes
`<machine>/test_rename/` and `<machine>/eval_labels.csv` (see `datasets.eval_labels`).
`./00_download.sh -e` runs the same step after unpacking.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from datasets.catalog import year_info
from datasets.download import DownloadError, FetchSettings, fetch, file_md5
from datasets.eval_labels import LabelListError, LabelResult, label_dataset, read_label_list
from datasets.manifest import DatasetError, dataset_dir, find_raw_dir
from tools.config import DEFAULT_CONFIG, ConfigError, DownloadConfig, load_config, parse_overrides
from tools.runtime import setup_logging

log = logging.getLogger("tools.label_eval")


def fetch_settings(cfg: DownloadConfig) -> FetchSettings:
    return FetchSettings(
        retries=cfg.retries,
        backoff_seconds=cfg.backoff_seconds,
        timeout_seconds=cfg.timeout_seconds,
        chunk_bytes=cfg.chunk_bytes,
    )


def list_source(year: int, explicit: str | None, template: str | None) -> tuple[str, str | None] | None:
    """(location, md5 or None) of the label list to use, or None when none is known for `year`.

    Precedence: `explicit` (--list / --label-list), then `template` (download.label_list_url, with
    `{year}` filled in), then the official list recorded in the catalogue (the only one with an md5).
    """
    if explicit:
        return explicit, None
    if template:
        return template.replace("{year}", str(year)), None
    entry = year_info(year).eval_label_list
    return (entry["url"], entry.get("md5")) if entry else None


def load_list(location: str, md5: str | None, year: int, dataset_dir: Path, settings: FetchSettings) -> dict[str, list[tuple[str, str]]]:
    """Read the list at `location`: a local path, or a URL fetched once into `dataset_dir`."""
    if not location.startswith(("http://", "https://")):
        path = Path(location)
        if not path.is_file():
            raise LabelListError(f"label list {path} does not exist")
        return read_label_list(path)
    dest = dataset_dir / f"eval_data_list_{year}.csv"
    if md5 and dest.is_file() and file_md5(dest) == md5:
        log.info("label list already fetched and verified: %s", dest)
    else:
        log.info("fetching the label list %s -> %s", location, dest)
        try:
            fetch(location, dest, md5=md5, settings=settings)
        except DownloadError as e:
            raise LabelListError(
                f"could not fetch the label list ({e}). The evaluation clips stay unlabelled: get "
                f"eval_data_list_{year}.csv another way and run python -m tools.label_eval --year {year} --list FILE"
            ) from None
    return read_label_list(dest)


def label_evaluation(
    data_root: Path, year: int, machines: list[str], location: str, md5: str | None, settings: FetchSettings, force: bool = False
) -> list[LabelResult]:
    """Stage: label the evaluation test clips of `year` under `data_root` with the list at `location`."""
    raw_dir = find_raw_dir(data_root, year, "eval")
    lists = load_list(location, md5, year, dataset_dir(data_root, year), settings)
    results = label_dataset(raw_dir, lists, machines or None, force=force)
    for r in results:
        if r.skipped:
            log.info("%s: already labelled with this list, skipping (--force to redo)", r.machine)
        else:
            log.info("%s: %d test clips labelled -> %s/test_rename/ (%s), eval_labels.csv", r.machine, r.clips, raw_dir / r.machine, "hard links" if r.linked else "copies")
    if not results:
        log.warning("no evaluation test clips found under %s: nothing labelled (run ./00_download.sh -e --year %d first)", raw_dir, year)
    return results


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.label_eval",
        description="Label the anonymous evaluation test clips with the official eval_data_list_<year>.csv: "
        "writes <machine>/test_rename/<labelled name>.wav and <machine>/eval_labels.csv.",
        epilog="Any key of baseline.yaml can be overridden as --section.key value, e.g. --download.timeout_seconds 10.",
    )
    parser.add_argument("--list", dest="label_list", help="label list: a file or an http(s) URL (default: download.label_list_url, "
                        "else the official list of the year named in datasets/dcase_catalog.yaml, md5-checked)")
    parser.add_argument("--data-root", help="data root holding dcase<year>t2/ (default: data.root of baseline.yaml)")
    parser.add_argument("--year", type=int, help="DCASE Task 2 year (default: data.year of baseline.yaml)")
    parser.add_argument("--machines", help="comma-separated machine types (default: every one with test clips)")
    parser.add_argument("--force", action="store_true", help="label again although the same labels are already there")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="configuration file (default: baseline.yaml)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    args, extra = parser.parse_known_args(argv)
    setup_logging()
    try:
        overrides = parse_overrides(extra)
        if args.data_root:
            overrides["data.root"] = args.data_root
        if args.year is not None:
            overrides["data.year"] = args.year
        cfg = load_config(args.config, overrides)
        year = cfg.data.year
        source = list_source(year, args.label_list, cfg.download.label_list_url)
        if source is None:
            log.error("no label list is published for DCASE%d Task 2: nothing labelled. Pass --list FILE if you have one", year)
            return 1
        machines = [m for m in (args.machines or "").split(",") if m]
        label_evaluation(Path(cfg.data.root), year, machines, source[0], source[1], fetch_settings(cfg.download), args.force)
    except (ConfigError, LabelListError, DatasetError, ValueError) as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
