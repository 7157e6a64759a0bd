"""The DCASE Task 2 dataset catalogue: years, machine types, sections, archives, checksums.

Reads `datasets/dcase_catalog.yaml` (the single data file of dataset knowledge) and answers
questions about it; writes nothing.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CATALOG_FILE = Path(__file__).with_name("dcase_catalog.yaml")
ZENODO_URL = "https://zenodo.org"
ARCHIVE_KINDS = ("dev", "additional_train", "eval_test")
# The split folders each archive kind brings: an additional-training zip and an evaluation-test zip
# of one machine type unpack into the same `eval_data/raw/<machine>/` folder, one split each.
ARCHIVE_SPLITS = {"dev": ("train", "test"), "additional_train": ("train",), "eval_test": ("test",)}


def archive_mode(kind: str) -> str:
    """The set (dev | eval) whose machine types an archive kind holds."""
    return "dev" if kind == "dev" else "eval"


@dataclass(frozen=True)
class Archive:
    """One downloadable zip: which machine type it holds and where it lives."""

    year: int
    kind: str
    machine: str
    record: int
    zip_name: str
    md5: str | None

    def url(self, base_url: str = ZENODO_URL) -> str:
        """The download URL; `base_url` replaces `https://zenodo.org` (for mirrors and tests)."""
        return f"{base_url.rstrip('/')}/records/{self.record}/files/{self.zip_name}"


@dataclass(frozen=True)
class YearInfo:
    """Everything the catalogue says about one DCASE Task 2 year."""

    year: int
    clip_seconds: float
    max_clip_seconds: float
    channels: int
    section_keyword: str
    archives: dict[str, dict]
    dev_machines: dict[str, tuple[str, ...]]
    eval_machines: dict[str, tuple[str, ...]]
    zip_overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    md5: dict[str, str] = field(default_factory=dict)
    clips_per_section: dict[str, int] = field(default_factory=dict)
    eval_label_list: dict | None = None  # {"url": ..., "md5": ... or None}; None: not published

    def expected_clips(self, kind: str, machine: str) -> dict[str, int]:
        """Split -> least number of WAV files an archive of `kind` must bring for `machine`
        (clips per section x sections); an empty dict where the catalogue does not know the counts."""
        sections = len(self.machines(archive_mode(kind)).get(machine, ()))
        return {
            split: self.clips_per_section[split] * sections
            for split in ARCHIVE_SPLITS[kind]
            if split in self.clips_per_section and sections
        }

    def machines(self, mode: str) -> dict[str, tuple[str, ...]]:
        """Machine type -> section ids of the development (`dev`) or evaluation (`eval`) set."""
        if mode not in ("dev", "eval"):
            raise ValueError(f"mode must be 'dev' or 'eval', not {mode!r}")
        return self.dev_machines if mode == "dev" else self.eval_machines

    def archive(self, kind: str, machine: str) -> Archive:
        """The archive of one kind (`dev`, `additional_train`, `eval_test`) for one machine type."""
        if kind not in ARCHIVE_KINDS:
            raise ValueError(f"unknown archive kind {kind!r}; valid: {', '.join(ARCHIVE_KINDS)}")
        if kind not in self.archives:
            raise KeyError(f"DCASE{self.year} Task 2 has no published {kind} archives yet")
        known = self.machines(archive_mode(kind))
        if machine not in known:
            raise KeyError(
                f"{machine!r} is not a {'development' if kind == 'dev' else 'evaluation'} machine type of "
                f"DCASE{self.year} Task 2; valid: {', '.join(known)}"
            )
        spec = self.archives[kind]
        zip_name = self.zip_overrides.get(kind, {}).get(machine) or spec["zip"].format(machine=machine)
        return Archive(self.year, kind, machine, int(spec["record"]), zip_name, self.md5.get(zip_name))


@functools.cache
def _raw_catalog() -> dict:
    with CATALOG_FILE.open() as f:
        return yaml.safe_load(f)["years"]


def years() -> list[int]:
    """All DCASE Task 2 years in the catalogue, oldest first."""
    return sorted(_raw_catalog())


def year_info(year: int) -> YearInfo:
    """The catalogue entry of one year; an unknown year raises a ValueError listing the known ones."""
    raw = _raw_catalog()
    if year not in raw:
        raise ValueError(f"no DCASE Task 2 data known for year {year}; known years: {', '.join(map(str, years()))}")
    entry = raw[year]
    return YearInfo(
        year=year,
        clip_seconds=float(entry["clip_seconds"]),
        max_clip_seconds=float(entry["max_clip_seconds"]),
        channels=int(entry["channels"]),
        section_keyword=entry["section_keyword"],
        archives=entry["archives"],
        dev_machines={m: tuple(s) for m, s in entry["dev_machines"].items()},
        eval_machines={m: tuple(s) for m, s in entry["eval_machines"].items()},
        zip_overrides=entry.get("zip_overrides", {}),
        md5=entry.get("md5", {}),
        clips_per_section=entry.get("clips_per_section", {}),
        eval_label_list=entry.get("eval_label_list"),
    )


def newest_year(kind: str = "dev") -> int:
    """The newest year whose archives of `kind` are published."""
    return max(y for y in years() if kind in _raw_catalog()[y]["archives"])
