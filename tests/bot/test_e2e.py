"""The Telegram bot end to end: real python-telegram-bot over HTTP against a fake Bot API.

Every command and every kind of bad input goes through getUpdates -> routing -> responder ->
sendMessage/sendPhoto, and the assertions look at what the fake server received.
"""

import asyncio
import json
import logging
import re
from pathlib import Path

import pytest

from bot.access import AccessPolicy
from bot.delivery import TYPING_DELAY_SECONDS
from nlp.chat.conversation_log import ConversationLog
from nlp.chat.messages import ENGLISH
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SettingsStore
from nlp.chat.text_input import TELEGRAM_TEXT_LIMIT
from nlp.text.scripts import has_han
from tests.fakes.fake_generators import CostModel, ScriptedGenerator, fake_model, reply_for
from tests.fakes.fake_telegram import BOT_USERNAME, STICKER_JSON, TEST_TOKEN, bot_on_fake_telegram

CHAT = 501


def responder(generator: ScriptedGenerator | None = None, **kwargs: object) -> ChatResponder:
    store = kwargs.pop("store", None) or SettingsStore(":memory:")
    return ChatResponder(
        fake_model(generator or ScriptedGenerator()),
        store=store,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_every_command_is_answered_in_order(tmp_path: Path) -> None:
    log = ConversationLog(tmp_path / "talk.jsonl", salt="s")
    lines = [
        "/start",
        "/help",
        "/settings",
        "/beam 3",
        "/greedy",
        "/sample 0.8",
        "/length 12",
        "hello bot",
        "/why",
        "/good",
        "/bad",
        "/reload",
        "/reset",
        "/why",
        "/nonsense",
    ]
    async with bot_on_fake_telegram(responder(conversation_log=log), rate_burst=50) as server:
        ids = [server.push_message(CHAT, line) for line in lines]
        sent = await server.wait_for_replies(len(lines))
    assert [s.reply_to for s in sent] == ids  # one reply per message, in order
    texts = [s.text or s.caption or "" for s in sent]
    expected = [
        "Hello!",
        "/beam N",
        "beam search, beam size 5",
        "beam size 3",
        "greedy search",
        "sampling, temperature 0.8",
        "12 tokens",
        reply_for("hello bot"),
        "What I looked at",
        "Thanks, noted",
        "no new reply",
        "only the bot's admins",
        "I forgot our conversation",
        "no reply of mine",
        "don't know the command",
    ]
    for text, fragment in zip(texts, expected, strict=True):
        assert fragment in text
    why = sent[8]
    assert why.method == "sendPhoto" and why.photo is not None and why.photo.startswith(b"\x89PNG")
    records = [json.loads(line) for line in (tmp_path / "talk.jsonl").read_text().splitlines()]
    said = [(r.get("speaker"), r.get("text"), r.get("rating")) for r in records]
    assert said == [
        ("user", "hello bot", None),
        ("bot", reply_for("hello bot"), None),
        (None, None, "good"),
    ]
    assert all(str(CHAT) not in r["chat"] for r in records)


async def test_typing_is_shown_while_the_model_thinks_and_only_then() -> None:
    slow = ScriptedGenerator(cost=CostModel(per_call=3 * TYPING_DELAY_SECONDS))
    async with bot_on_fake_telegram(responder(slow)) as server:
        server.push_message(CHAT, "take your time")
        await server.wait_for_replies(1)
    actions = server.calls_of("sendChatAction")
    assert actions and actions[0].params == {"chat_id": str(CHAT), "action": "typing"}
    assert actions[0].time < server.calls_of("sendMessage")[0].time
    async with bot_on_fake_telegram(responder()) as server:  # a reply faster than the delay
        server.push_message(CHAT, "quick")
        await server.wait_for_replies(1)
        await asyncio.sleep(2 * TYPING_DELAY_SECONDS)
    assert not server.calls_of("sendChatAction")


async def test_bad_input_is_answered_clearly_or_ignored_on_purpose() -> None:
    generator = ScriptedGenerator()
    photo = [{"file_id": "p", "file_unique_id": "u", "width": 9, "height": 9}]
    voice = {"file_id": "v", "file_unique_id": "u", "duration": 1}
    long_text = ("word " * 1000)[:4096]
    async with bot_on_fake_telegram(responder(generator), rate_burst=50) as server:
        answered = {
            server.push_message(CHAT, "   "): ENGLISH.empty,
            server.push_message(CHAT, "😀😀🎉"): ENGLISH.no_words,
            server.push_message(CHAT, "\x01\x02\x1f"): ENGLISH.empty,
            server.push_message(CHAT, None, sticker=STICKER_JSON): ENGLISH.text_only,
            server.push_message(CHAT, None, photo=photo, caption="see"): ENGLISH.text_only,
            server.push_message(CHAT, None, voice=voice): ENGLISH.text_only,
        }
        control = server.push_message(CHAT, "ab\x00cd\u202e ef")
        mixed = server.push_message(CHAT, "Hello 你好 Привет مرحبا 😀")
        long_id = server.push_message(CHAT, long_text)
        server.push_update({"edited_message": server.message(CHAT, "edited")})
        server.push_update({"channel_post": server.message(-1009, "post", chat_type="channel")})
        query = {
            "id": "q1",
            "from": {"id": CHAT, "is_bot": False, "first_name": "u"},
            "chat_instance": "ci",
            "data": "old",
        }
        server.push_update({"callback_query": query})
        await server.wait_for_replies(9)
        await server.wait_for(lambda: bool(server.calls_of("answerCallbackQuery")))
    by_id = {s.reply_to: s.text for s in server.replies()}
    assert len(server.replies()) == 9  # the edited message and the channel post got nothing
    for message_id, text in answered.items():
        assert by_id[message_id] == text
    assert by_id[control] == reply_for("ab cd ef")
    assert by_id[mixed] == reply_for("Hello 你好 Привет مرحبا 😀")
    assert by_id[long_id] is not None and by_id[long_id].startswith("reply-")
    assert max(len(texts[0]) for texts, _ in generator.calls) <= 1000
    assert server.calls_of("answerCallbackQuery")[0].params["text"] == ENGLISH.stale_button


async def test_groups_get_answers_only_when_the_bot_is_addressed() -> None:
    group = {"chat_type": "supergroup", "user_id": 7}
    async with bot_on_fake_telegram(responder()) as server:
        server.push_message(-100, "just chatting among humans", **group)
        server.push_message(-100, "/help@someone_else_bot", **group)
        mention = server.push_message(-100, f"@{BOT_USERNAME} what's up", **group)
        reply = server.push_message(-100, "replying to you", reply_to_bot=True, **group)
        command = server.push_message(-100, f"/settings@{BOT_USERNAME}", **group)
        await server.wait_for_replies(3)
    assert [s.reply_to for s in server.replies()] == [mention, reply, command]
    assert server.replies()[0].text == reply_for("what's up")


async def test_commands_for_other_bots_get_no_answer() -> None:
    """Issue 37: "/ban@other_bot", and in a group any command we don't have, were answered
    "I don't know the command". Each chat's replies come in order, so the message sent after
    them is answered last and nothing else is."""
    group = {"chat_type": "supergroup", "user_id": 7}
    async with bot_on_fake_telegram(responder()) as server:
        server.push_message(CHAT, "/ban@other_bot 12")
        private = server.push_message(CHAT, "hello")
        server.push_message(-100, "/kick 12", **group)
        server.push_message(-100, "/ban@other_bot 12", **group)
        mention = server.push_message(-100, f"@{BOT_USERNAME} hi", **group)
        await server.wait_for(lambda: len(server.replies()) >= 2)
    assert [(s.reply_to, s.text) for s in server.replies(CHAT)] == [
        (private, reply_for("hello"))
    ]
    assert [(s.reply_to, s.text) for s in server.replies(-100)] == [(mention, reply_for("hi"))]


async def test_every_outgoing_text_keeps_to_telegrams_length_limit() -> None:
    """Issue 37: a 4,096-character unknown command made a longer "I don't know the command"
    reply, which Telegram refuses (400), so the bot answered nothing."""
    long_command = "/" + "x" * 4095
    async with bot_on_fake_telegram(responder()) as server:
        command = server.push_message(CHAT, long_command)
        after = server.push_message(CHAT, "hello")
        await server.wait_for(lambda: any(s.reply_to == after for s in server.replies()))
    first, second = server.replies(CHAT)
    assert first.reply_to == command and first.text is not None
    assert first.text.startswith("I don't know the command /xxx") and first.text.endswith("…")
    assert len(first.text) == TELEGRAM_TEXT_LIMIT
    assert second.text == reply_for("hello")


async def test_forum_topics_are_answered_in_their_topic() -> None:
    forum = {"chat_type": "supergroup", "user_id": 7}
    # long enough to show "typing"
    slow = ScriptedGenerator(cost=CostModel(per_call=3 * TYPING_DELAY_SECONDS))
    async with bot_on_fake_telegram(responder(slow)) as server:
        in_topic = server.push_message(
            -100, f"@{BOT_USERNAME} hi", message_thread_id=55, is_topic_message=True, **forum
        )
        # A reply chain in an ordinary group has a thread id too, but is no topic.
        in_chain = server.push_message(-200, f"@{BOT_USERNAME} yo", message_thread_id=9, **forum)
        await server.wait_for_replies(2)
    topics = {(s.reply_to, s.thread_id) for s in server.replies()}
    assert topics == {(in_topic, 55), (in_chain, None)}
    typing = {
        c.params["chat_id"]: c.params.get("message_thread_id")
        for c in server.calls_of("sendChatAction")
    }
    assert typing == {"-100": "55", "-200": None}


async def test_in_groups_each_member_has_their_own_conversation_and_settings() -> None:
    """Issue 37: in a group, everyone's messages merged into one context, and any member's
    /beam or /reset changed everyone's. Now context, settings and /reset are per member."""
    generator = ScriptedGenerator()
    bot_responder = ChatResponder(
        fake_model(generator, context_turns=2), store=SettingsStore(":memory:")
    )
    alice, bob = {"chat_type": "supergroup", "user_id": 7}, {"chat_type": "group", "user_id": 8}
    bot = f"@{BOT_USERNAME}"
    lines = [
        (alice, f"{bot} I like tea"),
        (bob, f"{bot} what now"),
        (alice, f"{bot} and you"),
        (bob, f"/beam@{BOT_USERNAME} 2"),
        (alice, "/settings"),
        (bob, "/settings"),
        (alice, "/reset"),
        (bob, f"{bot} still there"),
    ]
    async with bot_on_fake_telegram(bot_responder, rate_burst=50) as server:
        for who, text in lines:
            server.push_message(-100, text, **who)
        await server.wait_for_replies(len(lines))
    inputs = [texts[0] for texts, _ in generator.calls]
    sep = generator.separator
    assert inputs == [
        "I like tea",
        "what now",  # not Alice's turn
        sep.join(["I like tea", reply_for("I like tea"), "and you"]),
        sep.join(["what now", reply_for("what now"), "still there"]),  # Alice's /reset
    ]
    texts = [s.text or "" for s in server.replies(-100)]
    assert "beam size 5" in texts[4] and "beam size 2" in texts[5]


async def test_allowlist_refuses_others_politely_once_and_admins_can_reload() -> None:
    generator = ScriptedGenerator()
    reloaded = ScriptedGenerator(candidates=lambda m: ["new model speaking"])
    bot_responder = responder(generator, loader=lambda: fake_model(reloaded))
    access = AccessPolicy(allowed=frozenset({CHAT}), admins=frozenset({99}))
    async with bot_on_fake_telegram(bot_responder, access=access) as server:
        server.push_message(666, "let me in")
        server.push_message(666, "please?")
        server.push_message(CHAT, "/reload")  # allowed chat, but not an admin
        server.push_message(99, "/reload")  # the admin, in their private chat
        await server.wait_for(lambda: len(server.replies(99)) == 1)  # reloaded
        server.push_message(CHAT, "hello")
        await server.wait_for_replies(4)
        await server.wait_for(lambda: len(server.replies(CHAT)) == 2)
    assert [s.text for s in server.replies(666)] == [ENGLISH.private_bot]
    assert "only the bot's admins" in (server.replies(CHAT)[0].text or "")
    assert [s.text for s in server.replies(99)] == ["Reloaded the model from disk."]
    assert server.replies(CHAT)[1].text == "new model speaking"
    assert all("let me in" not in texts for texts, _ in generator.calls)


async def test_rate_limit_drops_a_flood_with_one_notice() -> None:
    async with bot_on_fake_telegram(responder(), rate_burst=2, rate_per_minute=1) as server:
        for i in range(6):
            server.push_message(CHAT, f"spam {i}")
        server.push_message(CHAT + 1, "a calm user")  # answered last: the flood was all seen
        await server.wait_for(lambda: bool(server.replies(CHAT + 1)))
    texts = [s.text for s in server.replies(CHAT)]
    assert texts == [reply_for("spam 0"), reply_for("spam 1"), ENGLISH.rate_limited]
    assert [s.text for s in server.replies(CHAT + 1)] == [reply_for("a calm user")]


async def test_many_chats_share_model_calls_and_keep_their_own_order() -> None:
    generator = ScriptedGenerator(cost=CostModel(per_call=0.02, per_item=0.001))
    async with bot_on_fake_telegram(responder(generator), rate_burst=10) as server:
        sent = {
            chat: [server.push_message(chat, f"chat {chat} message {i}") for i in range(3)]
            for chat in range(1, 31)
        }
        await server.wait_for_replies(90)
    for chat, ids in sent.items():
        assert [s.reply_to for s in server.replies(chat)] == ids
    assert len(generator.calls) < 45  # 90 messages, batched


async def test_a_crashing_handler_is_logged_without_the_token_and_answered_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot_responder = responder()
    original = bot_responder.respond

    async def explode(chat: str, text: str, **kwargs):  # type: ignore[no-untyped-def]
        if text == "boom":
            raise RuntimeError(f"bug while calling /bot{TEST_TOKEN}/sendMessage")
        return await original(chat, text, **kwargs)

    monkeypatch.setattr(bot_responder, "respond", explode)
    from bot.redaction import install_redaction

    installed = install_redaction([TEST_TOKEN], logging.getLogger())
    try:
        with caplog.at_level(logging.INFO):
            async with bot_on_fake_telegram(bot_responder) as server:
                boom = server.push_message(CHAT, "boom")
                fine = server.push_message(CHAT, "still alive?")
                await server.wait_for_replies(2)
    finally:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(installed)
    by_id = {s.reply_to: s.text for s in server.replies()}
    assert by_id == {boom: ENGLISH.bot_error, fine: reply_for("still alive?")}
    logged = "\n".join(caplog.handler.format(r) for r in caplog.records)
    assert "bug while calling" in logged and TEST_TOKEN not in logged
    assert "HTTP Request" not in logged  # httpx's URL logging is silenced


async def test_settings_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "bot.sqlite"
    async with bot_on_fake_telegram(responder(store=SettingsStore(state))) as server:
        server.push_message(CHAT, "/beam 2")
        await server.wait_for_replies(1)
    async with bot_on_fake_telegram(responder(store=SettingsStore(state))) as server:
        server.push_message(CHAT, "/settings")
        (reply,) = await server.wait_for_replies(1)
    assert "beam size 2" in (reply.text or "")


async def test_a_user_whose_telegram_speaks_chinese_reads_the_bots_own_words_in_chinese() -> None:
    """The scripted model reads no language of ours, so the user's app language decides."""
    zh = "zh-hans"
    lines = ["   ", "😀😀🎉", "/start", "/help", "/settings", "/beam 99", "/beam x", "/why",
             "/good", "/reset", "/nonsense"]
    access = AccessPolicy(allowed=frozenset({CHAT}), admins=frozenset())
    async with bot_on_fake_telegram(responder(), access=access, rate_burst=50) as server:
        for line in lines:
            server.push_message(CHAT, line, language_code=zh)
        server.push_message(CHAT, None, sticker=STICKER_JSON, language_code=zh)
        server.push_message(666, "let me in", language_code=zh)  # not allowed: refused
        await server.wait_for_replies(len(lines) + 2)
        await server.wait_for(lambda: len(server.replies(666)) == 1)
    texts = [s.text or s.caption or "" for s in server.replies()]
    english = re.compile(r"[A-Za-z']+ [A-Za-z']+ [A-Za-z']+")  # three Latin words in a row
    assert [t for t in texts if not has_han(t) or english.search(t)] == []


async def test_anonymous_admins_and_people_writing_as_their_channel_are_answered() -> None:
    """A message sent on behalf of a chat comes from a stand-in bot account (`from.is_bot`),
    and the bot ignored it as another bot's: a group's anonymous admins and people writing as
    their channel got no answer. Now they are answered, each sending chat a conversation of
    its own (not one shared by everyone behind the stand-in account); other bots still get
    nothing."""
    generator = ScriptedGenerator()
    bot_responder = ChatResponder(
        fake_model(generator, context_turns=2), store=SettingsStore(":memory:")
    )
    bot = f"@{BOT_USERNAME}"
    group = {"chat_type": "supergroup"}
    admins = {**group, "sender_chat": {"id": -100, "type": "supergroup", "title": "chat"}}
    channel = {**group, "sender_chat": {"id": -1009, "type": "channel", "title": "a channel"}}
    async with bot_on_fake_telegram(bot_responder, rate_burst=50) as server:
        server.push_message(-100, f"{bot} I like tea", **admins)
        await server.wait_for_replies(1)
        server.push_message(-100, f"{bot} what now", **channel)
        await server.wait_for_replies(2)
        server.push_message(-100, f"{bot} and you", **admins)
        other = server.message(-100, f"{bot} beep", **group)
        other["from"] = {"id": 77, "is_bot": True, "first_name": "other bot"}
        server.push_update({"message": other})
        await server.wait_for_replies(3)
        await asyncio.sleep(0.2)
    inputs = [texts[0] for texts, _ in generator.calls]
    sep = generator.separator
    assert inputs == [
        "I like tea",
        "what now",  # the channel's conversation, not the admins'
        sep.join(["I like tea", reply_for("I like tea"), "and you"]),
    ]
    assert len(server.replies(-100)) == 3


async def test_an_admins_refused_setting_shows_the_remedy_in_private_only() -> None:
    """An admin's refused setting told the owner's remedy (which may name the server's
    directories) to whoever read the chat: in a group, everyone. The remedy is now told in
    the admin's private chat alone; the group reads the reason, the model by its name."""
    import dataclasses

    from nlp.decoding import DecodeOptions
    from nlp.decoding.options import OptionError

    directory = "/srv/models/chat-en/model"
    remedy = f"build one with `s2s index --model {directory} --corpus TRAINING-CORPUS`"

    class Unindexed(ScriptedGenerator):
        def check(self, options: DecodeOptions) -> None:
            if options.beam_size != 5:
                raise OptionError(f"{directory}: no retrieval index in the bundle", remedy)

    model = dataclasses.replace(fake_model(Unindexed()), directory=Path(directory))
    bot_responder = ChatResponder(model, store=SettingsStore(":memory:"),
                                  base_options=DecodeOptions())
    access = AccessPolicy(admins=frozenset({99}))
    group = {"chat_type": "supergroup", "user_id": 99}
    async with bot_on_fake_telegram(bot_responder, access=access) as server:
        server.push_message(-100, f"/beam@{BOT_USERNAME} 3", **group)
        server.push_message(99, "/beam 3")
        await server.wait_for_replies(2)
    in_group = server.replies(-100)[0].text or ""
    assert "no retrieval index" in in_group
    assert "/srv" not in in_group and "s2s" not in in_group
    assert remedy in (server.replies(99)[0].text or "")
