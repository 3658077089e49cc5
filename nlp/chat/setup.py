"""Command-line options and construction shared by `s2s chat` and `s2s bot`.

Both front ends build the very same responder from the very same flags, so a setting tried in
the terminal behaves the same once deployed as a bot. Decoding starts from the model's
recommended settings (its decoding.json); decoding flags override them, and per-chat commands
(/beam, /length, ...) override both for one chat.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

from nlp.chat.batcher import BatchLimits
from nlp.chat.conversation_log import ConversationLog
from nlp.chat.rerank import ReplyRanker
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import ChatSettings, SettingsStore, default_state_path
from nlp.decoding import DecodeOptions
from nlp.generation.decode_args import add_decode_arguments, resolve_decoding
from nlp.generation.loading import LoadedModel, ModelLoader, load_model
from nlp.generation.reply_choice import ModelReads


def add_responder_arguments(parser: argparse.ArgumentParser, *, state_name: str) -> None:
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        metavar="DIR",
        help="trained model: a bundle, or a training run directory holding model/",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=default_state_path(state_name),
        metavar="FILE",
        help="SQLite file keeping per-chat settings across restarts (default: %(default)s)",
    )
    parser.add_argument(
        "--context-turns",
        type=int,
        default=None,
        metavar="K",
        help="previous turns fed to the model with each message "
        "(default: the model's data.context_turns)",
    )
    parser.add_argument(
        "--log-conversations",
        type=Path,
        default=None,
        metavar="FILE",
        help="append whole conversations (turns, who wrote them, /good and /bad ratings) as "
        "JSONL; s2s retrain --corpus FILE learns from what people wrote and from replies "
        "rated /good, never from unrated or /bad ones (off by default)",
    )
    add_batching_arguments(parser)
    parser.add_argument(
        "--mmi-model",
        type=Path,
        nargs="+",
        default=[],
        metavar="BUNDLE",
        help="companion models for --rerank: an LM (s2s train --task lm) and/or a reverse "
        "model (s2s train --reverse); default: those the model names (s2s companion)",
    )
    add_decode_arguments(parser)


def add_batching_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--max-batch` and `--max-wait-ms`, the micro-batching of `s2s chat`, `s2s bot` and
    `s2s serve` alike (read back with `batch_limits`)."""
    parser.add_argument(
        "--max-batch",
        type=int,
        default=BatchLimits.max_batch,
        metavar="N",
        help="most messages decoded in one model call (default: %(default)s)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=BatchLimits.max_wait_ms,
        metavar="MS",
        help="how long a message waits for others to share a model call when the model is "
        "idle (while it is busy, messages queue and share the next call anyway; default: "
        "%(default)s)",
    )


def batch_limits(args: argparse.Namespace) -> BatchLimits:
    """The micro-batching `add_batching_arguments`'s options ask for."""
    return BatchLimits(args.max_batch, args.max_wait_ms)


def model_loader(args: argparse.Namespace) -> ModelLoader:
    """Loads the model the options name (again on /reload), with its MMI companions."""
    return functools.partial(load_model, args.model, args.mmi_model, jit_compile=args.xla)


def build_responder(
    args: argparse.Namespace, loader: ModelLoader, chat: str | None = None
) -> ChatResponder:
    """Load the model once and wire the responder's parts from the parsed options; say what
    chooses the replies of `chat` (None: a new chat's), whose settings may be stored."""
    if args.context_turns is not None and args.context_turns < 0:
        raise ValueError("--context-turns must be >= 0")
    model = loader()
    decoding = resolve_decoding(args, model.decoding)
    print(decoding.describe(ModelReads.of(model.data)), file=sys.stderr)
    responder = make_responder(
        model,
        decoding.options,
        state=args.state,
        context_turns=args.context_turns,
        log_path=args.log_conversations,
        loader=loader,
        batching=batch_limits(args),
        options_for=lambda reloaded: resolve_decoding(args, reloaded.decoding).options,
    )
    print(responder.replies_text(chat), file=sys.stderr)  # what the decoding line means
    return responder


def make_responder(
    model: LoadedModel,
    options: DecodeOptions,
    *,
    state: Path | str,
    context_turns: int | None = None,
    log_path: Path | None = None,
    loader: ModelLoader | None = None,
    batching: BatchLimits | None = None,
    ranker: ReplyRanker | None = None,
    warm_up: bool = True,
    options_for: Callable[[LoadedModel], DecodeOptions] | None = None,
) -> ChatResponder:
    """The responder of `s2s chat`, `s2s bot` and `nlp.api`, built alike: per-chat settings
    starting from `options` (the model's decoding with the caller's overrides) and kept in
    the SQLite file `state` (":memory:": not kept), the model's context size or a smaller
    `context_turns`, an opt-in conversation log, /reload through `loader`, micro-batching,
    the reply ranker (default: the bot's penalties). `warm_up`: build the decoder's graph
    now rather than on the first message. `options_for`: a model's `options` (/reload reads
    the reloaded bundle's through it; `ChatResponder`)."""
    if context_turns is not None and context_turns < 0:
        raise ValueError("--context-turns must be >= 0")
    store = SettingsStore(state, ChatSettings.from_options(options))
    conversation_log = None
    if log_path is not None:
        conversation_log = ConversationLog(log_path, store.secret("log_salt"))
    responder = ChatResponder(
        model,
        store=store,
        context_turns=context_turns,
        conversation_log=conversation_log,
        base_options=options,
        loader=loader,
        batching=batching,
        ranker=ranker,
        options_for=options_for,
    )
    if warm_up:
        responder.warm_up()
    return responder
