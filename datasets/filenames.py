"""DCASE Task 2 file names (2020-2026) -> the facts they encode.

Pure functions on names; reads and writes nothing. Every scheme the datasets use is accepted:

- 2020: `normal_id_00_00000000.wav`, `anomaly_id_00_...`, unlabelled evaluation `id_05_00000000.wav`
  (2020 had no domains: its clips count as source domain);
- 2021-2026: `section_00_<source|target>_<train|test>_<normal|anomaly>_<nnnn>[_<attributes>].wav`,
  where attributes are `k1_v1_k2_v2...`, empty (`..._0000_.wav`) or hidden (`noAttribute`);
- 2024 RoboticArm labelled evaluation names without the split: `section_00_source_normal_0035_weight15_BckgF.wav`;
- unlabelled evaluation names `section_00_0000.wav` and, in 2021, `section_03_source_test_0000.wav`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HIDDEN_ATTRIBUTES = "noAttribute"

_WAV = r"\.(?i:wav)$"
_SCHEMES = (
    ("2020", re.compile(r"^(?:(?P<label>normal|anomaly)_)?id_(?P<section>\d{2})_(?P<index>\d+)" + _WAV)),
    (
        "2021-2026",
        re.compile(
            r"^section_(?P<section>\d{2})_(?P<domain>source|target)_(?:(?P<split>train|test)_)?"
            r"(?P<label>normal|anomaly)_(?P<index>\d+)(?:_(?P<attributes>.*?))?" + _WAV
        ),
    ),
    (
        "2021 evaluation",
        re.compile(r"^section_(?P<section>\d{2})_(?P<domain>source|target)_(?P<split>test)_(?P<index>\d+)" + _WAV),
    ),
    ("evaluation", re.compile(r"^section_(?P<section>\d{2})_(?P<index>\d+)" + _WAV)),
)

EXAMPLES = (
    "normal_id_00_00000000.wav",
    "section_00_source_train_normal_0000_vel_16_loc_A.wav",
    "section_00_target_test_anomaly_0015_noAttribute.wav",
    "section_00_0000.wav",
)


class UnrecognisedFileName(ValueError):
    """A file name that matches none of the DCASE naming schemes."""


@dataclass(frozen=True)
class NameFields:
    """What a clip's file name says. None where the name does not say it."""

    section: str
    domain: str | None  # source | target
    split: str | None  # train | test
    label: str | None  # normal | anomaly
    index: int
    attribute_string: str | None  # text after the index; "" for `..._0000_.wav`; None if absent

    @property
    def hidden_attributes(self) -> bool:
        return self.attribute_string == HIDDEN_ATTRIBUTES

    @property
    def attributes(self) -> tuple[tuple[str, str], ...]:
        """(key, value) pairs read from `k1_v1_k2_v2`; empty when the text does not pair up."""
        if not self.attribute_string or self.hidden_attributes:
            return ()
        tokens = self.attribute_string.split("_")
        if len(tokens) % 2:
            return ()
        return tuple(zip(tokens[::2], tokens[1::2]))


def parse_file_name(name: str) -> NameFields:
    """Parse one clip file name (no folders) into its fields.

    Raises:
        UnrecognisedFileName: the name fits no DCASE scheme; the message names the file and shows
            examples of names that are accepted.
    """
    for scheme, pattern in _SCHEMES:
        match = pattern.match(name)
        if match:
            fields = match.groupdict()
            return NameFields(
                section=fields["section"],
                domain=fields.get("domain") or ("source" if scheme == "2020" else None),
                split=fields.get("split"),
                label=fields.get("label"),
                index=int(fields["index"]),
                attribute_string=fields.get("attributes"),
            )
    raise UnrecognisedFileName(
        f"file name {name!r} matches no DCASE naming scheme; expected names like " + ", ".join(EXAMPLES)
    )
