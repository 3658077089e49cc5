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
from pathlib import Path

from nlp.chat.conversation_log import ConversationLog
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import ChatSettings, SettingsStore, default_state_path
from nlp.generation.decode_args import add_decode_arguments, resolve_decoding
from nlp.generation.loading import ModelLoader, load_model


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
    parser.add_argument(
        "--max-batch",
        type=int,
        default=32,
        metavar="N",
        help="most messages decoded in one model call (default: %(default)s)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=20.0,
        metavar="MS",
        help="longest a message waits for others to share its model call (default: %(default)s)",
    )
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


def model_loader(args: argparse.Namespace) -> ModelLoader:
    """Loads the model the options name (again on /reload), with its MMI companions."""
    return functools.partial(load_model, args.model, args.mmi_model, jit_compile=args.xla)


def build_responder(args: argparse.Namespace, loader: ModelLoader) -> ChatResponder:
    """Load the model once and wire the responder's parts from the parsed options."""
    if args.context_turns is not None and args.context_turns < 0:
        raise ValueError("--context-turns must be >= 0")
    model = loader()
    decoding = resolve_decoding(args, model.decoding)
    print(decoding.describe(), file=sys.stderr)
    store = SettingsStore(args.state, ChatSettings.from_options(decoding.options))
    conversation_log = None
    if args.log_conversations is not None:
        conversation_log = ConversationLog(args.log_conversations, store.secret("log_salt"))
    responder = ChatResponder(
        model,
        store=store,
        context_turns=args.context_turns,
        conversation_log=conversation_log,
        base_options=decoding.options,
        loader=loader,
        max_batch=args.max_batch,
        max_wait=args.max_wait_ms / 1000.0,
    )
    responder.warm_up()
    return responder
