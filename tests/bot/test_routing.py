"""Which updates the bot answers, with what, and which it ignores on purpose."""

import pytest
from telegram import Update

from bot.routing import Action, route
from nlp.chat.slash_commands import COMMAND_NAMES
from tests.fakes.fake_telegram import BOT_ID, BOT_USERNAME, STICKER_JSON, FakeTelegram

FAKE = FakeTelegram("1:x")
STICKER = STICKER_JSON


def decide(update: dict) -> tuple[Action, str]:
    update_object = Update.de_json({"update_id": 1, **update}, None)
    result = route(update_object, BOT_USERNAME, BOT_ID, COMMAND_NAMES)
    return result.action, result.text


def msg(*args: object, **kwargs: object) -> dict:
    return {"message": FAKE.message(*args, **kwargs)}  # type: ignore[arg-type]


def test_private_text_and_commands_are_answered() -> None:
    assert decide(msg(5, "hello")) == (Action.RESPOND, "hello")
    assert decide(msg(5, "/beam 3")) == (Action.RESPOND, "/beam 3")


@pytest.mark.parametrize(
    "fields",
    [
        {"sticker": STICKER},
        {
            "photo": [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}],
            "caption": "look",
        },
        {"voice": {"file_id": "v", "file_unique_id": "u", "duration": 2}},
        {"document": {"file_id": "d", "file_unique_id": "u"}},
        {"location": {"latitude": 1.0, "longitude": 2.0}},
    ],
)
def test_non_text_messages_in_private_get_the_text_only_reply(fields: dict) -> None:
    assert decide(msg(5, None, **fields))[0] is Action.UNSUPPORTED


def test_deliberately_ignored_update_kinds() -> None:
    assert decide({"edited_message": FAKE.message(5, "fixed typo")})[0] is Action.IGNORE
    assert (
        decide({"channel_post": FAKE.message(-1001, "news", chat_type="channel")})[0]
        is Action.IGNORE
    )
    assert (
        decide(msg(5, None, new_chat_members=[{"id": 8, "is_bot": False, "first_name": "x"}]))[0]
        is Action.IGNORE
    )
    user = {"id": 5, "is_bot": False, "first_name": "u"}
    inline = {"id": "1", "from": user, "query": "q", "offset": ""}
    assert decide({"inline_query": inline})[0] is Action.IGNORE
    from_bot = FAKE.message(5, "hi")
    from_bot["from"] = {"id": 77, "is_bot": True, "first_name": "other bot"}
    assert decide({"message": from_bot})[0] is Action.IGNORE


def test_callback_queries_are_acknowledged() -> None:
    query = {
        "id": "q1",
        "from": {"id": 5, "is_bot": False, "first_name": "u"},
        "chat_instance": "c",
        "data": "x",
    }
    assert decide({"callback_query": query})[0] is Action.CALLBACK


def test_groups_answer_only_mentions_replies_and_our_commands() -> None:
    group = {"chat_type": "group", "user_id": 5}
    assert decide(msg(-100, "people talking", **group))[0] is Action.IGNORE
    assert decide(msg(-100, f"hey @{BOT_USERNAME.upper()} how are you", **group)) == (
        Action.RESPOND,
        "hey   how are you",
    )
    assert decide(msg(-100, "answering you", reply_to_bot=True, **group)) == (
        Action.RESPOND,
        "answering you",
    )
    assert decide(msg(-100, "/help", **group))[0] is Action.RESPOND
    assert decide(msg(-100, f"/help@{BOT_USERNAME}", **group))[0] is Action.RESPOND
    assert decide(msg(-100, "/help@other_bot", **group))[0] is Action.IGNORE
    assert decide(msg(-100, f"mail me at x@{BOT_USERNAME}s.org", **group))[0] is Action.IGNORE
    assert decide(msg(-100, None, sticker=STICKER, **group))[0] is Action.IGNORE
    assert (
        decide(msg(-100, None, sticker=STICKER, reply_to_bot=True, **group))[0]
        is Action.UNSUPPORTED
    )
    # a picture whose caption names the bot asks it something: it says what it reads
    photo = [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}]
    assert decide(msg(-100, None, photo=photo, caption=f"@{BOT_USERNAME} what is this?",
                      **group))[0] is Action.UNSUPPORTED
    assert decide(msg(-100, None, photo=photo, caption="our cat", **group))[0] is Action.IGNORE


def test_commands_for_other_bots_and_unknown_commands_in_groups_are_ignored() -> None:
    """Issue 37: "/ban@otherbot" got "I don't know the command", and so did any other bot's
    command in a group, where several bots share one chat."""
    group = {"chat_type": "supergroup", "user_id": 5}
    assert decide(msg(5, "/ban@other_bot 12"))[0] is Action.IGNORE  # private chat too
    assert decide(msg(5, "/ban 12")) == (Action.RESPOND, "/ban 12")  # to us: "don't know"
    assert decide(msg(5, f"/beam@{BOT_USERNAME} 3")) == (Action.RESPOND, f"/beam@{BOT_USERNAME} 3")
    assert decide(msg(-100, "/ban 12", **group))[0] is Action.IGNORE  # another bot's command
    assert decide(msg(-100, "/Beam 3", **group))[0] is Action.RESPOND  # ours, any case
    assert decide(msg(-100, f"/ban@{BOT_USERNAME}", **group))[0] is Action.RESPOND  # to us
