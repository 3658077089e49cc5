"""`s2s pretrain` argument parsing; the work is in `nlp.pretraining.run`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from nlp.training.command import add_corpus_arguments, corpus_spec
from nlp.util.config import TASK_PRESETS, ExperimentConfig, task_preset

OBJECTIVE_NAMES = ("lm", "autoencoder")  # nlp.pretraining.objective.OBJECTIVES, without TF


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain a model's parts on unlabelled text",
        description="Train, in a model config's tokenization and vocabulary, the decoder and "
        "the encoder's two directions as language models and the whole model as a sequence "
        "autoencoder (Dai & Le 2015) on unlabelled text: --text files (one document a line) "
        "and/or --corpus files of any format (both sides). Give the same --task, --config and "
        "--set as the `s2s train` that follows, then `s2s train --set model.pretrained=OUT`: "
        "it starts from these weights, tokenizer and vocabulary. OUT is laid out as a "
        "training run (model/, checkpoint/, logs/, run/).",
    )
    add_corpus_arguments(parser, required=False)
    parser.add_argument(
        "--text",
        type=Path,
        nargs="+",
        default=[],
        metavar="PATH",
        help="plain unlabelled text files, one document a line",
    )
    parser.add_argument("--out", type=Path, required=True, help="run directory to create")
    parser.add_argument("--config", type=Path, help="JSON config (as `s2s train --config`)")
    parser.add_argument("--task", choices=sorted(TASK_PRESETS), help="as `s2s train --task`")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="as `s2s train --set` (tokenizer.*, vocab.*, model.* and train.* apply)",
    )
    parser.add_argument(
        "--objectives",
        nargs="+",
        choices=OBJECTIVE_NAMES,
        default=list(OBJECTIVE_NAMES),
        help="lm: the decoder and the encoder's directions as language models; autoencoder: "
        "the encoder reads a text and the decoder rebuilds it (default: both)",
    )
    parser.add_argument(
        "--minutes", type=float, help="time budget (--set train.max_minutes=M); --resume goes on"
    )
    parser.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (after a kill or a budget); "
        "--minutes, --epochs and --set train.patience|log_every may change",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(func=run_pretrain)


def _config(args: argparse.Namespace) -> ExperimentConfig:
    if args.resume and not args.config:
        from nlp.training.run import saved_config

        base = saved_config(args.out)
        sets = list(args.set)
    else:
        base = ExperimentConfig.load(args.config) if args.config else ExperimentConfig()
        sets = [*task_preset(args.task), *args.set] if args.task else list(args.set)
    if args.minutes is not None:
        sets.append(f"train.max_minutes={args.minutes}")
    if args.epochs is not None:
        sets.append(f"train.epochs={args.epochs}")
    return base.with_overrides(sets)


def run_pretrain(args: argparse.Namespace) -> int:
    from nlp.pretraining.run import PretrainOptions, pretrain

    corpus = corpus_spec(args.corpus, args) if args.corpus else None
    state = pretrain(
        _config(args),
        corpus,
        args.text,
        PretrainOptions(
            args.out, tuple(args.objectives), resume=args.resume, verbose=0 if args.quiet else 1
        ),
    )
    loss = state.best_valid_loss
    print(
        f"best validation loss {loss:.4f} (perplexity {math.exp(min(loss, 50.0)):.2f}) at "
        f"epoch {state.best_epoch}; pretrained model in {args.out / 'model'}: "
        f"s2s train --set model.pretrained={args.out} ..."
    )
    return 0
