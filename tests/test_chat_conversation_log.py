"""Opt-in conversation logs: format, ratings, anonymised chats, and loadable as a corpus."""

import json
from pathlib import Path

from nlp.chat.conversation_log import ConversationLog
from nlp.chat.fake_generator import fake_model, reply_for
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SettingsStore
from nlp.corpus.readers import read_pairs
from nlp.corpus.records import ReadReport


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


async def test_pairs_ratings_and_the_rejected_file(tmp_path: Path) -> None:
    path = tmp_path / "talk.jsonl"
    log = ConversationLog(path, salt="pepper", clock=lambda: 0.0)
    responder = ChatResponder(
        fake_model(), store=SettingsStore(":memory:"), conversation_log=log, max_wait=0.001
    )
    await responder.respond("11", "first message")
    assert "Thanks, noted" in (await responder.respond("11", "/good")).text
    assert "no new reply" in (await responder.respond("11", "/good")).text
    await responder.respond("11", "second message")
    assert "do better" in (await responder.respond("11", "/bad")).text
    await responder.respond("22", "unrated message")
    await responder.respond("22", "settles the previous one")
    await responder.aclose()  # settles the rest

    kept = lines(path)
    assert [(r["source"], r["rating"]) for r in kept] == [
        ("first message", "good"),
        ("unrated message", None),
        ("settles the previous one", None),
    ]
    assert kept[0]["target"] == reply_for("first message")
    assert kept[0]["time"] == "1970-01-01T00:00:00+00:00"
    assert kept[0]["chat"] == log.chat_hash("11") != log.chat_hash("22")
    assert "11" not in json.dumps(kept[0]["chat"]) and len(kept[0]["chat"]) == 64
    rejected = lines(tmp_path / "talk.rejected.jsonl")
    assert [(r["source"], r["rating"]) for r in rejected] == [("second message", "bad")]


async def test_the_log_loads_as_a_corpus_with_nothing_skipped(tmp_path: Path) -> None:
    path = tmp_path / "talk.jsonl"
    log = ConversationLog(path, salt="s")
    for i in range(3):
        log.record("1", f"question {i}", f"answer {i}", [])
    log.rate("1", "good")
    log.close()
    report = ReadReport()
    pairs = list(read_pairs(path, "jsonl", report=report))
    assert [(p.source, p.target) for p in pairs] == [
        (f"question {i}", f"answer {i}") for i in range(3)
    ]
    assert not report.skipped
