"""What to do with an incoming update, decided in one pure function.

One router instead of a dozen PTB handlers with filters: the rules (who is addressed in a
group, which update kinds are ignored and why) are then in one place, readable top to bottom,
and testable without a network. Deliberately ignored, never answered:
- edited messages (the original was already answered; answering again would double up),
- channel posts and edited channel posts (the bot does not talk in channels),
- service messages (members joining, pinned messages, ...) and messages from other bots
  (not those sent on behalf of a chat: an anonymous admin's, or someone's as their channel),
- update kinds we don't subscribe to (inline queries, polls, chat member changes, ...),
- commands addressed to another bot ("/ban@other_bot"), in private chats too,
- in groups: messages that neither mention @botname nor reply to the bot, and commands that
  are not ours ("/ban" is another bot's there; "/ban@our_bot" is ours and answered "I don't
  know the command").
Answered without the model: stickers, photos, voice, documents and other non-text messages
in private chats (or replying to the bot in a group) get a clear "text only" reply; callback
queries are acknowledged (the bot sends no buttons, so they come from stale messages).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection
from dataclasses import dataclass

from telegram import Chat, Message, Update

from nlp.chat.slash_commands import Command, parse_command

ALLOWED_UPDATES = ("message", "callback_query")  # what we ask Telegram to send at all


class Action(enum.Enum):
    RESPOND = "respond"  # hand `text` to the responder
    UNSUPPORTED = "unsupported"  # reply that only text is read (Messages.text_only)
    CALLBACK = "callback"  # answer the callback query
    IGNORE = "ignore"  # do nothing; `reason` says why (logged at debug)


@dataclass(frozen=True)
class Route:
    action: Action
    text: str = ""
    reason: str = ""


def _ignore(reason: str) -> Route:
    return Route(Action.IGNORE, reason=reason)


def route(
    update: Update, bot_username: str, bot_id: int, known_commands: Collection[str]
) -> Route:
    """What to do with `update`; `known_commands` are the responder's command names."""
    if update.callback_query is not None:
        return Route(Action.CALLBACK)
    if update.edited_message is not None:
        return _ignore("edited message")
    if update.channel_post is not None or update.edited_channel_post is not None:
        return _ignore("channel post")
    message = update.message
    if message is None:
        return _ignore("update kind we don't handle")
    if message.from_user is not None and message.from_user.is_bot and message.sender_chat is None:
        # a message sent on behalf of a chat (an anonymous group admin, someone writing as
        # their channel) comes from a stand-in bot account (@GroupAnonymousBot,
        # @Channel_Bot), with the chat in `sender_chat`: a person, answered
        return _ignore("message from a bot")
    if message.chat.type == Chat.PRIVATE:
        return _route_private(message, bot_username)
    return _route_group(message, bot_username, bot_id, known_commands)


def _route_private(message: Message, bot_username: str) -> Route:
    if message.text is not None:
        command = parse_command(message.text.strip())
        if command is not None and not _for_me(command, bot_username):
            return _ignore("command for another bot")
        return Route(Action.RESPOND, message.text)
    if message.effective_attachment is not None:
        return Route(Action.UNSUPPORTED)
    return _ignore("service message")


def _for_me(command: Command, bot_username: str) -> bool:
    return command.target is None or command.target.lower() == bot_username.lower()


def _route_group(
    message: Message, bot_username: str, bot_id: int, known_commands: Collection[str]
) -> Route:
    replied = message.reply_to_message
    is_reply_to_me = (
        replied is not None and replied.from_user is not None and replied.from_user.id == bot_id
    )
    mention = re.compile(rf"@{re.escape(bot_username)}\b", re.IGNORECASE)
    text = message.text
    if text is None:
        mentioned = mention.search(message.caption or "")
        if (is_reply_to_me or mentioned) and message.effective_attachment is not None:
            return Route(Action.UNSUPPORTED)  # a picture asked about: say what the bot reads
        return _ignore("group message without text for me")
    command = parse_command(text.strip())
    if command is not None:
        if not _for_me(command, bot_username):
            return _ignore("command for another bot")
        if command.target is None and command.name not in known_commands:
            return _ignore("a command we don't have, without @botname: another bot's")
        return Route(Action.RESPOND, text)
    if mention.search(text):
        return Route(Action.RESPOND, mention.sub(" ", text))
    if is_reply_to_me:
        return Route(Action.RESPOND, text)
    return _ignore("group message not addressed to me")
