"""Conversation logs: whole conversations with ratings, anonymised chats, and read back as a
corpus whose targets a person wrote or rated /good."""

import io
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from nlp.chat.conversation_log import ConversationLog
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SettingsStore
from nlp.corpus.readers import detect_format, read_pairs
from nlp.corpus.readers.conversation_log import NOT_GOOD, UNRATED
from nlp.corpus.readers.turns import TOO_FEW_TURNS
from nlp.corpus.records import ReadReport
from tests.conftest import tiny_overrides
from tests.fakes.fake_generators import (
    ScriptedGenerator,
    default_candidates,
    fake_model,
    reply_for,
)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


async def test_turns_speakers_ratings_and_anonymised_chats(tmp_path: Path) -> None:
    path = tmp_path / "talk.jsonl"
    log = ConversationLog(path, salt="pepper", clock=lambda: 0.0)
    responder = ChatResponder(
        fake_model(), store=SettingsStore(":memory:"), conversation_log=log
    )
    await responder.respond("11", "first message")
    assert "Thanks, noted" in (await responder.respond("11", "/good")).text
    assert "no new reply" in (await responder.respond("11", "/good")).text
    await responder.respond("11", "second message")
    assert "do better" in (await responder.respond("11", "/bad")).text
    await responder.respond("11", "/reset")
    await responder.respond("11", "after the reset")
    await responder.respond("22", "another chat")
    await responder.aclose()

    records = lines(path)
    said = [(r["turn"], r.get("speaker"), r.get("text"), r.get("rating")) for r in records]
    assert said[:6] == [
        (0, "user", "first message", None),
        (1, "bot", reply_for("first message"), None),
        (1, None, None, "good"),
        (2, "user", "second message", None),
        (3, "bot", reply_for("second message"), None),
        (3, None, None, "bad"),
    ]
    first, after_reset, other = records[0], records[6], records[8]
    assert after_reset["turn"] == 0 and after_reset["conversation"] != first["conversation"]
    assert first["chat"] == log.chat_hash("11") != other["chat"] == log.chat_hash("22")
    assert "11" not in first["chat"] and len(first["chat"]) == 64
    assert first["time"] == "1970-01-01T00:00:00+00:00"


async def test_a_rating_after_an_unanswered_message_rates_nothing(tmp_path: Path) -> None:
    # the message is logged before its reply is chosen: with no reply ("no words for that
    # one"), /good rated the previous reply, and the reader made it the new message's target
    path = tmp_path / "talk.jsonl"
    silent = ScriptedGenerator(candidates=lambda m: [] if m == "asdf qwer" else
                               default_candidates(m))
    responder = ChatResponder(fake_model(silent), store=SettingsStore(":memory:"),
                              conversation_log=ConversationLog(path, salt="s"))
    await responder.respond("1", "how are you")
    await responder.respond("1", "asdf qwer")
    assert "no new reply" in (await responder.respond("1", "/good")).text
    await responder.aclose()
    assert not [r for r in lines(path) if "rating" in r]
    assert [(p.source, p.target) for p in read_pairs(path, report=ReadReport())] == [
        (reply_for("how are you"), "asdf qwer")]


async def test_the_log_and_the_salt_are_private(tmp_path: Path) -> None:
    # with the usual umask both were world-readable (0644, directories 0755), and with the
    # salt readable a hashed Telegram id is a brute-force away
    from nlp.chat.setup import make_responder
    from nlp.decoding import DecodeOptions

    log, state = tmp_path / "logs" / "chats" / "talk.jsonl", tmp_path / "state" / "s.sqlite"
    umask = os.umask(0o022)
    try:
        responder = make_responder(fake_model(), DecodeOptions(), state=state, log_path=log,
                                   warm_up=False)
        await responder.respond("1", "hello")
        files = [log, state, *state.parent.glob("s.sqlite-*")]  # the WAL's, while open
        assert len(files) > 2 and {oct(stat.S_IMODE(f.stat().st_mode)) for f in files} == {
            "0o600"}
        await responder.aclose()
    finally:
        os.umask(umask)
    for directory in (log.parent, log.parent.parent, state.parent):
        assert oct(stat.S_IMODE(directory.stat().st_mode)) == "0o700"


def test_the_log_can_be_rotated_by_renaming_it(tmp_path: Path) -> None:
    # the file was opened once: after logrotate's rename (and create) every record went on
    # into the renamed file, and the new one stayed empty
    path = tmp_path / "talk.jsonl"
    log = ConversationLog(path, salt="s")
    log.user("1", "hi")
    path.rename(tmp_path / "talk.jsonl.1")
    path.touch()  # logrotate's `create`
    log.bot("1", "hello")
    (tmp_path / "talk.jsonl").rename(tmp_path / "talk.jsonl.2")  # and without `create`
    log.rate("1", "good")
    log.close()
    assert [r.get("text") for r in lines(tmp_path / "talk.jsonl.1")] == ["hi"]
    assert [r.get("text") for r in lines(tmp_path / "talk.jsonl.2")] == ["hello"]
    assert [r.get("rating") for r in lines(path)] == ["good"]
    # a piece that opens with a rating is still read as a log, under any name
    for name in ("talk.jsonl", "talk.jsonl.3"):
        piece = path.rename(tmp_path / name)
        assert detect_format(piece)[0] == "conversation-log"


def test_the_reader_takes_only_what_people_wrote_and_good_replies(tmp_path: Path) -> None:
    path = tmp_path / "talk.jsonl"
    log = ConversationLog(path, salt="s")
    log.user("1", "hi")
    log.bot("1", "stock line")  # unrated: never a target
    log.user("1", "tell me about cats")
    log.bot("1", "cats are great")
    log.rate("1", "good")
    log.user("2", "interleaved chat")  # another chat between the turns of chat 1
    log.bot("2", "bad reply")
    log.rate("2", "bad")
    log.user("1", "i agree")
    log.user("1", "and dogs?")  # the bot did not answer: the previous user turn is the source
    log.user("2", "that was wrong")
    log.user("3", "hello?")  # never answered: one turn, no pair
    log.close()
    report = ReadReport()
    pairs = list(read_pairs(path, "auto", report=report))
    assert [(p.source, p.target) for p in pairs] == [
        ("stock line", "tell me about cats"),
        ("tell me about cats", "cats are great"),
        ("cats are great", "i agree"),
        ("i agree", "and dogs?"),
        ("bad reply", "that was wrong"),
    ]
    # the replies never learned and the lone turn are counted, so the report adds up
    assert report.skipped == {UNRATED: 1, NOT_GOOD: 1, TOO_FEW_TURNS: 1}
    assert report.kept == 5
    with_context = list(read_pairs(path, "conversation-log", report=ReadReport(), context_turns=1))
    assert with_context[1].source.endswith("tell me about cats")
    assert with_context[1].source.startswith("stock line")
    # a log kept under any name (`--log-conversations chats.log`) is read as one: it was read
    # as plain JSONL, every record "missing field"
    renamed = path.rename(tmp_path / "chats.log")
    assert [(p.source, p.target) for p in read_pairs(renamed, "auto", report=ReadReport())] == [
        (p.source, p.target) for p in pairs]


def test_s2s_chat_logs_conversations_and_s2s_retrain_learns_from_them(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s2s.cli import main

    log = tmp_path / "talk.jsonl"
    said = [f"question number {i} about the weather" for i in range(8)]
    script = [line for i, text in enumerate(said) for line in (text, "/good" if i == 2 else "")]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(s for s in script if s) + "\n"))
    chat = ["chat", "--model", str(tiny_bundle), "--state", str(tmp_path / "s.sqlite"),
            "--log-conversations", str(log), "--sample", "1.0", "--min-length", "2",
            "--retrieve", "0"]  # the model's own replies: no indexed reply comes back in the log
    assert main(chat) == 0
    records = lines(log)
    bot = [r["text"] for r in records if r.get("speaker") == "bot"]
    pairs = [(p.source, p.target) for p in read_pairs(log, "auto", report=ReadReport())]
    assert [t for _, t in pairs] == [*said[1:3], bot[2], *said[3:]]  # one /good reply
    rated = [r for r in records if "rating" in r]
    assert len(rated) == 1 and rated[0]["turn"] == 5  # the third reply (turns 0, 1, ... 5)

    out = tmp_path / "retrained"
    sets = [arg for item in tiny_overrides(**{"train.valid_fraction": 0.5})
            for arg in ("--set", item)]
    assert main(["retrain", "--from", str(tiny_bundle), "--corpus", str(log),
                 "--out", str(out), "--quiet", *sets]) == 0
    # The new bundle comes from the old one, learned from the log's pairs (its validation
    # pairs are some of them) and moved its weights.
    from nlp.generation.bundle import load_bundle
    from nlp.training.run import VALID_FILE

    before, after = load_bundle(tiny_bundle), load_bundle(out / "model")
    assert Path(after.metadata["retrained_from"]).resolve() == before.path.resolve()
    held_out = [(p.source, p.target)
                for p in read_pairs(out / VALID_FILE, "auto", report=ReadReport())]
    assert held_out and set(held_out) <= set(pairs)
    old_weights, new_weights = before.model.get_weights(), after.model.get_weights()
    assert len(old_weights) == len(new_weights)
    assert any(not np.array_equal(a, b) for a, b in zip(old_weights, new_weights, strict=True))

    # Privacy: what people wrote to the bot never joins the retrieval index (retrieved replies
    # are shown verbatim to others): the retrained bundle keeps the old index as it was...
    from nlp.retrieval import INDEX_DIR

    def indexed(bundle: Path) -> list[str]:
        replies = (bundle / INDEX_DIR / "replies.jsonl").read_text("utf-8").splitlines()
        return [json.loads(line)["reply"] for line in replies]

    assert indexed(out / "model") == indexed(tiny_bundle)
    logged = {target for _, target in pairs}
    assert not logged & set(indexed(out / "model"))
    # ... and `s2s index` leaves the log out unless told to index it
    assert main(["index", "--model", str(out), "--corpus", str(log), "--quiet",
                 "--dual-encoder-minutes", "0"]) != 0
    assert indexed(out / "model") == indexed(tiny_bundle)
    assert main(["index", "--model", str(out), "--corpus", str(log), "--index-logs", "--quiet",
                 "--dual-encoder-minutes", "0"]) == 0
    # every logged pair but the retrained model's validation pairs (never indexed: a
    # validation post would retrieve its own reference)
    assert set(indexed(out / "model")) == {t for s, t in pairs if (s, t) not in held_out}
