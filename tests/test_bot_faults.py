"""A misbehaving Bot API: the bot keeps running and answers every message exactly once.

"Exactly once" is counted as the fake server delivers: it deduplicates sends by (chat,
replied-to message), as a server that processed a request whose answer was lost would have to
(see bot/delivery.py for what that means against the real Telegram API).
"""

from fake_telegram import Fault, bot_on_fake_telegram
from nlp.chat.fake_generator import ScriptedGenerator, fake_model, reply_for
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SettingsStore


def responder() -> ChatResponder:
    return ChatResponder(
        fake_model(ScriptedGenerator()), store=SettingsStore(":memory:"), max_wait=0.005
    )


async def test_send_faults_are_retried_until_each_message_is_answered_once() -> None:
    async with bot_on_fake_telegram(responder()) as server:
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
        await server.wait_for(lambda: len(server.replies()) == 6, timeout=20)
    for chat, message_id in ids.items():
        (reply,) = server.replies(chat)
        assert (reply.reply_to, reply.text) == (message_id, reply_for(f"message from {chat}"))
    attempts = server.calls_of("sendMessage")
    assert [c.fault for c in attempts[:5]] == [
        "http500",
        "retry_after",
        "malformed",
        "slow",
        "http500",
    ]
    assert len(attempts) == 6 + 5  # every fault cost exactly one extra attempt
    assert server.duplicates_suppressed == 2  # the retries of the two ambiguous sends


async def test_polling_survives_getupdates_faults_without_losing_or_repeating_updates() -> None:
    async with bot_on_fake_telegram(responder()) as server:
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
    assert server.duplicates_suppressed == 0
