"""Our BEATs implementation: loads official Microsoft BEATs checkpoints and yields token features.

`load_beats(path)` gives a model whose `extract_features(wave, padding_mask)` returns
`[batch, tokens, channels]` features and the token padding mask for pooling by a classifier.
"""

from networks.beats.architecture import PRESETS, BEATsArchitecture, get_preset
from networks.beats.checkpoint import (
    CHECKPOINT_CONFIG_KEY,
    OFFICIAL_CHECKPOINTS,
    BEATsCheckpointError,
    build_beats,
    check_state_dict,
    load_beats,
    save_beats,
)
from networks.beats.encoder import BEATs

__all__ = [
    "BEATs",
    "BEATsCheckpointError",
    "BEATsArchitecture",
    "CHECKPOINT_CONFIG_KEY",
    "OFFICIAL_CHECKPOINTS",
    "PRESETS",
    "build_beats",
    "check_state_dict",
    "get_preset",
    "load_beats",
    "save_beats",
]
