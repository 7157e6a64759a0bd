"""Clips -> the class labels the BEATs classifier is trained on.

Reads `Clip` records (their machine, section, domain and attribute pairs, which come from
`attributes_XX.csv` or the file name); writes nothing.

The label of a clip is `<machine>_<section>_<attributes>`, e.g. `fan_00_m-n_W_mic_1`, with the
attribute pairs joined by `_` in their listed order. Where a dataset hides the attributes
(`noAttribute`), or a clip has none (2020 names, `..._0000_.wav`), the label falls back to
`<machine>_<section>_<domain>`, so source and target clips still form separate classes. Pairs from
the attribute table win over the name, as in `datasets.manifest`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from datasets.filenames import HIDDEN_ATTRIBUTES
from datasets.manifest import Clip


def class_label(clip: Clip) -> str:
    """The `machine_section_attribute` class of one clip (`machine_section_domain` when hidden)."""
    # `clip.attributes` holds the attribute table's pairs, else the name's; a `noAttribute` name
    # with a filled table row therefore still gets its real attributes.
    hidden = not clip.attributes or any(HIDDEN_ATTRIBUTES in (k, v) for k, v in clip.attributes)
    if not hidden:
        suffix = "_".join(f"{key}_{value}" for key, value in clip.attributes)
    else:
        if clip.domain is None:
            raise ValueError(
                f"{clip.path}: neither attributes nor a domain to build a class label from "
                "(unlabelled evaluation clips cannot be training clips)"
            )
        suffix = clip.domain
    return f"{clip.machine}_{clip.section}_{suffix}"


@dataclass
class ClassIndex:
    """Label strings <-> class indices, sklearn-style: `fit` learns `classes_` (sorted)."""

    classes_: list[str] = field(default_factory=list)

    def fit(self, clips: list[Clip]) -> ClassIndex:
        self.classes_ = sorted({class_label(c) for c in clips})
        return self

    def transform(self, clips: list[Clip]) -> np.ndarray:
        """[len(clips)] int64 class indices; a label not seen by `fit` raises a KeyError naming it."""
        lookup = {label: i for i, label in enumerate(self.classes_)}
        labels = [class_label(c) for c in clips]
        unknown = sorted({label for label in labels if label not in lookup})
        if unknown:
            raise KeyError(
                f"class label(s) {', '.join(unknown)} were not among the {len(self.classes_)} training classes"
            )
        return np.array([lookup[label] for label in labels], dtype=np.int64)

    def fit_transform(self, clips: list[Clip]) -> np.ndarray:
        return self.fit(clips).transform(clips)
