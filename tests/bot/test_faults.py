"""A misbehaving Bot API: the bot keeps running and answers every message at least once.

The fake server, like the real one, has no idempotency key: a send it processed but whose
answer the bot never got is retried and delivered twice (see bot/delivery.py). These tests
count those duplicates exactly rather than hide them.
"""

import asyncio
import logging

import pytest

from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SettingsStore
from tests.fakes.fake_generators import ScriptedGenerator, fake_model, reply_for
from tests.fakes.fake_telegram import FAST_TIMEOUTS, Fault, bot_on_fake_telegram


def responder() -> ChatResponder:
    return ChatResponder(
        fake_model(ScriptedGenerator()), store=SettingsStore(":memory:")
    )


async def test_send_faults_are_retried_until_each_message_is_answered_once() -> None:
    async with bot_on_fake_telegram(responder(), timeouts=FAST_TIMEOUTS) as server:
        server.inject(
            "sendMessage",
            Fault("http500"),
            Fault("retry_after", retry_after=1),
            Fault("malformed"),  # processed, but the answer is garbage: ambiguous
            Fault("slow", delay=1.5),  # processed, answered after the client's 1 s time-out
            Fault("http500"),
        )
        server.inject("sendChatAction", Fault("http500"), Fault("http500"))
        ids = {chat: server.push_message(chat, f"message from {chat}") for chat in range(1, 7)}
        # 6 replies, plus one duplicate for each ambiguous send (processed, then retried).
        await server.wait_for(lambda: len(server.replies()) == 6 + 2, timeout=20)
    repeated = 0
    for chat, message_id in ids.items():
        replies = server.replies(chat)
        assert {(r.reply_to, r.text) for r in replies} == {
            (message_id, reply_for(f"message from {chat}"))
        }
        repeated += len(replies) - 1
    assert repeated == 2  # at least once: only the two ambiguous sends arrived twice
    attempts = server.calls_of("sendMessage")
    assert [c.fault for c in attempts[:5]] == [
        "http500",
        "retry_after",
        "malformed",
        "slow",
        "http500",
    ]
    assert len(attempts) == 6 + 5  # every fault cost exactly one extra attempt


async def test_polling_survives_getupdates_faults_without_losing_or_repeating_updates() -> None:
    async with bot_on_fake_telegram(responder(), timeouts=FAST_TIMEOUTS) as server:
        first = server.push_message(1, "before the storm")
        server.inject(
            "getUpdates",
            Fault("http500"),
            Fault("malformed"),
            Fault("slow", delay=2.5),  # past the 1 s read time-out (+1 s long poll)
            Fault("retry_after", retry_after=1),
        )
        second = server.push_message(2, "after the storm")
        await server.wait_for(lambda: len(server.replies()) == 2, timeout=25)
    # One reply per message, none lost or repeated; the two chats may be answered in
    # either order (both messages can arrive in the same getUpdates batch).
    assert sorted((s.chat_id, s.reply_to) for s in server.replies()) == [(1, first), (2, second)]
    faults = [c.fault for c in server.calls_of("getUpdates") if c.fault]
    assert faults == ["http500", "malformed", "slow", "retry_after"]


async def test_a_getupdates_failure_is_one_warning_line_from_the_error_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with bot_on_fake_telegram(responder(), timeouts=FAST_TIMEOUTS) as server:
        server.inject("getUpdates", Fault("http500"))
        server.push_message(1, "hi")
        await server.wait_for(lambda: len(server.replies()) == 1, timeout=20)
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.getMessage()) for r in problems] == [
        ("bot.handlers", "Bot API network problem: NetworkError: Internal Server Error")
    ]
    assert problems[0].exc_info is None


async def test_a_slow_answer_within_the_time_out_is_one_delivery() -> None:
    """A send slowed by a loaded machine (here 1.5 s) is not retried under the tests' default
    time-outs, so end-to-end tests count exactly one reply a message."""
    async with bot_on_fake_telegram(responder()) as server:
        server.inject("sendMessage", Fault("slow", delay=1.5))
        message_id = server.push_message(1, "hello")
        await server.wait_for(lambda: len(server.replies()) >= 1, timeout=20)
        await asyncio.sleep(0.5)  # room for a retry's duplicate to arrive, were there one
    assert [(r.reply_to, r.text) for r in server.replies()] == [(message_id, reply_for("hello"))]
    assert len(server.calls_of("sendMessage")) == 1


async def test_a_button_press_too_old_to_answer_gets_no_apology_in_the_chat() -> None:
    """A press of an old message's button after downtime: Telegram refuses the answer ("query
    is too old"), and the error handler posted its apology under that old message. Nobody
    waits for it: it is logged, nothing is sent, and the chat is answered as before."""
    async with bot_on_fake_telegram(responder(), timeouts=FAST_TIMEOUTS) as server:
        server.inject("answerCallbackQuery", Fault("too_old"))
        old = server.message(5, "an old reply with a button")
        query = {"id": "q1", "from": old["from"], "chat_instance": "ci", "data": "x",
                 "message": old}
        server.push_update({"callback_query": query})
        await server.wait_for(lambda: bool(server.calls_of("answerCallbackQuery")))
        asked = server.push_message(5, "hello")
        await server.wait_for(lambda: len(server.replies()) >= 1)
        await asyncio.sleep(0.3)
    assert [(r.reply_to, r.text) for r in server.replies()] == [(asked, reply_for("hello"))]
