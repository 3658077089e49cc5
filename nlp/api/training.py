"""Train, retrain and tune from a program, with the objects the command line builds.

Why no settings of its own: a model trained here must be the model `s2s train` trains from
the same settings, so `training_config` builds the `ExperimentConfig` as `s2s train` does
(--config, then the --task preset, then --set), `train` and `retrain` hand it, with a
`CorpusSpec`, to the functions the commands call (`nlp.training.run`), and `tune` runs
`s2s tune-decoding`'s own code with the options its parser builds. TensorFlow loads when
they run, not on import.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nlp.api.errors import OptionError
from nlp.generation.decode_settings import DecodeSettings
from nlp.generation.loading import recommended_decoding
from nlp.training.corpus_io import CorpusSpec
from nlp.util.config import ExperimentConfig, check_file_or_task, task_preset

PathLike = str | os.PathLike[str]
Corpus = CorpusSpec | PathLike | Sequence[PathLike]
RUN_CONFIG = Path("run") / "config.json"  # what a run started with (`--resume` reads it)


@dataclass(frozen=True)
class TrainResult:
    """Where the best model is and how it was chosen."""

    model: Path  # the bundle: OUT/model
    best_valid_loss: float
    best_epoch: float  # with a fraction when the budget's last part-epoch was kept
    best_score: float | None = None  # the selection score (ROUGE-L) when one picked it


def training_config(
    task: str | None = None,
    overrides: Sequence[str] = (),
    *,
    config_file: PathLike | None = None,
    run: PathLike | None = None,
) -> ExperimentConfig:
    """The config `s2s train [--config FILE | --task TASK] [--set K=V ...]` trains with: the
    file's, or the defaults with the task's preset (`TASK_PRESETS`; a file and a task together
    are refused, as by the command), then each `section.key=value` override (`ConfigError`
    for a misspelt key or a bad value). `run`: start from the config a run directory started
    with, as `s2s train --resume` does."""
    if isinstance(overrides, str):
        raise TypeError("overrides: a list of 'section.key=value' strings, not one string")
    if run is not None and config_file is not None:
        raise OptionError("give config_file or run, not both")
    if config_file is not None:
        check_file_or_task(config_file, task)
        base = ExperimentConfig.load(Path(config_file))
    elif run is not None:
        base = ExperimentConfig.load(Path(run) / RUN_CONFIG)
    else:
        base = ExperimentConfig()
    settings = [*task_preset(task), *overrides] if task else list(overrides)
    return base.with_overrides(settings)


def corpus_spec(corpus: Corpus, corpus_format: str = "auto", strict: bool = False) -> CorpusSpec:
    """Files or directories as the commands read them (`--corpus PATH ... --format FMT`)."""
    if isinstance(corpus, CorpusSpec):
        return corpus
    if isinstance(corpus, str | os.PathLike):
        return CorpusSpec((Path(corpus),), corpus_format, strict)
    return CorpusSpec(tuple(Path(path) for path in corpus), corpus_format, strict)


def train(
    config: ExperimentConfig,
    corpus: Corpus,
    out: PathLike,
    *,
    valid: Corpus | None = None,
    resume: bool = False,
    verbose: int = 0,
) -> TrainResult:
    """`s2s train`: train `config` on `corpus` (a `CorpusSpec`, or paths in any format it
    detects) into the run directory `out`, validating on `valid` (default: a seeded share
    of `corpus`); `resume` continues an interrupted run (pass `training_config(run=out)`);
    `verbose` 1 shows the progress lines. The model is in `TrainResult.model`."""
    from nlp.training.run import RunOptions
    from nlp.training.run import train as run_train

    options = RunOptions(Path(out), resume=resume, verbose=verbose)
    state = run_train(
        config, corpus_spec(corpus), options, corpus_spec(valid) if valid is not None else None
    )
    score = state.best_score if math.isfinite(state.best_score) else None
    return TrainResult(Path(out) / "model", state.best_valid_loss, state.best_epoch, score)


def retrain(
    source: PathLike,
    corpus: Corpus,
    out: PathLike,
    overrides: Sequence[str] = (),
    *,
    old_corpus: Corpus | None = None,
    old_share: float = 0.0,
    old_holdout: float = 0.5,
    extend_vocab: bool = False,
    extend_min_freq: int = 2,
    extend_max_new: int = 2000,
    verbose: int = 0,
) -> dict[str, float]:
    """`s2s retrain --from SOURCE --corpus ... --out OUT`: continue training the model
    `source` on `corpus`, its keywords the command's flags. Returns the validation losses
    on the old and the new data before and after, as the command prints them."""
    from nlp.training.run import RetrainOptions, RunOptions
    from nlp.training.run import retrain as run_retrain

    if isinstance(overrides, str):
        raise TypeError("overrides: a list of 'section.key=value' strings, not one string")
    options = RetrainOptions(
        corpus_spec(old_corpus) if old_corpus is not None else None,
        old_share, old_holdout, extend_vocab, extend_min_freq, extend_max_new,
    )
    return run_retrain(
        Path(source), corpus_spec(corpus), RunOptions(Path(out), verbose=verbose), options,
        list(overrides),
    )


def tune(
    model: PathLike,
    corpus: Sequence[PathLike] = (),
    *,
    max_pairs: int = 200,
    minutes: float = 10.0,
    batch_size: int = 64,
    corpus_format: str = "auto",
    dry_run: bool = False,
    verbose: bool = False,
) -> DecodeSettings | None:
    """`s2s tune-decoding --model MODEL`: search decoding settings on validation pairs
    (`corpus`, default the training run's `valid.jsonl`) within `minutes`, store the best
    in the bundle (unless `dry_run`) and return the bundle's settings afterwards. The
    command's own code runs, with the options its parser builds from these arguments;
    `verbose` lets through the table it prints."""
    from nlp.tuning import command

    if max_pairs < 1 or batch_size < 1 or not minutes > 0 or isinstance(corpus, str):
        raise OptionError("max_pairs and batch_size must be >= 1, minutes > 0, corpus a list")
    argv = ["tune-decoding", "--model", os.fspath(model), "--max-pairs", str(int(max_pairs)),
            "--minutes", repr(float(minutes)), "--batch-size", str(int(batch_size)),
            "--format", corpus_format]
    if corpus:
        argv += ["--corpus", *(os.fspath(path) for path in corpus)]
    if dry_run:
        argv.append("--dry-run")
    parser = argparse.ArgumentParser(prog="s2s", exit_on_error=False)
    command.register(parser.add_subparsers())
    try:
        args = parser.parse_args(argv)
    except (argparse.ArgumentError, SystemExit) as exc:
        raise OptionError(f"tune: {exc}") from None
    quiet = contextlib.ExitStack()
    if not verbose:
        quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
        quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))
    with quiet:
        args.func(args)
    return recommended_decoding(Path(model))
