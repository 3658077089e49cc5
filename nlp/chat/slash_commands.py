"""Slash commands understood by the chat (in Telegram and in the terminal alike)."""

from __future__ import annotations

from dataclasses import dataclass

HELP_TEXT = """\
I am a small neural chatbot (an attention seq2seq model). Just write to me.

/reset - forget our conversation so far
/settings - show how I pick my replies
/beam N - beam search with N beams (1-16)
/greedy - greedy search (fastest)
/sample T - random sampling at temperature T (0.05-5; higher is wilder)
/length N - longest reply in tokens (1-200)
/why - a picture of what I looked at for my last reply
/good, /bad - rate my last reply (only if conversation logging is on)
/help - this message"""

START_TEXT = "Hello! " + HELP_TEXT

# Every command the responder has (it looks up `_cmd_<name>` for each). The bot needs the
# list before answering: in a group, a command that is not ours belongs to another bot there.
COMMAND_NAMES = frozenset(
    {"start", "help", "reset", "settings", "beam", "greedy", "sample", "length", "why", "good",
     "bad", "reload"}
)


@dataclass(frozen=True)
class Command:
    """A parsed "/name@target arg1 arg2" line."""

    name: str  # lower-case, without the slash and the @target
    args: tuple[str, ...]
    target: str | None  # the bot the command was addressed to in a group, if any


def parse_command(text: str) -> Command | None:
    """The command in `text`, or None when it is an ordinary message.

    "/" alone or "/ hello" are ordinary messages, not commands with an empty name.
    """
    if not text.startswith("/"):
        return None
    head, *args = text.split()
    name, _, target = head[1:].partition("@")
    if not name or not (name.isascii() and name.replace("_", "").isalnum()):
        return None
    return Command(name.lower(), tuple(args), target or None)
