"""`s2s chat --model DIR`: talk to a model in the terminal, with the bot's responder.

A synchronous read loop drives one persistent event loop (`asyncio.Runner`): reading stdin
stays in the main thread, so Ctrl-C and end-of-input stop it at once, while the responder's
batcher and worker thread work exactly as they do in the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import locale
import sys
from pathlib import Path
from typing import TextIO

from nlp.chat.responder import ChatResponder
from nlp.chat.setup import add_responder_arguments, build_responder, model_loader
from nlp.text.cleaning import undecodable

TERMINAL_CHAT = "terminal"
QUIT_COMMANDS = frozenset({"/quit", "/exit"})


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "chat",
        help="chat with a trained model in the terminal",
        description="Chat with a trained model. Commands as in the Telegram bot (/help); "
        "/quit or end of input (Ctrl-D) leaves.",
    )
    add_responder_arguments(parser, state_name="chat.sqlite")
    parser.add_argument(
        "--why-dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where /why saves its attention pictures (default: current dir)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        # the terminal's chat keeps its settings (/beam, /sample...) across sessions: say those
        responder = build_responder(args, model_loader(args), TERMINAL_CHAT)
    except (OSError, ValueError) as exc:
        print(f"s2s chat: cannot start: {exc}", file=sys.stderr)  # the model, --state, the log...
        return 1
    try:
        chat_loop(responder, sys.stdin, sys.stdout, why_dir=args.why_dir)
    except KeyboardInterrupt:
        print(file=sys.stdout)
    return 0


def chat_loop(responder: ChatResponder, lines: TextIO, out: TextIO, *, why_dir: Path) -> None:
    """Answer each input line until /quit or end of input; always closes the responder."""
    prompt = "you> " if lines.isatty() else ""
    pictures = 0
    with asyncio.Runner() as runner:
        try:
            while True:
                out.write(prompt)
                out.flush()
                line = lines.readline()
                if not line or line.strip() in QUIT_COMMANDS:
                    break
                if undecodable(line):  # read, its bad bytes would be dropped, then logged
                    out.write(f"     ({not_decodable(lines)})\n")
                    continue
                reply = runner.run(responder.respond(TERMINAL_CHAT, line, is_admin=True))
                out.write(f"bot> {reply.text}\n")
                if reply.provenance in ("retrieved", "refined"):
                    out.write(f"     ({reply.provenance}: training pair {reply.pair})\n")
                elif reply.provenance == "fallback":
                    out.write("     (fallback: no candidate was likely to fit)\n")
                if reply.photo is not None:
                    pictures += 1
                    while (path := why_dir / f"why-{pictures}.png").exists():
                        pictures += 1  # an earlier session's picture stays
                    try:
                        path.write_bytes(reply.photo)
                        out.write(f"     (picture saved to {path})\n")
                    except OSError as exc:  # a missing --why-dir must not end the chat
                        out.write(f"     (picture not saved: {exc})\n")
                out.flush()
        finally:
            runner.run(responder.aclose())


def not_decodable(lines: TextIO) -> str:
    """What to say of an input line with bytes `lines` cannot decode: the terminal sends
    another encoding than its locale says (Latin-1 or GBK under a UTF-8 locale)."""
    encoding = getattr(lines, "encoding", None) or "UTF-8"
    return (f"not read: the line is not {encoding}, which the locale "
            f"({locale.setlocale(locale.LC_CTYPE)}) says the terminal sends; set the terminal "
            f"to {encoding}, or the locale to what it sends")
