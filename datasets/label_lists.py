"""Which evaluation label list to use, fetching it, and labelling a year's evaluation clips with it.

Reads the catalogue's official list entry, a local list or one fetched over HTTP into
`<data root>/dcase<year>t2/eval_data_list_<year>.csv`; writes through `datasets.eval_labels`
(`<machine>/test_rename/`, `<machine>/eval_labels.csv`). Used by `./00_download.sh -e` and
`python -m tools.label_eval`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from datasets.catalog import year_info
from datasets.eval_labels import LabelListError, LabelResult, label_dataset, read_label_list
from datasets.fetch import DownloadError, FetchSettings, fetch, file_md5
from datasets.manifest import dataset_dir, find_raw_dir

log = logging.getLogger(__name__)


def list_source(year: int, location: str | None) -> tuple[str, str | None] | None:
    """(location, md5 or None) of the label list to use, or None when none is known for `year`.

    `location` (download.label_list_url, --label-list; `{year}` is filled in) wins; else the
    official list recorded in the catalogue (the only one with an md5).
    """
    if location:
        return location.replace("{year}", str(year)), None
    entry = year_info(year).eval_label_list
    return (entry["url"], entry.get("md5")) if entry else None


def load_list(
    location: str, md5: str | None, year: int, dataset_dir: Path, settings: FetchSettings
) -> dict[str, list[tuple[str, str]]]:
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
                f"eval_data_list_{year}.csv another way and run python -m tools.label_eval --year {year} --label-list FILE"
            ) from None
    return read_label_list(dest)


def label_evaluation(
    data_root: Path,
    year: int,
    machines: list[str],
    location: str,
    md5: str | None,
    settings: FetchSettings,
    force: bool = False,
) -> list[LabelResult]:
    """Stage: label the evaluation test clips of `year` under `data_root` with the list at `location`."""
    raw_dir = find_raw_dir(data_root, year, "eval")
    lists = load_list(location, md5, year, dataset_dir(data_root, year), settings)
    results = label_dataset(raw_dir, lists, machines or None, force=force)
    for r in results:
        if r.skipped:
            log.info("%s: already labelled with this list, skipping (--force to redo)", r.machine)
        else:
            log.info(
                "%s: %d test clips labelled -> %s/test_rename/ (%s), eval_labels.csv",
                r.machine,
                r.clips,
                raw_dir / r.machine,
                "hard links" if r.linked else "copies",
            )
    if not results:
        log.warning(
            "no evaluation test clips found under %s: nothing labelled (run ./00_download.sh -e --year %d first)",
            raw_dir,
            year,
        )
    return results
