"""Bot building blocks without a network: config and token, redaction, rate limit, access."""

import argparse
import asyncio
import logging
from pathlib import Path

import pytest

from bot import command
from bot.access import AccessPolicy
from bot.config import (
    BotConfig,
    BotConfigError,
    config_from_args,
    normalize_api_base,
    parse_ids,
    read_token,
)
from bot.handlers import Admission, ChatQueues
from bot.redaction import REDACTED, install_redaction
from nlp.chat.settings import SettingsStore
from nlp.util.ratelimit import ChatRateLimiter, Verdict

TOKEN = "123456:TEST-token-secret-abcdefghij"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="s2s")
    command.register(parser.add_subparsers())
    return parser.parse_args(["bot", "--model", "m", *argv])


def test_token_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    assert read_token(None, {"TELEGRAM_BOT_TOKEN": f" {TOKEN}\n"}) == TOKEN
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert read_token(token_file, {}) == TOKEN


@pytest.mark.parametrize(
    "environ", [{}, {"TELEGRAM_BOT_TOKEN": "   "}, {"TELEGRAM_BOT_TOKEN": "a b:c"}]
)
def test_missing_or_malformed_tokens_are_reported_without_echoing_them(environ: dict) -> None:
    with pytest.raises(BotConfigError) as error:
        read_token(None, environ)
    assert "a b" not in str(error.value)


def test_unreadable_token_file(tmp_path: Path) -> None:
    with pytest.raises(BotConfigError, match="cannot read the token file"):
        read_token(tmp_path / "missing", {})


def test_config_from_flags_and_environment() -> None:
    args = parse(
        "--api-base-url",
        "http://127.0.0.1:8081/bot/",
        "--allow",
        "1,2",
        "--allow",
        "-100",
        "--admin",
        "9",
        "--webhook-url",
        "https://example.org/hook/path",
    )
    config = config_from_args(
        args, {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": "s3cr3t_-"}
    )
    assert config.api_base_url == "http://127.0.0.1:8081"
    assert config.bot_api_url == "http://127.0.0.1:8081/bot"
    assert config.access == AccessPolicy(frozenset({1, 2, -100}), frozenset({9}))
    assert config.webhook is not None and config.webhook.path == "hook/path"
    assert config.webhook.secret == "s3cr3t_-" and TOKEN in config.secrets
    assert TOKEN not in repr(config) and "s3cr3t" not in repr(config)
    polling = config_from_args(
        parse(), {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": "http://127.0.0.1:1"}
    )
    assert polling.webhook is None and polling.access.allowed is None
    assert polling.api_base_url == "http://127.0.0.1:1"


def test_the_help_s_form_of_a_list_of_negative_group_ids_parses() -> None:
    # argparse takes "-100123,-100456" after a space for an option, hence the '=' form
    subparsers = argparse.ArgumentParser(prog="s2s").add_subparsers()
    command.register(subparsers)
    assert "--allow=-100123,-100456" in " ".join(subparsers.choices["bot"].format_help().split())
    config = config_from_args(parse("--allow=-100123,-100456"), {"TELEGRAM_BOT_TOKEN": TOKEN})
    assert config.access.allowed == frozenset({-100123, -100456})


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--webhook-url", "http://example.org/x"], {}, "must be https"),
        (["--webhook-url", "https://e.org/x"], {"TELEGRAM_WEBHOOK_SECRET": "bad secret"}, "1-256"),
        (["--allow", "12,abc"], {}, "not a chat or user id"),
        (["--api-base-url", "localhost:8081"], {}, "^--api-base-url must be"),
        ([], {"TELEGRAM_API_BASE_URL": "localhost:8081"}, "^TELEGRAM_API_BASE_URL must be"),
        (["--allow", ""], {}, "--allow names no ids"),  # not "everyone may chat"
        (["--allow", ",", "--admin", "7"], {}, "--allow names no ids"),
        (["--rate-burst", "0"], {}, "--rate-burst"),
        (["--port", "9000"], {}, "need --webhook-url"),  # not silently polling instead
        (["--listen", "0.0.0.0"], {}, "need --webhook-url"),
    ],
)
def test_bad_flags_are_config_errors(argv: list[str], environ: dict, message: str) -> None:
    with pytest.raises(BotConfigError, match=message):
        config_from_args(parse(*argv), {"TELEGRAM_BOT_TOKEN": TOKEN, **environ})


def test_run_without_a_token_exits_2_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert command.run_with_loader(parse(), lambda: pytest.fail("must not load")) == 2  # type: ignore[arg-type,return-value]
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err


def test_api_base_url_must_be_http() -> None:
    with pytest.raises(BotConfigError):
        normalize_api_base("ftp://x", "--api-base-url")
    assert parse_ids(None) == frozenset()


def test_redaction_covers_messages_arguments_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.redaction")
    root = logging.getLogger()
    installed = install_redaction([TOKEN], root)
    try:
        with caplog.at_level(logging.INFO):
            logger.info("POST https://api.telegram.org/bot%s/getMe", TOKEN)
            try:
                raise RuntimeError(f"boom at /bot{TOKEN}/sendMessage")
            except RuntimeError:
                logger.exception("failed")
            logger.warning("the secret half alone: %s", TOKEN.split(":")[1])
        handler = root.handlers[0] if root.handlers else caplog.handler
        text = "\n".join(handler.format(r) for r in caplog.records)
        assert TOKEN not in text and TOKEN.split(":")[1] not in text
        assert text.count(REDACTED) >= 3
        assert logging.getLogger("httpx").level == logging.WARNING
    finally:
        for handler in root.handlers:
            handler.removeFilter(installed)


def test_rate_limiter_tells_once_per_run_of_refusals() -> None:
    now = 0.0
    limiter = ChatRateLimiter(burst=2, per_second=1.0, clock=lambda: now)
    verdicts = [limiter.check(1) for _ in range(5)]
    assert verdicts == [
        Verdict.ALLOW,
        Verdict.ALLOW,
        Verdict.REFUSE_AND_TELL,
        Verdict.REFUSE_SILENTLY,
        Verdict.REFUSE_SILENTLY,
    ]
    assert limiter.check(2) is Verdict.ALLOW  # other chats are not affected
    now = 1.0
    assert limiter.check(1) is Verdict.ALLOW
    assert limiter.check(1) is Verdict.REFUSE_AND_TELL  # a new run of refusals: told again


def test_access_policy() -> None:
    everyone = AccessPolicy()
    assert everyone.allows(5, 6) and not everyone.is_admin(6)
    private = AccessPolicy(frozenset({-100, 7}), frozenset({9}))
    assert private.allows(-100, 1)  # the whole group
    assert private.allows(3, 7)  # this person anywhere
    assert private.allows(3, 9) and private.is_admin(9)  # admins are always allowed
    assert not private.allows(3, 4) and not private.allows(3, None)


def test_the_settings_cache_is_bounded_and_evicted_chats_read_back_from_the_file() -> None:
    """Issue 37: the settings cache kept every chat (and, with members' own settings in
    groups, every member) ever seen; now it is bounded like the other per-chat state."""
    store = SettingsStore(":memory:", max_cached=3)
    for chat in range(10):
        store.update(str(chat), beam_size=1 + chat)
        store.get(str(chat))
    assert len(store._cache) <= 3
    assert [store.get(str(chat)).beam_size for chat in range(10)] == list(range(1, 11))
    assert store.get("never seen") == store.defaults and len(store._cache) <= 3


async def test_a_chats_queue_holds_max_waiting_then_one_notice_then_drops() -> None:
    queues = ChatQueues(max_waiting=2)
    release = asyncio.Event()
    order: list[int] = []

    async def handle(n: int, admission: Admission) -> None:
        async with queues.hold(1):
            order.append(n)
            await release.wait()

    admitted = []
    tasks = []
    for n in range(6):  # the first is answered, two wait, the fourth gets the notice
        admission = queues.admit(1)
        admitted.append(admission)
        if admission is not Admission.DROP:
            tasks.append(asyncio.create_task(handle(n, admission)))
        await asyncio.sleep(0)
    assert admitted == [Admission.ANSWER] * 3 + [Admission.NOTICE] + [Admission.DROP] * 2
    assert queues.admit(2) is Admission.ANSWER  # other chats are not affected
    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3]  # in arrival order
    assert queues.admit(1) is Admission.ANSWER  # drained: a new run, told again next time


def test_the_queue_bound_defaults_to_the_rate_burst() -> None:
    assert BotConfig(token="1:x", rate_burst=7).queue_bound == 7
    assert BotConfig(token="1:x", rate_burst=7, max_waiting=0).queue_bound == 0
