"""The bot as a process: no TensorFlow in the adapter, clean stop on signals, no token in logs."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import REPO as ROOT
from tests.fakes.fake_generators import reply_for
from tests.fakes.fake_telegram import TEST_TOKEN, FakeTelegram

pytestmark = pytest.mark.slow  # the bot in subprocesses

# The model's reply waits until the file argv[3] exists (the warm-up's "hello" does not):
# the test creates it only after sending the stop signal, so the reply is in flight when the
# signal arrives however slow the machine is (a fixed decode time could end first).
BOT_SCRIPT = """
import argparse, pathlib, sys, time
from bot.command import register, run_with_loader
from tests.fakes.fake_generators import ScriptedGenerator, default_candidates, fake_model
parser = argparse.ArgumentParser()
register(parser.add_subparsers())
args = parser.parse_args(["bot", "--model", "unused", "--state", sys.argv[1],
                          "--api-base-url", sys.argv[2]])
gate = pathlib.Path(sys.argv[3])
def candidates(message):
    while message != "hello" and not gate.exists():
        time.sleep(0.01)
    return default_candidates(message)
held = ScriptedGenerator(candidates=candidates)
sys.exit(run_with_loader(args, lambda: fake_model(held)))
"""


@contextlib.asynccontextmanager
async def running_bot(server: FakeTelegram, tmp_path: Path, gate: Path) -> AsyncIterator[Process]:
    """BOT_SCRIPT in a subprocess serving `server`, its stderr (the log) piped; killed on the
    way out if a failed test left it running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        BOT_SCRIPT,
        str(tmp_path / "state.sqlite"),
        server.base_url,
        str(gate),
        cwd=ROOT,
        env={**os.environ, "TELEGRAM_BOT_TOKEN": TEST_TOKEN},
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()


def test_the_adapter_and_the_responder_import_without_tensorflow() -> None:
    code = (
        "import sys, pkgutil, importlib, bot\n"
        "for m in pkgutil.iter_modules(bot.__path__): importlib.import_module('bot.' + m.name)\n"
        "import nlp.chat.command, nlp.chat.responder, tests.fakes.fake_generators\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_a_stop_signal_finishes_the_reply_in_flight(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    gate = tmp_path / "decode may finish"
    async with (
        FakeTelegram(TEST_TOKEN) as server,
        running_bot(server, tmp_path, gate) as process,
    ):
        message_id = server.push_message(3, "answer me before you go")
        await server.wait_for(lambda: bool(server.calls_of("sendChatAction")), timeout=30)
        process.send_signal(stop_signal)  # while the decode is held
        assert not server.replies()
        gate.touch()
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    log = stderr.decode()
    assert process.returncode == 0, log
    assert [(s.reply_to, s.text) for s in server.replies()] == [
        (message_id, reply_for("answer me before you go"))
    ]
    assert "finishing replies in flight" in log
    assert TEST_TOKEN not in log and TEST_TOKEN.split(":")[1] not in log


async def test_a_token_revoked_while_serving_stops_the_bot_with_status_1(tmp_path: Path) -> None:
    gate = tmp_path / "decode may finish"
    gate.touch()
    async with (
        FakeTelegram(TEST_TOKEN) as server,
        running_bot(server, tmp_path, gate) as process,
    ):
        server.push_message(3, "hello there")
        await server.wait_for(lambda: bool(server.replies()), timeout=30)
        server.token = "123456:revoked"  # every call is 401 Unauthorized from now on
        server.push_message(3, "are you there?")  # ends the long poll in progress
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
    log = stderr.decode()
    assert process.returncode == 1, log
    assert "Telegram refused the bot token" in log
