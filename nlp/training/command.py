"""`s2s train` and `s2s retrain` argument parsing; the work is in `nlp.training.run`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from nlp.corpus.command import add_reader_arguments, reader_options
from nlp.util.config import (
    DUAL_ENCODER_KINDS,
    SAFE_ON_RESUME,
    TASK_PRESETS,
    ExperimentConfig,
    check_file_or_task,
    task_preset,
)


def add_corpus_arguments(
    parser: argparse.ArgumentParser, flag: str = "--corpus", *, required: bool = True
) -> None:
    parser.add_argument(
        flag,
        dest="corpus",
        type=Path,
        nargs="+",
        required=required,
        metavar="PATH",
        help="corpus files or directories (canonical JSONL, or any --format)",
    )
    parser.add_argument(
        "--format",
        default="auto",
        help="corpus format (see `s2s corpus convert --help`); default: detect",
    )
    parser.add_argument("--strict", action="store_true", help="stop at the first malformed record")
    add_reader_arguments(parser)


def corpus_spec(paths: list[Path], args: argparse.Namespace, beside: bool = False) -> Any:
    """Paths, format and the reader options given. `beside`: files read beside the corpus
    (`--valid`, `--old-corpus`), which take the options their own format does."""
    from nlp.training.corpus_io import CorpusSpec

    options = tuple(reader_options(args).items())
    return CorpusSpec(tuple(paths), args.format, args.strict, options, beside)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--config, --task and --set: the settings of every command that builds a model's
    config (`train`, `pretrain`, `embeddings`), read by `experiment_config`."""
    parser.add_argument("--config", type=Path, help="JSON config (see nlp/util/config.py)")
    parser.add_argument(
        "--task",
        choices=sorted(TASK_PRESETS),
        help="start from the task's tested settings (nlp/util/config.py TASK_PRESETS; "
        "--set still overrides them): headline = chars, placeholders, copy, "
        "best epoch by ROUGE-L; lm = the target-side language model (empty source) that "
        "MMI anti-LM re-ranking subtracts",
    )
    add_set_argument(parser)


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one setting, e.g. --set model.units=128 (repeatable)",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """What every command that runs the trainer takes besides its data and config."""
    parser.add_argument("--out", type=Path, required=True, help="run directory to create")
    parser.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    parser.add_argument("--seed", type=int, help="shortcut for --set train.seed=N")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _overrides(args: argparse.Namespace) -> list[str]:
    """The --task preset, then --set values, then the shortcuts the command has (--epochs,
    --seed, --minutes, --reverse)."""
    sets = [*task_preset(args.task), *args.set] if getattr(args, "task", None) else list(args.set)
    for flag, key in (("epochs", "train.epochs"), ("seed", "train.seed"),
                      ("minutes", "train.max_minutes")):
        if getattr(args, flag, None) is not None:
            sets.append(f"{key}={getattr(args, flag)}")
    if getattr(args, "reverse", False):
        sets.append("data.reverse=true")
    return sets


def experiment_config(args: argparse.Namespace) -> ExperimentConfig:
    """--config (else, with --resume, the run's saved config; else the defaults) with
    `_overrides` on top: one reading of the config flags for every command."""
    if getattr(args, "config", None):
        check_file_or_task(args.config, getattr(args, "task", None))
        base = ExperimentConfig.load(args.config)
    elif getattr(args, "resume", False):
        from nlp.training.run import saved_config

        base = saved_config(args.out)
    else:
        base = ExperimentConfig()
    return base.with_overrides(_overrides(args))


def register(subparsers: Any) -> None:
    train = subparsers.add_parser(
        "train",
        help="train a new model",
        description="Train a model on a corpus. The best model is kept in OUT/model (a "
        "bundle), the resumable state in OUT/checkpoint, TensorBoard logs in OUT/logs.",
    )
    add_corpus_arguments(train)
    train.add_argument(
        "--valid",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="validation corpus (default: a seeded share of --corpus)",
    )
    add_config_arguments(train)
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (same config, vocabulary, optimizer state and "
        f"batch position); --epochs and --set {'|'.join(SAFE_ON_RESUME)} may change, any "
        "other changed setting is an error",
    )
    train.add_argument(
        "--reverse",
        action="store_true",
        help="train p(source | target) (--set data.reverse=true): the backward model of "
        "MMI-bidi re-ranking",
    )
    train.add_argument(
        "--multi-worker",
        action="store_true",
        help="train with the other processes listed in TF_CONFIG "
        "(tf.distribute.MultiWorkerMirroredStrategy; train.batch_size is the global batch; "
        "only the chief writes --out)",
    )
    add_run_arguments(train)
    train.set_defaults(func=run_train)

    retrain = subparsers.add_parser(
        "retrain",
        help="continue training a model on new data",
        description="Continue training a trained model on a new corpus, keeping its "
        "tokenizer; prints validation loss on the old and the new data before and after.",
    )
    retrain.add_argument(
        "--from",
        dest="source",
        type=Path,
        required=True,
        help="the trained model (bundle or run directory)",
    )
    add_corpus_arguments(retrain)
    retrain.add_argument(
        "--old-corpus",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="the old data (default: the old run's validation file)",
    )
    retrain.add_argument(
        "--old-share",
        type=float,
        default=0.0,
        help="mix in old pairs: this share of the new training pairs",
    )
    retrain.add_argument(
        "--old-holdout",
        type=float,
        default=0.5,
        help="with --old-share: share of the old pairs never mixed in, on which forgetting "
        "is measured (default: %(default)s; without --old-share all are held out)",
    )
    retrain.add_argument(
        "--extend-vocab",
        action="store_true",
        help="add the new corpus's frequent words, growing the embedding and "
        "projection matrices while keeping every learned row",
    )
    retrain.add_argument(
        "--extend-min-freq",
        type=int,
        default=2,
        help="with --extend-vocab: minimum count of a new word",
    )
    retrain.add_argument(
        "--extend-max-new",
        type=int,
        default=2000,
        help="with --extend-vocab: at most this many new words",
    )
    add_set_argument(retrain)
    add_run_arguments(retrain)
    retrain.set_defaults(func=run_retrain)


def register_index(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "index",
        help="(re)build a chat model's retrieval index and dual-encoder ranker",
        description="Index a corpus's pairs for reply retrieval (BM25 in the model's own "
        "tokens) and train the dual encoder that ranks replies, both stored in the model "
        "bundle (what `s2s train --task chat` does after training). The index replaces the "
        "bundle's: give every corpus it should hold. Pairs read from conversation logs are "
        "left out unless --index-logs: a retrieved reply is shown verbatim to other people.",
    )
    parser.add_argument("--model", type=Path, required=True, help="the chat model (bundle or run)")
    add_corpus_arguments(parser)
    parser.add_argument(
        "--index-logs",
        action="store_true",
        help="also index pairs read from conversation logs (what people wrote to the bot; "
        "others will see those replies verbatim)",
    )
    parser.add_argument(
        "--dual-encoder-minutes",
        type=float,
        help="train the dual encoder for this long (0: keep the bundle's; default: the "
        "model's retrieval.dual_encoder_minutes)",
    )
    parser.add_argument(
        "--dual-encoder-kind",
        choices=DUAL_ENCODER_KINDS,
        help="what the dual encoder reads: bag (of words) or recurrent (the words in order; "
        "default: the model's retrieval.dual_encoder_kind)",
    )
    parser.add_argument(
        "--post-vectors",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also put the indexed posts' sentence-encoder vectors in a nearest-neighbour "
        "index, so retrieval finds posts that say the same in other words (default: the "
        "model's retrieval.post_vectors)",
    )
    parser.add_argument("--no-index", action="store_true", help="only train the dual encoder")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=run_index)


def run_index(args: argparse.Namespace) -> int:
    from nlp.training.reply_index import index_bundle

    count = index_bundle(
        args.model,
        corpus_spec(args.corpus, args),
        index=not args.no_index,
        index_logs=args.index_logs,
        minutes=args.dual_encoder_minutes,
        kind=args.dual_encoder_kind,
        verbose=0 if args.quiet else 1,
        post_vectors=args.post_vectors,
    )
    print(f"indexed {count} pairs into {args.model}" if count else f"updated {args.model}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from nlp.training.run import RunOptions, train

    valid = corpus_spec(args.valid, args, beside=True) if args.valid else None
    options = RunOptions(
        args.out, resume=args.resume, verbose=0 if args.quiet else 1,
        multi_worker=args.multi_worker,
    )
    state = train(experiment_config(args), corpus_spec(args.corpus, args), options, valid)
    picked = ""
    if math.isfinite(state.best_score):  # train.select_by picked the epoch, not the loss
        picked = f" (selected by validation score {state.best_score:.4f})"
    kept = [r for r in state.history if r["epoch"] == state.best_epoch and "valid_ranking" in r]
    if kept:  # the loss adds the ranking loss to the cross-entropy (`Trainer._validate`)
        picked += (f" (cross-entropy {kept[-1]['valid_cross_entropy']:.4f} with the ranking "
                   f"loss {kept[-1]['valid_ranking']:.4f} at its weight)")
    print(
        f"best validation loss {state.best_valid_loss:.4f} at epoch {state.best_epoch:g}{picked}; "
        f"model in {args.out / 'model'}"
    )
    return 0


def run_retrain(args: argparse.Namespace) -> int:
    from nlp.training.run import RetrainOptions, RunOptions, retrain

    old = corpus_spec(args.old_corpus, args, beside=True) if args.old_corpus else None
    losses = retrain(
        args.source,
        corpus_spec(args.corpus, args),
        RunOptions(args.out, verbose=0 if args.quiet else 1),
        RetrainOptions(
            old,
            args.old_share,
            args.old_holdout,
            args.extend_vocab,
            args.extend_min_freq,
            args.extend_max_new,
        ),
        _overrides(args),
    )
    print(" ".join(f"{k}={v:.4f}" for k, v in losses.items()))
    return 0
