"""Webhook mode: updates POSTed with the secret token are answered, others get 403."""

import httpx

from benchmarks.common import free_port
from bot.config import WebhookConfig
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SettingsStore
from tests.fakes.fake_generators import fake_model, reply_for
from tests.fakes.fake_telegram import bot_on_fake_telegram

SECRET = "webhook-secret_123"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def test_only_requests_with_the_secret_token_are_accepted() -> None:
    port = free_port()
    hook = WebhookConfig(f"http://127.0.0.1:{port}/tg/updates", "127.0.0.1", port, SECRET)
    responder = ChatResponder(fake_model(), store=SettingsStore(":memory:"))
    async with (
        bot_on_fake_telegram(responder, webhook=hook) as server,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        (set_webhook,) = server.calls_of("setWebhook")
        assert set_webhook.params["url"] == hook.url
        assert set_webhook.params["secret_token"] == SECRET

        def update(text: str) -> dict:
            return {"update_id": hash(text) % 10_000, "message": server.message(7, text)}

        forged = await client.post("/tg/updates", json=update("forged"), headers={HEADER: "no"})
        missing = await client.post("/tg/updates", json=update("no header"))
        genuine = update("genuine")
        accepted = await client.post("/tg/updates", json=genuine, headers={HEADER: SECRET})
        again = await client.post("/tg/updates", json=genuine, headers={HEADER: SECRET})
        await server.wait_for_replies(1)
    assert (forged.status_code, missing.status_code) == (403, 403)
    assert (accepted.status_code, again.status_code) == (200, 200)
    assert [s.text for s in server.replies()] == [reply_for("genuine")]  # redelivery: once
    assert not server.calls_of("getUpdates")


async def test_updates_the_bot_api_posts_to_the_webhook_are_answered_in_order() -> None:
    port = free_port()
    hook = WebhookConfig(f"http://127.0.0.1:{port}/tg/updates", "127.0.0.1", port, SECRET)
    responder = ChatResponder(fake_model(), store=SettingsStore(":memory:"))
    texts = [f"message {n}" for n in range(6)]
    async with bot_on_fake_telegram(responder, webhook=hook, rate_burst=len(texts)) as server:
        for text in texts:
            server.push_message(7, text)  # the fake posts it to the webhook, with the secret
        await server.wait_for_replies(len(texts))
    assert [s.text for s in server.replies(7)] == [reply_for(t) for t in texts]
    assert not server.calls_of("getUpdates")


async def test_a_busy_webhook_port_is_the_error_the_command_reports() -> None:
    """The port taken: PTB registered the webhook, then raised OSError, and shutting down a
    still running application replaced it with "This Application is still running!", which
    `s2s bot` does not catch (a traceback, the responder never closed)."""
    import socket

    import pytest

    from bot.app import build_application
    from bot.service import running
    from tests.fakes.fake_telegram import TEST_TOKEN, FakeTelegram, fast_config

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    responder = ChatResponder(fake_model(), store=SettingsStore(":memory:"))
    closed: list[bool] = []
    real_close = responder.aclose

    async def close() -> None:
        closed.append(True)
        await real_close()

    responder.aclose = close  # type: ignore[method-assign]
    try:
        async with FakeTelegram(TEST_TOKEN) as server:
            hook = WebhookConfig(f"http://127.0.0.1:{port}/tg", "127.0.0.1", port, SECRET)
            config = fast_config(server.base_url, webhook=hook)
            with pytest.raises(OSError):
                async with running(build_application(config, responder), config):
                    pass
    finally:
        busy.close()
    assert closed
