"""Slash commands understood by the chat (in Telegram and in the terminal alike); what
`/help` says of them is in `nlp.chat.messages`, in each language."""

from __future__ import annotations

from dataclasses import dataclass

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
