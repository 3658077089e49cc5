"""`s2s pretrain` argument parsing; the work is in `nlp.pretraining.run`."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from nlp.training.command import (
    add_config_arguments,
    add_corpus_arguments,
    add_run_arguments,
    corpus_spec,
    experiment_config,
)
from nlp.util.config import SAFE_ON_RESUME

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
    add_config_arguments(parser)
    add_run_arguments(parser)
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
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (after a kill or a budget); "
        f"--minutes, --epochs and --set {'|'.join(SAFE_ON_RESUME)} may change",
    )
    parser.set_defaults(func=run_pretrain)


def run_pretrain(args: argparse.Namespace) -> int:
    from nlp.pretraining.run import PretrainOptions, pretrain

    corpus = corpus_spec(args.corpus, args) if args.corpus else None
    state = pretrain(
        experiment_config(args),
        corpus,
        args.text,
        PretrainOptions(
            args.out, tuple(args.objectives), resume=args.resume, verbose=0 if args.quiet else 1
        ),
    )
    loss = state.best_valid_loss
    print(
        f"best validation loss {loss:.4f} (perplexity {math.exp(min(loss, 50.0)):.2f}) at "
        f"epoch {state.best_epoch:g}; pretrained model in {args.out / 'model'}: "
        f"s2s train --set model.pretrained={args.out} ..."
    )
    return 0
