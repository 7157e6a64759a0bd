"""Score new recordings with a trained model: `./04_score.sh --model PATH [--machine M] [--section SS] CLIPS...`.

Reads a model (a model folder of `01_train.sh`, the system's folder of them, or a file written by
`python -m tools.export`) and WAV files of any name (files, or every `*.wav` in the folders given);
writes `--out` (default `scores.csv`: file, machine, section, modified, score, decision, threshold,
percentile; `reporting.score_log`), its `.state.json`, a log (`<out stem>.log`) and with `--plot` a
PNG of the scores over time (`<out stem>.png`), and prints a table. The decision threshold is the
one `02_test.sh` uses: the gamma fit to the section's training scores (`decision.threshold_quantile`).

The model brings its own settings: no training option needs repeating; test-time keys (scorer,
decision, threads, `data.on_bad_file`, workers) may be given. `--watch` polls one folder, scores
each new file once it has stopped growing, appends its row, and continues after a restart (also
after `kill -9`) without scoring a file twice; SIGINT (Ctrl-C) and SIGTERM stop it cleanly.
Exit status 0 whatever the decisions; 1 on an error (one line in the log); 2 on a bad command line.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path

import numpy as np

from core.cli import command_parser, parse_command_line
from core.config import Config, ConfigError, load_config
from core.runtime import pick_device, seed_everything, setup_logging
from datasets.audio import AudioError, warn_mixed_channels
from datasets.loose_clips import StableFiles, expand_paths, loose_clips
from datasets.manifest import Clip, DatasetError
from networks.model_file import open_model
from networks.registry import get_system, resolve_scorer
from networks.system import ModelFileError, Runtime
from networks.trained import TrainedModel, load_trained, params_as_overrides
from reporting.decision import section_thresholds, training_percentiles
from reporting.score_log import ScoreLog, ScoreLogError, ScoreRow, write_scores
from reporting.timeline import plot_timeline

log = logging.getLogger("score")
TABLE_ROWS = 20  # rows a one-off run prints; the CSV holds them all
WATCH_BATCH = 64  # files scored at a time by the watcher: a stop request waits for one batch at most
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def get_parser():
    parser = command_parser(
        "04_score.sh",
        "Score recordings of any name with a trained model; write a CSV of scores and decisions.",
        ["score", "device"],
        epilog="examples:\n"
        "  ./04_score.sh --model models/dev_data/classical/fan recordings/\n"
        "  ./04_score.sh --model models/dev_data/auxiliary --machine fan --section 00 --watch incoming/ --plot\n"
        "  ./04_score.sh --model fan.model.zip --out fan.csv a.wav b.wav",
    )
    parser.add_argument("clips", nargs="+", type=Path, metavar="CLIP", help="WAV files or folders of them")
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="model folder (models/dev_data/<system>[/<machine>]) or a file of python -m tools.export",
    )
    parser.add_argument("--machine", help="machine type of the clips (default: the model's only one, or the folder's)")
    parser.add_argument("--section", help="section of the clips, e.g. 00 (default: from DCASE names, or the only one)")
    parser.add_argument("--out", type=Path, default=Path("scores.csv"), help="CSV to write (default: scores.csv)")
    parser.add_argument("--watch", action="store_true", help="poll the one folder given and score new files")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls of --watch (default 5)")
    parser.add_argument("--plot", action="store_true", help="also draw the scores over time (<out stem>.png)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    try:
        args, command_cfg = parse_command_line(parser, argv)
    except ConfigError as e:
        parser.error(str(e))
    if args.interval <= 0:
        parser.error(f"--interval must be > 0 seconds, got {args.interval}")
    if args.watch and len(args.clips) != 1:
        parser.error("--watch takes one folder")
    setup_logging(args.out.with_suffix(".log"))
    try:
        with _signals_held() if args.watch else nullcontext([]) as received, tempfile.TemporaryDirectory() as cache:
            trained, cfg, settings, channels = _load(args, command_cfg, cache)
            runtime = Runtime(pick_device(cfg.run.device), cfg.data, channels)
            seed_everything(cfg.run.seed, runtime.device)
            scoring = _Scoring(trained, cfg, runtime, args)
            if args.watch:
                return _watch(scoring, args, settings, received)
            rows = scoring.rows(expand_paths(args.clips))
            write_scores(args.out, rows, settings)
            _finish(rows, scoring, args)
            return 0
    except (ModelFileError, DatasetError, AudioError, ScoreLogError) as e:
        log.error("%s", e)
        return 1


def _load(args, command_cfg: Config, cache: str) -> tuple[TrainedModel, Config, dict, int | None]:
    """The model, the configuration to score with (the model's parameters, then the command
    line's options), the settings that the scores depend on (for the CSV's state file) and the
    channel count of the model's training data (None: any)."""
    overrides = dict(args.overrides)
    with open_model(args.model, args.machine) as source:
        system_cls = get_system(source.system)
        try:
            scorer = resolve_scorer(system_cls, command_cfg.score.method)
        except KeyError as e:
            raise ModelFileError(f"{args.model}: {str(e).strip(chr(34))}") from None
        trained = load_trained(source.folder, system_cls, scorer)
        # Clips are scored once each: cached features would only pile up, unless a cache is asked for.
        model_settings = {"data.cache_dir": cache, **params_as_overrides(trained.system), "run.system": source.system}
        try:
            cfg = load_config(args.config, {**model_settings, **overrides})
        except ConfigError as e:
            raise ModelFileError(f"{source.origin} holds settings this version cannot read ({e}): retrain it") from None
        trained.use_settings(cfg)
        log.info("configuration: %s", json.dumps(cfg.to_dict()))
        log.info(
            "model %s: system %s, scorer %s, sections %s",
            source.origin,
            source.system,
            scorer,
            ", ".join(f"{m} {s}" for m, s in trained.sections),
        )
        settings = {
            "model": str(source.origin.resolve()),
            "system": source.system,
            "scorer": scorer,
            "threshold_quantile": cfg.decision.threshold_quantile,
        }
        return trained, cfg, settings, source.expected_channels


class _Scoring:
    """Files -> score rows with one loaded model: thresholds fitted once, broken clips handled by
    `data.on_bad_file`."""

    def __init__(self, trained: TrainedModel, cfg: Config, runtime: Runtime, args) -> None:
        self.trained, self.runtime, self.args = trained, runtime, args
        self.on_bad_file = cfg.data.on_bad_file
        self.thresholds = section_thresholds(trained.train_scores, cfg.decision.threshold_quantile)

    def rows(self, files: list[Path]) -> list[ScoreRow]:
        """Score `files` (in this order); broken ones stop the run, or are skipped with a warning
        under `data.on_bad_file: skip`.

        Raises:
            AudioError, DatasetError: a broken or unassignable clip under `data.on_bad_file: error`.
        """
        if self.runtime.expected_channels is None:
            warn_mixed_channels("the clips to score", files)
        clips = self._clips(files)
        try:
            return self._rows(clips, self._scores(clips))
        except AudioError:
            if self.on_bad_file != "skip":
                raise
        rows = []
        for clip in clips:  # one at a time, to tell the broken clips from the good ones
            try:
                rows += self._rows([clip], self._scores([clip]))
            except AudioError as e:
                log.warning("skipping %s", e)
        return rows

    def _clips(self, files: list[Path]) -> list[Clip]:
        trained, args = self.trained.sections, self.args
        if self.on_bad_file != "skip":
            return loose_clips(files, trained, args.machine, args.section)
        clips = []
        for path in files:
            try:
                clips += loose_clips([path], trained, args.machine, args.section)
            except DatasetError as e:
                log.warning("skipping %s", e)
        return clips

    def _scores(self, clips: list[Clip]) -> np.ndarray:
        """[clips] scores; AudioError for a broken clip or a non-finite score, naming the file."""
        if not clips:
            return np.zeros(0)
        scores = self.trained.system.score(clips, self.trained.scorer, self.runtime)
        broken = [c.path for c, s in zip(clips, scores) if not np.isfinite(s)]
        if broken:
            raise AudioError(f"{broken[0]}: the system produced a non-finite score for it")
        return scores

    def _rows(self, clips: list[Clip], scores: np.ndarray) -> list[ScoreRow]:
        return [self._row(clip, float(score)) for clip, score in zip(clips, scores)]

    def _row(self, clip: Clip, score: float) -> ScoreRow:
        key = (clip.machine, clip.section)
        threshold = self.thresholds[key]
        return ScoreRow(
            file=str(clip.path.resolve()),
            machine=clip.machine,
            section=clip.section,
            modified=datetime.fromtimestamp(clip.path.stat().st_mtime).isoformat(timespec="seconds"),
            score=score,
            decision=int(score > threshold),
            threshold=threshold,
            percentile=float(training_percentiles(self.trained.train_scores[key], [score])[0]),
        )


def _watch(scoring: _Scoring, args, settings: dict, received: list[int]) -> int:
    """Poll the folder until SIGINT or SIGTERM; append each newly complete file's row."""
    folder = args.clips[0]
    if not folder.is_dir():
        raise DatasetError(f"watched folder {folder} does not exist")
    score_log = ScoreLog(args.out, settings)
    rows = score_log.resume()
    here = folder.resolve()
    poller = StableFiles(folder, {Path(r.file).name for r in rows if Path(r.file).parent == here})
    log.info(
        "watching %s every %g s (Ctrl-C or SIGTERM stops); %d clips scored before -> %s",
        folder,
        args.interval,
        len(rows),
        args.out,
    )
    scored, stop = 0, None
    while stop is None:
        ready = poller.poll()
        for start in range(0, len(ready), WATCH_BATCH):
            new = scoring.rows(ready[start : start + WATCH_BATCH])
            score_log.append(new)
            rows += new
            scored += len(new)
            _print_rows(new)
            if args.plot:
                plot_timeline(rows, args.out.with_suffix(".png"), _title(scoring))
            if _stop_signal(received, 0) is not None:
                break
        stop = _stop_signal(received, args.interval)
    log.info(
        "%s received: stopped; %d clip(s) scored in this run, %d in all -> %s",
        signal.Signals(stop).name,
        scored,
        len(rows),
        args.out,
    )
    return 0


@contextmanager
def _signals_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM for the watcher, which takes them between two batches, so it never
    stops in the middle of a write: yields the list of the signals received.

    Blocked before the feature workers start, they stay blocked there too: a Ctrl-C, which the
    terminal sends to every process of the group, or a service manager's SIGTERM to all of them,
    leaves the workers to the watcher. Threads that native libraries started at import time (BLAS)
    do not block them, so a handler records a signal that one of those threads takes.
    """
    received: list[int] = []
    handlers = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in STOP_SIGNALS}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield received
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        for s, handler in handlers.items():
            signal.signal(s, handler)


def _stop_signal(received: list[int], wait: float) -> int | None:
    """The stop signal received or pending, waiting up to `wait` seconds for one; None if none came."""
    if not received:
        info = signal.sigtimedwait(STOP_SIGNALS, wait)
        if info is not None:
            received.append(info.si_signo)
    return received[0] if received else None


def _finish(rows: list[ScoreRow], scoring: _Scoring, args) -> None:
    _print_rows(rows[:TABLE_ROWS], header=True)
    if len(rows) > TABLE_ROWS:
        print(f"... {len(rows) - TABLE_ROWS} more in {args.out}")
    flagged = sum(r.decision for r in rows)
    print(f"{len(rows)} clip(s) scored, {flagged} judged anomalous -> {args.out}")
    if args.plot:
        log.info("plot -> %s", plot_timeline(rows, args.out.with_suffix(".png"), _title(scoring)))


def _print_rows(rows: list[ScoreRow], header: bool = False) -> None:
    if header:
        print(f"{'file':<40} {'score':>12} {'threshold':>12} {'percentile':>10}  decision")
    for r in rows:
        name = Path(r.file).name
        name = name if len(name) <= 40 else "..." + name[-37:]
        verdict = "ANOMALY" if r.decision else "normal"
        print(f"{name:<40} {r.score:>12.4f} {r.threshold:>12.4f} {r.percentile:>10.1f}  {verdict}", flush=True)


def _title(scoring: _Scoring) -> str:
    return f"{type(scoring.trained.system).__name__} ({scoring.trained.scorer})"


if __name__ == "__main__":
    sys.exit(main())
