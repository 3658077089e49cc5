"""`s2s chat`: the terminal loop over the same responder, and its command registration."""

import argparse
import dataclasses
import io
import json
from pathlib import Path

from nlp.chat import command
from nlp.chat.batcher import BatchLimits
from nlp.chat.messages import CHINESE
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SettingsStore
from nlp.chat.setup import batch_limits
from tests.fakes.fake_generators import fake_model, reply_for


def test_terminal_chat_answers_commands_and_messages(tmp_path: Path) -> None:
    store_path = tmp_path / "chat.sqlite"
    responder = ChatResponder(fake_model(), store=SettingsStore(store_path))
    lines = io.StringIO("hello\n/beam 2\n\n/why\n/quit\nnever read\n")
    out = io.StringIO()
    command.chat_loop(responder, lines, out, why_dir=tmp_path)
    text = out.getvalue()
    assert f"bot> {reply_for('hello')}" in text
    assert "beam size 2" in text
    assert "That message was empty" in text
    assert (tmp_path / "why-1.png").read_bytes().startswith(b"\x89PNG")
    assert "never read" not in text
    reopened = SettingsStore(store_path)  # the loop closed the responder and its store
    assert reopened.get(command.TERMINAL_CHAT).beam_size == 2


def test_a_why_picture_never_ends_the_chat_nor_replaces_an_earlier_one(tmp_path: Path) -> None:
    """A --why-dir that does not exist ended the session at the first /why
    (FileNotFoundError); and a new session wrote over the last one's why-1.png."""
    responder = ChatResponder(fake_model(), store=SettingsStore(":memory:"))
    out = io.StringIO()
    command.chat_loop(responder, io.StringIO("hello\n/why\nagain\n"), out,
                      why_dir=tmp_path / "missing")
    assert "picture not saved" in out.getvalue() and f"bot> {reply_for('again')}" in out.getvalue()
    (tmp_path / "why-1.png").write_bytes(b"earlier")
    responder = ChatResponder(fake_model(), store=SettingsStore(":memory:"))
    command.chat_loop(responder, io.StringIO("hello\n/why\n"), io.StringIO(), why_dir=tmp_path)
    assert (tmp_path / "why-1.png").read_bytes() == b"earlier"
    assert (tmp_path / "why-2.png").read_bytes().startswith(b"\x89PNG")


def test_the_terminal_speaks_the_models_main_language(tmp_path: Path) -> None:
    """A Chinese model that reads some English (its subtitles' names) answers /reset in
    Chinese: the terminal knows no user's language, so the model's main one decides."""
    model = dataclasses.replace(fake_model(), languages=("zh", "en"))
    responder = ChatResponder(model, store=SettingsStore(":memory:"))
    out = io.StringIO()
    command.chat_loop(responder, io.StringIO("/reset\n"), out, why_dir=tmp_path)
    assert out.getvalue() == f"bot> {CHINESE.reset}\n"


def test_end_of_input_ends_the_chat(tmp_path: Path) -> None:
    responder = ChatResponder(fake_model(), store=SettingsStore(":memory:"))
    out = io.StringIO()
    command.chat_loop(responder, io.StringIO("hi"), out, why_dir=tmp_path)
    assert out.getvalue() == f"bot> {reply_for('hi')}\n"


def test_chat_subcommand_registers_with_its_options(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser(prog="s2s")
    command.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "chat",
            "--model",
            str(tmp_path),
            "--context-turns",
            "2",
            "--state",
            str(tmp_path / "s.sqlite"),
        ]
    )
    assert args.func is command.run and args.context_turns == 2
    assert batch_limits(args) == BatchLimits()


def test_a_missing_model_is_a_clear_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    parser = argparse.ArgumentParser(prog="s2s")
    command.register(parser.add_subparsers())
    args = parser.parse_args(
        ["chat", "--model", str(tmp_path / "nope"), "--state", str(tmp_path / "s.sqlite")]
    )
    assert command.run(args) == 1
    err = capsys.readouterr().err
    assert "cannot start" in err and "nope" in err


def test_a_conversation_log_that_cannot_be_written_fails_at_start(tmp_path: Path) -> None:
    """A bad --log-conversations path passed start-up and the warm-up, then ended the chat at
    its first message (the bot apologised to every message)."""
    import pytest

    from nlp.chat.conversation_log import ConversationLog

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OSError):
        ConversationLog(blocker / "log.jsonl", salt="s")


def test_a_line_the_terminal_sent_in_another_encoding_is_refused_not_mangled(
    tmp_path: Path,
) -> None:
    # stdin decodes with surrogateescape: "café" in Latin-1 was read (and logged) as "caf",
    # GBK Chinese as no words at all
    from nlp.chat.conversation_log import ConversationLog

    log = tmp_path / "talk.jsonl"
    responder = ChatResponder(fake_model(), store=SettingsStore(":memory:"),
                              conversation_log=ConversationLog(log, salt="s"))
    sent = "café\n".encode("latin-1") + "你好\n".encode("gbk") + b"hello\n"
    lines = io.TextIOWrapper(io.BytesIO(sent), encoding="utf-8", errors="surrogateescape")
    out = io.StringIO()
    command.chat_loop(responder, lines, out, why_dir=tmp_path)
    said = out.getvalue().splitlines()
    assert len(said) == 3 and said[2] == f"bot> {reply_for('hello')}"
    assert all("not read: the line is not utf-8" in line and "locale" in line
               for line in said[:2])
    assert [json.loads(record)["text"] for record in log.read_text("utf-8").splitlines()] == [
        "hello", reply_for("hello")]
