"""The bot and the terminal chat with a real trained model (the tiny session bundle)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SettingsStore
from nlp.generation.loading import load_model
from tests.conftest import REPO
from tests.fakes.fake_telegram import bot_on_fake_telegram

pytestmark = pytest.mark.slow  # a trained model, and the terminal chat in a process


async def test_real_model_answers_over_telegram_and_draws_its_attention(tiny_bundle: Path) -> None:
    model = load_model(tiny_bundle.parent)  # a run directory works as well as its model/
    responder = ChatResponder(model, store=SettingsStore(":memory:"))
    responder.warm_up()
    async with bot_on_fake_telegram(responder, rate_burst=50) as server:
        ids = [server.push_message(77, text) for text in ("how are you?", "/greedy", "/why")]
        sent = await server.wait_for_replies(3)
    assert [s.reply_to for s in sent] == ids
    assert sent[0].text and sent[0].text.strip()  # a model reply, whatever its quality
    assert sent[2].photo is not None  # the attention heatmap of the last reply


def test_terminal_chat_with_a_real_model(tiny_bundle: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "s2s.cli",
            "chat",
            "--model",
            str(tiny_bundle),
            "--state",
            str(tmp_path / "chat.sqlite"),
            "--why-dir",
            str(tmp_path),
        ],
        input="good morning!\n/beam 2\nwhat are you doing?\n/why\n",
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    replies = [line for line in result.stdout.splitlines() if line.startswith("bot> ")]
    assert len(replies) >= 4
    assert list(tmp_path.glob("*.png"))  # /why saved a picture
