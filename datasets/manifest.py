"""Dataset folders on disk -> sorted lists of `Clip` records (machine, section, domain, label, ...).

Reads the folder layout `<raw>/<machine>/{train,test}/*.wav` (2021 development test clips live in
`source_test/` and `target_test/`), the attribute tables `<machine>/attributes_<ss>.csv`, and the
evaluation label map `<machine>/eval_labels.csv` written when evaluation clips are labelled,
and, for your own recordings, the WAV headers (channel counts). Writes nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from datasets.audio import warn_mixed_channels
from datasets.catalog import year_info
from datasets.filenames import NameFields, UnrecognisedFileName, parse_file_name

log = logging.getLogger(__name__)

SPLIT_FOLDERS = {"train": ("train",), "test": ("test", "source_test", "target_test")}
EVAL_LABELS_FILE = "eval_labels.csv"


class DatasetError(RuntimeError):
    """Data missing or laid out in a way we cannot use; the message says what to do."""


@dataclass(frozen=True)
class Clip:
    """One audio clip and everything its name, folder and attribute table tell about it."""

    path: Path
    machine: str
    section: str
    domain: str | None  # source | target | None (unlabelled evaluation clip)
    split: str  # train | test
    label: str | None  # normal | anomaly | None (unlabelled)
    index: int
    attributes: tuple[tuple[str, str], ...]
    attribute_string: str | None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_labelled(self) -> bool:
        return self.label is not None and self.domain is not None

    def with_labels_of(self, fields: NameFields) -> Clip:
        """This clip carrying the domain, label and attributes of its labelled name."""
        return dataclasses.replace(
            self,
            domain=fields.domain,
            label=fields.label,
            attributes=self.attributes or fields.attributes,
            attribute_string=fields.attribute_string,
        )


@dataclass(frozen=True)
class Dataset:
    """The machine folders of one run: where they are and what their clips must look like."""

    raw_dir: Path
    machines: list[str]
    expected_channels: int | None  # None: any channel count is accepted (own recordings)

    def clips(self, machine: str, split: str) -> list[Clip]:
        return machine_clips(self.raw_dir, machine, split)


def dataset_dir(root: str | Path, year: int) -> Path:
    """`<root>/dcase<year>t2`: one year's downloads (zips, logs, label lists and both data sets)."""
    return Path(root) / f"dcase{year}t2"


def official_raw_dir(root: str | Path, year: int, mode: str) -> Path:
    """`<root>/dcase<year>t2/<mode>_data/raw`: where the downloader unpacks the `mode` (dev | eval) set."""
    return dataset_dir(root, year) / f"{mode}_data" / "raw"


def open_dataset(root: str | Path, year: int, mode: str, machines: list[str]) -> Dataset:
    """The dataset of a run: the raw folder under `root`, the machine types to use, and, for the
    official DCASE layout, the channel count the catalogue promises for `year`; in any other layout
    a machine type whose clips have mixed channel counts is warned about."""
    raw_dir = find_raw_dir(root, year, mode)
    official = raw_dir == official_raw_dir(root, year, mode)
    dataset = Dataset(raw_dir, select_machines(raw_dir, machines), year_info(year).channels if official else None)
    if dataset.expected_channels is None:
        for machine in dataset.machines:
            folders = [d for split in SPLIT_FOLDERS for d in split_dirs(raw_dir / machine, split)]
            warn_mixed_channels(machine, wav_files(folders))
    return dataset


def find_raw_dir(root: str | Path, year: int, mode: str) -> Path:
    """The folder holding one machine-type folder per machine, for `mode` (dev | eval).

    `root` may be any of (first match wins):
      1. the data root of the downloads: `<root>/dcase<year>t2/<mode>_data/raw/<machine>/`;
      2. one dataset folder: `<root>/<mode>_data/raw/<machine>/` (e.g. the demo corpus);
      3. a folder of machine folders: `<root>/<machine>/{train,test}/` (your own recordings).
    """
    root = Path(root)
    candidates = (official_raw_dir(root, year, mode), root / f"{mode}_data" / "raw")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    if root.is_dir() and any(split_dirs(d, "train") or split_dirs(d, "test") for d in root.iterdir() if d.is_dir()):
        return root
    flag = mode_flag(mode)
    raise DatasetError(
        f"no {mode} data found under {root}: expected {candidates[0]}/<machine>/train (run "
        f"./00_download.sh {flag} --year {year}{' -a' if mode == 'eval' else ''} first), "
        f"or {candidates[1]}/<machine>/, or {root}/<machine>/{{train,test}}/ for your own recordings"
    )


def discover_machines(raw_dir: Path) -> list[str]:
    """Machine types present under `raw_dir`: every folder with a train or test folder, sorted."""
    machines = sorted(
        d.name for d in raw_dir.iterdir() if d.is_dir() and (split_dirs(d, "train") or split_dirs(d, "test"))
    )
    if not machines:
        raise DatasetError(f"{raw_dir} holds no machine folders (<machine>/train/*.wav)")
    return machines


def select_machines(raw_dir: Path, wanted: list[str]) -> list[str]:
    """`wanted` if given (each must exist), else every machine type on disk."""
    present = discover_machines(raw_dir)
    missing = [m for m in wanted if m not in present]
    if missing:
        raise DatasetError(
            f"machine type(s) {', '.join(missing)} not found under {raw_dir}; present: {', '.join(present)}"
        )
    chosen = list(wanted) or present
    # The official file names (anomaly_score_<machine>_section_<ss>_test.csv) are split at '_'.
    bad = [m for m in chosen if "_" in m]
    if bad:
        raise DatasetError(
            f"machine folder name(s) {', '.join(bad)} under {raw_dir} contain '_', which the official "
            f"submission file names cannot hold: rename them (e.g. {bad[0].replace('_', '-')})"
        )
    return chosen


def machine_clips(raw_dir: Path, machine: str, split: str) -> list[Clip]:
    """All clips of one machine type and split, sorted by file name (the order of submission files).

    Raises:
        DatasetError: the split folder is missing or holds no WAV files, a file name fits no
            scheme, or a name's split contradicts its folder.
    """
    machine_dir = raw_dir / machine
    folders = split_dirs(machine_dir, split)
    if not folders:
        raise DatasetError(f"{machine_dir} has no {split} folder ({'/'.join(SPLIT_FOLDERS[split])})")
    paths = wav_files(folders)
    if not paths:
        raise DatasetError(f"no {split} clips (*.wav) in {', '.join(map(str, folders))}")
    attributes = read_attribute_tables(machine_dir)
    eval_labels = read_eval_labels(machine_dir) if split == "test" else {}
    clips = [_clip(p, machine, split, attributes, eval_labels) for p in paths]
    return sorted(clips, key=lambda c: c.name)


def read_attribute_tables(machine_dir: Path) -> dict[tuple[str, str], tuple[tuple[str, str], ...]]:
    """(split folder, file name) -> attribute pairs, from every `attributes_<ss>.csv` of a machine.

    Rows look like `gearbox/train/section_00_..._wt_150.wav,volt,1.5,wt,150`; empty pairs are
    dropped (unlabelled evaluation rows carry none).
    """
    table: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for path in sorted(machine_dir.glob("attributes_*.csv")):
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        for row in rows[1:]:
            if not row or not row[0]:
                continue
            parts = row[0].replace("\\", "/").split("/")
            values = row[1:]
            pairs = tuple((k, v) for k, v in zip(values[::2], values[1::2]) if k != "")
            table[(parts[-2] if len(parts) > 1 else "", parts[-1])] = pairs
    return table


def read_eval_labels(machine_dir: Path) -> dict[str, str]:
    """Anonymous evaluation name -> labelled name, from `<machine>/eval_labels.csv` if present."""
    path = machine_dir / EVAL_LABELS_FILE
    if not path.is_file():
        return {}
    with path.open(newline="") as f:
        return {row[0]: row[1] for row in csv.reader(f) if len(row) >= 2}


def split_dirs(machine_dir: Path, split: str) -> list[Path]:
    """The folders of `split` (train | test) that exist under `machine_dir` (2021: `source_test/`, `target_test/`)."""
    return [machine_dir / name for name in SPLIT_FOLDERS[split] if (machine_dir / name).is_dir()]


def wav_files(folders: list[Path]) -> list[Path]:
    """The WAV files (`.wav` in any letter case) directly in `folders`, unsorted."""
    return [p for folder in folders for p in folder.iterdir() if p.suffix.lower() == ".wav"]


def mode_flag(mode: str) -> str:
    """The entry points' flag of a mode: `-d` (dev) or `-e` (eval), for messages naming a command."""
    return "-d" if mode == "dev" else "-e"


def _clip(path: Path, machine: str, split: str, attributes: dict, eval_labels: dict[str, str]) -> Clip:
    try:
        fields = parse_file_name(path.name)
    except UnrecognisedFileName as e:
        raise DatasetError(f"{path}: {e}") from None
    if fields.split is not None and fields.split != split:
        raise DatasetError(f"{path}: the name says {fields.split!r} but the file lies in a {split} folder")
    clip = Clip(
        path=path,
        machine=machine,
        section=fields.section,
        domain=fields.domain,
        split=split,
        label=fields.label,
        index=fields.index,
        attributes=attributes.get((path.parent.name, path.name)) or fields.attributes,
        attribute_string=fields.attribute_string,
    )
    if path.name in eval_labels:
        clip = clip.with_labels_of(parse_file_name(eval_labels[path.name]))
    return clip
