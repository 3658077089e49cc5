"""`s2s`: one command with a subcommand per job.

Each job's module registers its own subparser (`register(subparsers)`) and imports heavy
libraries such as TensorFlow only when it runs, so `s2s --help` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import sys
from collections.abc import Sequence

from bot import command as bot_command
from nlp.chat import command as chat_command
from nlp.corpus import command as corpus_command
from nlp.evaluation import command as evaluate_command
from nlp.generation import companion_command
from nlp.headlines import command as headlines_command
from nlp.pretraining import command as pretrain_command
from nlp.serving import command as export_command
from nlp.serving.http import command as serve_command
from nlp.training import command as training_command
from nlp.tuning import command as tuning_command
from nlp.util.quiet import hide_tensorflow_logs, quiet_tensorflow, uninstall
from nlp.vectors import command as embeddings_command
from s2s import quiet

hide_tensorflow_logs()  # with -v too: -v shows the start-up lines, not every INFO

REGISTRARS = (
    corpus_command.register,
    pretrain_command.register,
    training_command.register,
    training_command.register_index,
    embeddings_command.register,
    evaluate_command.register,
    headlines_command.register,
    tuning_command.register,
    export_command.register,
    companion_command.register,
    chat_command.register,
    bot_command.register,
    serve_command.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2s",
        description="Attention seq2seq chatbot and headline generator: prepare corpora, train, "
        "retrain, evaluate, generate headlines, chat in the terminal or on Telegram, serve over "
        "HTTP.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="debug logging, and TensorFlow's start-up lines (CUDA, absl)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in REGISTRARS:
        register(subparsers)
    return parser


def _show_crashes() -> None:
    """A crash inside TensorFlow's C++ (a segmentation fault) prints the Python stack that
    led to it rather than nothing: a long run that dies says where, and `--resume` goes on
    from its last checkpoint. Left as it is when a host (pytest) has set it up already or
    stderr has no file descriptor."""
    if not faulthandler.is_enabled():
        with contextlib.suppress(AttributeError, OSError, ValueError):
            faulthandler.enable()


def main(argv: Sequence[str] | None = None) -> int:
    _show_crashes()
    args = build_parser().parse_args(argv)
    quiet.configure_logging(args.verbose)
    if not args.verbose:
        quiet_tensorflow()
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError) as exc:  # bad files and settings: one clear line, no trace
        if args.verbose:
            raise
        print(f"s2s {args.command}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        uninstall()


if __name__ == "__main__":
    sys.exit(main())
