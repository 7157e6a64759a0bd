"""The ensemble's refusals when it is fitted on members that do not fit together: real members
trained by `01_train.sh` on variants of the demo corpus (one machine type), then
`EnsembleSystem.fit` called as `01_train.sh --system ensemble` calls it. (That command trains the
members first with its own data and settings, so through it these cannot arise; through the
library, or with model folders copied from elsewhere, they can.)"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from core.config import load_config
from core.layout import model_root
from datasets.manifest import open_dataset
from networks.ensemble.system import EnsembleSystem
from networks.system import ModelFileError, Runtime
from tests.conftest import ok, run_script

MACHINE = "SynthFan"
MEMBERS = "classical:gaussian,autoencoder:mse"
TINY_AUTOENCODER = ["--autoencoder.epochs", "1", "--autoencoder.encoder_dims", "[16,4]", "--data.workers", "1"]


def _variant(corpus: Path, out: Path, drop_first: bool = False, section_01: bool = False) -> Path:
    """A copy (hard links) of the corpus' machine type: without its first training clip, or with
    every training clip also present as a clip of section 01."""
    source = corpus / "dev_data" / "raw" / MACHINE
    target = out / "dev_data" / "raw" / MACHINE
    shutil.copytree(source, target, copy_function=os.link)
    train = sorted((target / "train").iterdir())
    if drop_first:
        train[0].unlink()
    if section_01:
        for clip in train:
            os.link(clip, clip.with_name(clip.name.replace("section_00", "section_01", 1)))
    return out


def _train(root: Path, corpus: Path, system: str, *extra: str) -> None:
    dirs = ["--run.model_dir", str(root / "models"), "--data.cache_dir", str(root / "cache")]
    ok(run_script(["./01_train.sh", "-d", "--data-root", str(corpus), "--system", system, *dirs, *extra]))


def _fit(root: Path, corpus: Path, members: str = MEMBERS, *overrides: tuple[str, object]) -> EnsembleSystem:
    """`EnsembleSystem.fit` on the corpus' training clips, as 01_train.sh calls it."""
    cfg = load_config(
        overrides={
            "run.system": "ensemble",
            "run.model_dir": str(root / "models"),
            "data.root": str(corpus),
            "data.cache_dir": str(root / "cache"),
            "ensemble.members": members,
            **dict(overrides),
        }
    )
    dataset = open_dataset(cfg.data.root, cfg.data.year, "dev", [MACHINE])
    runtime = Runtime(torch.device("cpu"), cfg.data, dataset.expected_channels)
    return EnsembleSystem.from_config(cfg).fit(dataset.clips(MACHINE, "train"), runtime, model_root(cfg) / MACHINE)


@pytest.fixture(scope="module")
def corpora(demo_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("ensemble_corpora")
    return {
        "full": demo_corpus,
        "one_less": _variant(demo_corpus, out / "one_less", drop_first=True),
        "two_sections": _variant(demo_corpus, out / "two_sections", section_01=True),
    }


@pytest.fixture(scope="module")
def autoencoder_on_one_less(corpora, tmp_path_factory):
    """A tiny autoencoder trained on the corpus without its first training clip."""
    root = tmp_path_factory.mktemp("autoencoder_member")
    _train(root, corpora["one_less"], "autoencoder", *TINY_AUTOENCODER)
    return root / "models" / "dev_data" / "autoencoder"


def _with_autoencoder(root: Path, autoencoder: Path) -> None:
    shutil.copytree(autoencoder, root / "models" / "dev_data" / "autoencoder")


def test_members_trained_on_different_clips_are_refused(corpora, autoencoder_on_one_less, tmp_path):
    _train(tmp_path, corpora["full"], "classical")
    _with_autoencoder(tmp_path, autoencoder_on_one_less)
    first = sorted((corpora["full"] / "dev_data" / "raw" / MACHINE / "train").iterdir())[0].name
    with pytest.raises(ModelFileError) as error:
        _fit(tmp_path, corpora["full"])
    assert str(error.value) == (
        f"members classical and autoencoder were trained on different clips (64 and 63; {MACHINE} section 00 "
        f"clip {first} only in classical)"
    )


def test_members_trained_on_different_sections_are_refused(corpora, autoencoder_on_one_less, tmp_path):
    _train(tmp_path, corpora["two_sections"], "classical")
    _with_autoencoder(tmp_path, autoencoder_on_one_less)
    with pytest.raises(ModelFileError) as error:
        _fit(tmp_path, corpora["two_sections"])
    assert str(error.value) == (
        f"members classical and autoencoder were trained on different sections (classical: {MACHINE} 00, "
        f"{MACHINE} 01; autoencoder: {MACHINE} 00)"
    )


def test_a_member_trained_on_other_data_is_refused(corpora, tmp_path):
    _train(tmp_path, corpora["two_sections"], "classical")
    with pytest.raises(ModelFileError, match=r"member classical in .* was trained on other data: SynthFan section 01 "):
        _fit(tmp_path, corpora["full"], "classical:gaussian")


def test_a_member_with_another_feature_configuration_is_refused(corpora, tmp_path):
    _train(tmp_path, corpora["full"], "classical", "--feature.n_mels", "64")
    with pytest.raises(ModelFileError) as error:
        _fit(tmp_path, corpora["full"], "classical:gaussian")
    assert str(error.value) == (
        "member classical was trained with other settings than the ensemble: feature.n_mels (member 64, ensemble 128)"
    )


def test_a_missing_member_is_refused_naming_the_command(corpora, tmp_path):
    _train(tmp_path, corpora["full"], "classical")
    with pytest.raises(ModelFileError, match=r"member autoencoder has no finished model in .*autoencoder/SynthFan: "):
        _fit(tmp_path, corpora["full"])


def test_a_fitted_ensemble_round_trips_through_save_and_load(corpora, autoencoder_on_one_less, tmp_path):
    """Members on the same clips (the autoencoder's corpus for both): save/load round trip."""
    _train(tmp_path, corpora["one_less"], "classical")
    _with_autoencoder(tmp_path, autoencoder_on_one_less)
    fitted = _fit(
        tmp_path, corpora["one_less"], MEMBERS, ("autoencoder.epochs", 1), ("autoencoder.encoder_dims", [16, 4])
    )
    model_dir = tmp_path / "models" / "dev_data" / "ensemble" / MACHINE
    fitted.save(model_dir)
    loaded = EnsembleSystem.load(model_dir)
    assert loaded.get_params() == fitted.get_params() and loaded.machines_ == [MACHINE]
    assert {n: s.stats_ for n, s in loaded.standardisers_.items()} == {
        n: s.stats_ for n, s in fitted.standardisers_.items()
    }
    assert len(fitted.train_clips_) == 63 and set(fitted.train_scores_) == {"mean", "max"}
