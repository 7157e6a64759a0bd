"""Score-level ensembles of trained systems (`--system ensemble --ensemble.members a:x,b:y`).

Reads, per machine type, each member's trained model folder beside its own
(`models/<dev|eval>_data/<member system>/<machine or all>/`, written by `01_train.sh --system
<member>`, which `01_train.sh --system ensemble` runs first): the model, through the `System`
interface and `networks.registry` only, and its `train_scores.csv`. `fit` standardises each
member's training scores per section by their own mean and standard deviation and fuses them
(`mean` and `max`, the ensemble's scorers; `ensemble.weights`); the fused training scores set the
decision thresholds as for every system. `score` has each member score the test clips,
standardises them with the same statistics and fuses them. `save` writes `ensemble.json`: the
parameters, the statistics and each member's training fingerprint (its `.completed` marker).

Refused by name (ModelFileError): a member with no finished model, a member trained with other
shared settings (features, sample rate, channel, seed) than the ensemble, members trained on
different clips or sections, clips the member was not trained on, and, when loading, a member
retrained since the ensemble was fitted (its statistics would no longer fit its scores).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from core.atomic import write_text
from core.config import Config, EnsembleConfig, FeatureConfig
from core.layout import COMPLETE_MARKER, TRAIN_SCORES_FILE, model_groups, sibling_model_dir
from datasets.manifest import Clip, DatasetError
from networks.ensemble.fusion import FUSIONS, fuse, member_config, member_systems, parse_members, weights_of
from networks.registry import get_system
from networks.section_standardiser import SectionStandardiser, missing_section
from networks.system import AudioInput, ModelFileError, Runtime, System
from networks.train_scores import read_train_score_table

log = logging.getLogger(__name__)

MODEL_FILE = "ensemble.json"
FORMAT_VERSION = 1
SHARED_SECTIONS = ("feature", "data", "run")  # what every member must share with the ensemble


class EnsembleSystem(System):
    section = "ensemble"
    scope = "machine"  # a member that trains one model for all machine types serves each of them
    scorers = tuple(FUSIONS)

    def __init__(self, settings: EnsembleConfig, feature: FeatureConfig, audio: AudioInput, seed: int) -> None:
        super().__init__(settings, feature, audio, seed)
        self.machines_: list[str] = []
        self.member_stamps_: dict[str, str] = {}  # member system -> its `.completed` marker at fit time
        self.standardisers_: dict[str, SectionStandardiser] = {}  # member name -> per-section statistics
        self.members_: dict[str, System] = {}  # member system -> its loaded model (not saved: it has its own)

    @classmethod
    def member_configs(cls, cfg: Config) -> list[Config]:
        return [member_config(cfg, system) for system in member_systems(parse_members(cfg.ensemble))]

    def settings_differences(self, cfg: Config) -> list[str]:
        """The ensemble's own differing keys, then each member's, as `02_test.sh` checks a system."""
        differences = super().settings_differences(cfg)
        for system, member in self.members_.items():
            differences += [f"member {system}: {d}" for d in member.settings_differences(member_config(cfg, system))]
        return differences

    def with_test_time_settings(self, cfg: Config) -> EnsembleSystem:
        for system, member in self.members_.items():
            member.with_test_time_settings(member_config(cfg, system))
        return self

    def fit(self, clips: list[Clip], runtime: Runtime, workdir: Path) -> EnsembleSystem:
        members = parse_members(self.settings)
        self.machines_ = sorted({c.machine for c in clips})
        tables = {}
        for system in member_systems(members):
            member_dir = self._member_dir(Path(workdir), system)
            marker = member_dir / COMPLETE_MARKER
            if not marker.is_file():
                raise ModelFileError(
                    f"member {system} has no finished model in {member_dir}: train it with "
                    f"./01_train.sh --system {system} (01_train.sh --system ensemble does)"
                )
            self.members_[system] = self._check_shared_settings(system, get_system(system).load(member_dir))
            self.member_stamps_[system] = marker.read_text()
            tables[system] = self._member_train_scores(system, member_dir, clips)
        self.train_clips_ = self._common_clips(clips, tables)
        where = [(c.machine, c.section) for c in self.train_clips_]
        machines, sections = [m for m, _ in where], [s for _, s in where]
        standardised = []
        for member in members:
            by_key = tables[member.system]
            raw = np.array([by_key[(c.machine, c.section, c.name)][member.scorer] for c in self.train_clips_])
            self.standardisers_[member.name] = SectionStandardiser().fit(raw, machines, sections)
            standardised.append(self.standardisers_[member.name].transform(raw, machines, sections))
        weights = weights_of(self.settings, len(members))
        self.train_scores_ = {fusion: fuse(np.stack(standardised), fusion, weights) for fusion in FUSIONS}
        log.info(
            "%s: %s fused over %d training clips",
            ", ".join(self.machines_),
            ", ".join(m.name for m in members),
            len(self.train_clips_),
        )
        return self

    def score(self, clips: list[Clip], scorer: str, runtime: Runtime) -> np.ndarray:
        members = parse_members(self.settings)
        machines, sections = [c.machine for c in clips], [c.section for c in clips]
        trained = set(self.standardisers_[members[0].name].stats_)
        for key in dict.fromkeys(zip(machines, sections)):
            if key not in trained:
                raise DatasetError(missing_section(*key, trained).args[0])
        standardised = []
        for member in members:
            log.info("scoring %d clips with member %s", len(clips), member.name)
            raw = self.members_[member.system].score(clips, member.scorer, runtime)
            standardised.append(self.standardisers_[member.name].transform(raw, machines, sections))
        return fuse(np.stack(standardised), scorer, weights_of(self.settings, len(members)))

    def save(self, model_dir: Path) -> None:
        state = {
            "format": FORMAT_VERSION,
            "params": self.get_params(),
            "machines": self.machines_,
            "member_stamps": self.member_stamps_,
            "standardisers": {name: s.state_dict() for name, s in self.standardisers_.items()},
        }
        write_text(Path(model_dir) / MODEL_FILE, json.dumps(state, indent=1) + "\n")

    @classmethod
    def load(cls, model_dir: Path) -> EnsembleSystem:
        path = Path(model_dir) / MODEL_FILE
        if not path.is_file():
            raise ModelFileError(f"model file {path} is missing")
        try:
            state = json.loads(path.read_text())
            if state.get("format") != FORMAT_VERSION:
                raise ModelFileError(f"model file {path} was written by another version of this system")
            system = cls.from_params(state["params"], EnsembleConfig)
            system.machines_ = list(state["machines"])
            system.member_stamps_ = dict(state["member_stamps"])
            system.standardisers_ = {
                name: SectionStandardiser.from_state_dict(stats) for name, stats in state["standardisers"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError, IndexError, UnicodeDecodeError) as e:
            raise ModelFileError(f"model file {path} is damaged or incomplete ({type(e).__name__})") from None
        for member_system, stamp in system.member_stamps_.items():
            member_dir = system._member_dir(Path(model_dir), member_system)
            marker = member_dir / COMPLETE_MARKER
            if not marker.is_file() or marker.read_text() != stamp:
                raise ModelFileError(
                    f"member {member_system} in {member_dir} was retrained (or removed) after the ensemble in "
                    f"{model_dir} was fitted"
                )
            system.members_[member_system] = get_system(member_system).load(member_dir)
        return system

    def _member_dir(self, model_dir: Path, system: str) -> Path:
        """The member's model folder serving this ensemble's machine types."""
        (group,) = model_groups(get_system(system).scope, self.machines_)
        return sibling_model_dir(model_dir, system, group)

    def _check_shared_settings(self, system: str, member: System) -> System:
        ours, theirs = self.get_params(), member.get_params()
        differences = [
            f"{section}.{key} (member {theirs[section][key]!r}, ensemble {value!r})"
            for section in SHARED_SECTIONS
            for key, value in ours[section].items()
            if theirs[section][key] != value
        ]
        if differences:
            raise ModelFileError(
                f"member {system} was trained with other settings than the ensemble: {'; '.join(differences)}"
            )
        return member

    def _member_train_scores(
        self, system: str, member_dir: Path, clips: list[Clip]
    ) -> dict[tuple[str, str, str], dict[str, float]]:
        """(machine, section, name) -> scorer -> the member's training score, for this ensemble's machine types."""
        keys, scores = read_train_score_table(member_dir / TRAIN_SCORES_FILE)
        ours = {(c.machine, c.section, c.name) for c in clips}
        table = {}
        for i, (machine, section, _, name) in enumerate(keys):
            if machine not in self.machines_:
                continue
            if (machine, section, name) not in ours:
                raise ModelFileError(
                    f"member {system} in {member_dir} was trained on other data: {machine} section {section} "
                    f"clip {name} is not among the training clips given to the ensemble"
                )
            table[(machine, section, name)] = {scorer: float(values[i]) for scorer, values in scores.items()}
        return table

    def _common_clips(self, clips: list[Clip], tables: dict[str, dict]) -> list[Clip]:
        """The training clips every member scored, in the order given; members that were trained on
        different sections or clips are refused, naming them."""
        (first, reference), *others = tables.items()
        for system, table in others:
            if table.keys() == reference.keys():
                continue
            sections = {name: sorted({(m, s) for m, s, _ in t}) for name, t in ((first, reference), (system, table))}
            if sections[first] != sections[system]:
                listed = "; ".join(f"{name}: {', '.join(f'{m} {s}' for m, s in v)}" for name, v in sections.items())
                raise ModelFileError(f"members {first} and {system} were trained on different sections ({listed})")
            only = sorted(reference.keys() ^ table.keys())[0]
            owner = first if only in reference else system
            raise ModelFileError(
                f"members {first} and {system} were trained on different clips ({len(reference)} and {len(table)}; "
                f"{only[0]} section {only[1]} clip {only[2]} only in {owner})"
            )
        return [c for c in clips if (c.machine, c.section, c.name) in reference]
