"""Download, verify, unpack and label the DCASE Task 2 data of one year (run by ./00_download.sh).

Stage 1: download: Zenodo (or --base-url) -> `<root>/dcase<year>t2/zips/<zip>` (parallel, resumable,
         md5-checked where the catalogue records it; see `datasets.fetch`)
Stage 2: unpack: zips -> `<root>/dcase<year>t2/<dev|eval>_data/raw/<machine>/{train,test}/` with a
         `.completed_<zip>` marker per archive (see `datasets.unpack`)
Stage 3: label (with -e): eval_data_list_<year>.csv -> `<machine>/test_rename/`, `eval_labels.csv`
         (see `datasets.eval_labels`)
Logs to the console and to `<root>/dcase<year>t2/download.log`. A rerun skips what is complete.
"""

from __future__ import annotations

import argparse
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from core.cli import command_parser, parse_command_line
from core.config import Config, ConfigError
from core.runtime import setup_logging
from datasets.catalog import ARCHIVE_KINDS, ZENODO_URL, Archive, YearInfo, archive_mode, newest_year, year_info
from datasets.eval_labels import LabelListError
from datasets.fetch import DownloadError, FetchSettings, fetch, file_md5, partial_path, remote_size
from datasets.label_lists import label_evaluation, list_source
from datasets.manifest import DatasetError, dataset_dir, official_raw_dir
from datasets.unpack import UnpackError, is_unpacked, unpack_archive

log = logging.getLogger("tools.download")

KIND_LABELS = {
    "dev": "development data",
    "additional_train": "additional training data",
    "eval_test": "evaluation test data",
}


@dataclass
class Item:
    """One archive of the plan and what is already on disk for it."""

    archive: Archive
    url: str
    zip_path: Path
    raw_dir: Path
    state: str = "fetch"  # unpacked | zip (downloaded, not unpacked) | partial | fetch
    size: int | None = None  # bytes the server announces
    have: int = 0  # bytes of a partial download already on disk


def plan_archives(info: YearInfo, kinds: list[str], machines: list[str]) -> list[Archive]:
    """The archives of `kinds` for `machines` (empty: every machine type of each kind's set).

    Raises:
        ValueError: a kind not yet published for the year, a machine type of neither set, or a kind
            none of the machine types belongs to.
    """
    unpublished = [k for k in kinds if k not in info.archives]
    if unpublished:
        newest = newest_year(unpublished[0])
        raise ValueError(
            f"DCASE{info.year} Task 2 has no published {KIND_LABELS[unpublished[0]]} yet; "
            f"the newest year that has it is {newest} (--year {newest})"
        )
    dev, evaluation = info.machines("dev"), info.machines("eval")
    unknown = [m for m in machines if m not in dev and m not in evaluation]
    if unknown:
        raise ValueError(
            f"--machines: {', '.join(unknown)} is not a machine type of DCASE{info.year} Task 2; "
            f"development: {', '.join(dev)}; evaluation: {', '.join(evaluation)}"
        )
    archives = []
    for kind in kinds:
        known = info.machines(archive_mode(kind))
        chosen = [m for m in machines if m in known] if machines else list(known)
        if not chosen:
            raise ValueError(
                f"none of --machines {','.join(machines)} has {KIND_LABELS[kind]} in DCASE{info.year}; choose from {', '.join(known)}"
            )
        archives += [info.archive(kind, m) for m in chosen]
    return archives


def survey(items: list[Item], force: bool, settings: FetchSettings) -> None:
    """Fill in each item's state from what is on disk."""
    for item in items:
        part = partial_path(item.zip_path)
        if is_unpacked(item.raw_dir / item.archive.machine, item.archive.zip_name) and not force:
            item.state = "unpacked"
        elif item.zip_path.is_file():
            item.state = "zip"
            if force and item.archive.md5 and file_md5(item.zip_path, settings.chunk_bytes) != item.archive.md5:
                log.warning("%s on disk does not have the catalogue's md5; fetching it again", item.zip_path)
                item.zip_path.unlink()
                item.state = "fetch"
        elif part.is_file():
            item.state, item.have = "partial", part.stat().st_size


def announce_sizes(items: list[Item], settings: FetchSettings, jobs: int) -> None:
    """Ask the server (HEAD) how big each file still to be fetched is."""
    pending = [i for i in items if i.state in ("fetch", "partial")]
    with ThreadPoolExecutor(max(jobs, 1)) as pool:
        for item, size in zip(pending, pool.map(lambda i: remote_size(i.url, settings.timeout_seconds), pending)):
            item.size = size


def human(n: int | None) -> str:
    if n is None:
        return "size unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def report_plan(items: list[Item]) -> None:
    """Log one line per archive and the total still to be transferred."""
    notes = {"unpacked": "already unpacked, skipping (--force to redo)", "zip": "downloaded, to unpack"}
    width = max(len(i.archive.zip_name) for i in items)
    for item in items:
        if item.state == "partial":
            note = f"{human(item.size)}, resuming after {human(item.have)}"
        else:
            note = notes.get(item.state) or human(item.size)
        log.info("  %-16s %-20s %-*s %s", item.archive.kind, item.archive.machine, width, item.archive.zip_name, note)
    pending = [i for i in items if i.state in ("fetch", "partial")]
    remaining = sum((i.size or 0) - i.have for i in pending if i.size is not None)
    unknown = sum(1 for i in pending if i.size is None)
    log.info(
        "to fetch: %d of %d files, %s%s",
        len(pending),
        len(items),
        human(max(remaining, 0)),
        f" plus {unknown} of unknown size" if unknown else "",
    )


def download_all(items: list[Item], settings: FetchSettings, jobs: int, cancel: threading.Event) -> dict[str, str]:
    """Fetch every pending item, `jobs` at a time, one progress bar each; zip name -> error."""
    pending = [i for i in items if i.state in ("fetch", "partial")]
    failures: dict[str, str] = {}
    if not pending:
        return failures
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(max(jobs, 1)):
        slots.put(slot)

    def one(item: Item) -> None:
        slot = slots.get()
        try:
            with tqdm(
                total=item.size,
                desc=item.archive.zip_name,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                position=slot,
                leave=False,
                disable=None,
            ) as bar:
                fetch(item.url, item.zip_path, md5=item.archive.md5, settings=settings, progress=bar, cancel=cancel)
        finally:
            slots.put(slot)

    pool = ThreadPoolExecutor(max(jobs, 1))
    try:
        futures = {pool.submit(one, item): item for item in pending}
        for future in as_completed(futures):
            item = futures[future]
            try:
                future.result()
                item.state = "zip"
                log.info(
                    "downloaded %s%s",
                    item.zip_path,
                    " (md5 verified)" if item.archive.md5 else " (no md5 recorded; size checked)",
                )
            except DownloadError as e:
                failures[item.archive.zip_name] = str(e)
                log.error("%s", e)
    except KeyboardInterrupt:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return failures


def unpack_all(
    items: list[Item], info: YearInfo, force: bool, keep_zips: bool, failed_downloads: set[str]
) -> dict[str, str]:
    """Unpack every downloaded item (one at a time: two archives may share a machine folder)."""
    failures: dict[str, str] = {}
    for item in items:
        archive = item.archive
        if item.state == "unpacked":
            log.info(
                "%s: already unpacked in %s, skipping (--force to redo)",
                archive.zip_name,
                item.raw_dir / archive.machine,
            )
            continue
        if archive.zip_name in failed_downloads:
            continue  # reported by stage 1
        if not item.zip_path.is_file():
            failures[archive.zip_name] = f"{item.zip_path} is missing: run stage 1 (download) first"
            log.error("%s", failures[archive.zip_name])
            continue
        try:
            result = unpack_archive(
                item.zip_path,
                item.raw_dir,
                archive.machine,
                archive.kind,
                expected_clips=info.expected_clips(archive.kind, archive.machine),
                sections=info.machines(archive_mode(archive.kind))[archive.machine],
                force=force,
            )
        except UnpackError as e:
            failures[archive.zip_name] = str(e)
            log.error("%s", e)
            continue
        counts = ", ".join(f"{n} {split}" for split, n in result.clips.items())
        log.info("%s -> %s (%s clips)", archive.zip_name, result.machine_dir, counts)
        if not keep_zips:
            item.zip_path.unlink()
    return failures


def get_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "./00_download.sh",
        "Download, verify, unpack and label the DCASE Task 2 data of one year (2020-2026).\n"
        "Choose any of -d, -a, -e. Data lands in <data root>/dcase<year>t2/<dev|eval>_data/raw/<machine>/{train,test}/;\n"
        "zips are kept in <data root>/dcase<year>t2/zips/. Interrupted downloads resume on the next run;\n"
        "what is complete is skipped (--force unpacks and labels again; zips on disk are re-verified, not re-fetched).",
        ["year", "machines", "data_root", "jobs", "force", "label_list"],
        epilog="Stages: 1 download (zips), 2 unpack (raw/<machine>/), 3 label evaluation test clips (with -e).\n"
        "Examples:\n"
        "  ./00_download.sh -d --year 2024                      development data of DCASE2024\n"
        "  ./00_download.sh -a -e --year 2024                   evaluation machine types: training + labelled test data\n"
        "  ./00_download.sh -d --year 2025 --machines fan,valve --jobs 4",
    )
    parser.add_argument("-d", "--dev", action="store_true", help="development data (dev_<machine>.zip)")
    parser.add_argument(
        "-a", "--additional", action="store_true", help="additional training data of the evaluation machine types"
    )
    parser.add_argument("-e", "--eval", action="store_true", help="evaluation test data, then label it (stage 3)")
    parser.add_argument(
        "--base-url",
        default=ZENODO_URL,
        help=f"server that replaces {ZENODO_URL} in every archive URL, "
        "e.g. a mirror serving /records/<id>/files/<zip> (default: %(default)s)",
    )
    parser.add_argument("--no-label", action="store_true", help="do not label the evaluation test clips after -e")
    parser.add_argument("--dry-run", action="store_true", help="print what would be fetched and how much, then stop")
    parser.add_argument(
        "--stage", type=int, default=1, choices=(1, 2, 3), help="first stage to run (default: %(default)s)"
    )
    parser.add_argument(
        "--stop_stage",
        "--stop-stage",
        dest="stop_stage",
        type=int,
        default=3,
        choices=(1, 2, 3),
        help="last stage to run (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    try:
        args, cfg = parse_command_line(parser, argv)
    except ConfigError as e:
        setup_logging()
        log.error("%s", e)
        return 1
    kinds = [k for k, chosen in zip(ARCHIVE_KINDS, (args.dev, args.additional, args.eval)) if chosen]
    if not kinds:
        parser.error(
            "choose what to download: -d (development), -a (additional training), -e (evaluation test); see -h"
        )
    if not args.base_url.startswith(("http://", "https://")):
        parser.error(f"--base-url must start with http:// or https://, not {args.base_url!r}")
    try:
        info = year_info(cfg.data.year)
        archives = plan_archives(info, kinds, cfg.data.machines)
    except ValueError as e:
        setup_logging()
        log.error("%s", e)
        return 1
    root, year = Path(cfg.data.root), info.year
    setup_logging(dataset_dir(root, year) / "download.log")
    settings = FetchSettings.from_config(cfg.download)
    log.info(
        "DCASE%d Task 2: %s; data root %s; base URL %s; %d parallel downloads",
        year,
        ", ".join(KIND_LABELS[k] for k in kinds),
        root,
        args.base_url,
        cfg.download.jobs,
    )
    items = [
        Item(
            a,
            a.url(args.base_url),
            dataset_dir(root, year) / "zips" / a.zip_name,
            official_raw_dir(root, year, archive_mode(a.kind)),
        )
        for a in archives
    ]
    failures: dict[str, str] = {}
    cancel = threading.Event()
    try:
        survey(items, cfg.run.force, settings)
        if args.stage <= 1 <= args.stop_stage or args.dry_run:
            log.info(
                "Stage 1: download: %d archive%s from %s -> %s",
                len(items),
                "s" * (len(items) != 1),
                args.base_url,
                dataset_dir(root, year) / "zips",
            )
            announce_sizes(items, settings, cfg.download.jobs)
            report_plan(items)
            if args.dry_run:
                return 0
            with logging_redirect_tqdm():
                failures.update(download_all(items, settings, cfg.download.jobs, cancel))
        if args.stage <= 2 <= args.stop_stage:
            log.info(
                "Stage 2: unpack: %s -> %s",
                dataset_dir(root, year) / "zips",
                ", ".join(sorted({str(i.raw_dir) for i in items})),
            )
            failures.update(unpack_all(items, info, cfg.run.force, cfg.download.keep_zips, set(failures)))
        if args.stage <= 3 <= args.stop_stage and "eval_test" in kinds:
            failures.update(
                _label_stage(args, cfg, info, [i.archive.machine for i in items if i.archive.kind == "eval_test"])
            )
    except KeyboardInterrupt:
        cancel.set()
        log.error(
            "interrupted: partial downloads are kept as <zip>.part in %s and resume on the next run",
            dataset_dir(root, year) / "zips",
        )
        return 130
    if failures:
        log.error(
            "%d of %d archives failed: %s. Fix the cause named above and rerun the same command; "
            "everything complete is skipped",
            len(failures),
            len(items),
            ", ".join(sorted(failures)),
        )
        return 1
    log.info("done: %s", ", ".join(sorted({str(i.raw_dir) for i in items})))
    return 0


def _label_stage(args: argparse.Namespace, cfg: Config, info: YearInfo, machines: list[str]) -> dict[str, str]:
    """Stage 3, or the note why it does not run; label-list name -> error."""
    year = info.year
    if args.no_label:
        log.info("Stage 3: label: skipped (--no-label); label later with python -m tools.label_eval --year %d", year)
        return {}
    source = list_source(year, cfg.download.label_list_url)
    if source is None:
        log.warning(
            "Stage 3: label: no label list is published for DCASE%d: the evaluation test clips stay unlabelled "
            "(pass --label-list FILE if you have one)",
            year,
        )
        return {}
    raw = official_raw_dir(cfg.data.root, year, "eval")
    log.info("Stage 3: label: %s -> %s/<machine>/test_rename/, eval_labels.csv", source[0], raw)
    try:
        label_evaluation(
            Path(cfg.data.root),
            year,
            machines,
            source[0],
            source[1],
            FetchSettings.from_config(cfg.download),
            cfg.run.force,
        )
    except (LabelListError, DatasetError) as e:
        log.error("labelling failed: %s", e)
        return {f"eval_data_list_{year}.csv": str(e)}
    return {}


if __name__ == "__main__":
    raise SystemExit(main())
