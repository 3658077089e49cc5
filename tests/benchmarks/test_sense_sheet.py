"""The sense benchmark writes a blinded sheet of what the bot sends to sampled posts, with
the turns before each post, and scores it from a filled-in ratings file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks import sense_sheet

DIALOGUE = [
    ("hi, how are you?", "fine, thanks. and you?", "c1"),
    ("fine, thanks. and you?", "good. what are you doing today?", "c1"),
    ("good. what are you doing today?", "i am going to the park.", "c1"),
    ("do you like music?", "yes, i love jazz.", "c2"),
    ("yes, i love jazz.", "me too. who is your favourite?", "c2"),
]


def _main(monkeypatch: pytest.MonkeyPatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", ["sense_sheet", *argv])
    sense_sheet.main()


def test_make_then_score(
    tiny_bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corpus = tmp_path / "test.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"source": s, "target": t, "conversation": c}) + "\n" for s, t, c in DIALOGUE
        )
    )
    folder, key = tmp_path / "sheet", tmp_path / "keys" / "key.json"
    _main(
        monkeypatch,
        "make",
        "--model",
        str(tiny_bundle),
        "--corpus",
        str(corpus),
        "--posts",
        "4",
        "--seed",
        "0",
        "--out",
        str(folder),
        "--key",
        str(key),
    )
    rows = [json.loads(line) for line in (folder / "sheet.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    entries = json.loads(key.read_text())["rows"]
    people = [row for row in rows if "people" in entries[row["id"]]["sources"]]
    assert len(people) == 4
    by_post = {s: (t, c) for s, t, c in DIALOGUE}
    for row in people:  # the person's reply is the reference; the context its earlier turns
        assert row["reply"] == by_post[row["post"]][0]
        turns = [s for s, _, c in DIALOGUE if c == by_post[row["post"]][1]]
        assert row["context"] == turns[: turns.index(row["post"])][-3:]
    bot_sources = {s for row in rows for s in entries[row["id"]]["sources"]} - {"people"}
    assert bot_sources <= {"bot generated", "bot retrieved", "bot refined", "bot apology"}
    ratings = folder / "ratings.tsv"
    ratings.write_text(
        "".join(
            f"{row['id']}\t1\t{int(entries[row['id']]['sources'] == ['people'])}\n" for row in rows
        )
    )
    out = tmp_path / "rates.json"
    _main(monkeypatch, "score", "--key", str(key), "--ratings", str(ratings), "--json", str(out))
    rates = json.loads(out.read_text())
    assert rates["sources"]["people"]["ssa"] == 1.0
    assert rates["sources"]["bot"]["ssa"] == 0.5
    assert rates["posts"] == 4 and rates["control_ok"]
    assert "people" in capsys.readouterr().out


def test_a_configuration_names_its_bundle_and_decoding() -> None:
    assert sense_sheet._configuration("tuned={}") == ("tuned", ("", {}))
    assert sense_sheet._configuration('old@runs/ab={"beam_size": 3}') == (
        "old",
        ("runs/ab", {"beam_size": 3}),
    )
    for bad in ("tuned", "my config={}", "x=[1]"):
        with pytest.raises(SystemExit):
            sense_sheet._configuration(bad)


def test_a_context_joined_file_shows_the_message_apart_and_each_bot_reads_its_turns(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file converted with `--context-turns` holds each post's earlier turns in its source:
    the reader sees the message alone with the turns before it, and a bot reads as many
    earlier turns as its model was trained with (none for the tiny bundle)."""
    import nlp.chat.offline

    sep = " __eot__ "
    joined = [(sep.join(s for s, _, c2 in DIALOGUE[: i + 1] if c2 == c), t, c)
              for i, (s, t, c) in enumerate(DIALOGUE)]
    assert joined[2][0] == sep.join(s for s, _, _ in DIALOGUE[:3])
    corpus = tmp_path / "test.jsonl"
    corpus.write_text("".join(
        json.dumps({"source": s, "target": t, "conversation": c}) + "\n" for s, t, c in joined))
    read: list[str] = []
    choices = nlp.chat.offline.bot_choices

    def spy(generator: object, posts: list[str], *args: object, **kwargs: object) -> object:
        read.extend(posts)
        return choices(generator, posts, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(nlp.chat.offline, "bot_choices", spy)
    folder, key = tmp_path / "sheet", tmp_path / "key.json"
    _main(monkeypatch, "make", "--model", str(tiny_bundle), "--corpus", str(corpus),
          "--posts", "5", "--out", str(folder), "--key", str(key))
    rows = [json.loads(line) for line in (folder / "sheet.jsonl").read_text().splitlines()]
    posts = {s for s, _, _ in DIALOGUE}
    assert {row["post"] for row in rows} == posts
    third = next(row for row in rows if row["post"] == DIALOGUE[2][0])
    assert third["context"] == [DIALOGUE[0][0], DIALOGUE[1][0]]
    assert sorted(read) == sorted(posts)  # context_turns=0: the message alone


def test_bot_input_joins_as_many_earlier_turns_as_the_model_reads() -> None:
    groups = [c for _, _, c in DIALOGUE]
    sources = [s for s, _, _ in DIALOGUE]
    sep = " __eot__ "
    assert sense_sheet.bot_input(groups, sources, 2, 0, sep) == sources[2]
    assert sense_sheet.bot_input(groups, sources, 2, 1, sep) == sep.join(sources[1:3])
    assert sense_sheet.bot_input(groups, sources, 2, 5, sep) == sep.join(sources[:3])
    assert sense_sheet.bot_input(groups, sources, 3, 2, sep) == sources[3]  # a new conversation


def test_a_rated_pool_ranks_configurations_without_rating_again(
    tiny_bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`make --pool` puts every retrieved candidate on the sheet; `rank-pool` rates each
    configuration's picks from it: the configuration the sheet was made with gets the rates
    `score` gives it, and every pick among the same candidates is found rated."""
    corpus = tmp_path / "test.jsonl"
    corpus.write_text("".join(
        json.dumps({"source": s, "target": t, "conversation": c}) + "\n" for s, t, c in DIALOGUE))
    folder, key = tmp_path / "sheet", tmp_path / "keys" / "key.json"
    retrieved = '{"retrieve": 3, "generated": false, "rerank": "retrieval"}'
    _main(monkeypatch, "make", "--model", str(tiny_bundle), "--corpus", str(corpus),
          "--posts", "4", "--pool", "--decoding", f"bot={retrieved}",
          "--out", str(folder), "--key", str(key))
    rows = [json.loads(line) for line in (folder / "sheet.jsonl").read_text().splitlines()]
    entries = json.loads(key.read_text())["rows"]
    assert any("pool retrieved" in entries[row["id"]]["sources"] for row in rows)
    # a rater who finds the replies with a question mark sensible and specific
    ratings = folder / "ratings.tsv"
    ratings.write_text("".join(
        f"{row['id']}\t{int('?' in row['reply'])}\t{int('?' in row['reply'])}\n" for row in rows))
    scored = tmp_path / "rates.json"
    _main(monkeypatch, "score", "--key", str(key), "--ratings", str(ratings), "--json", str(scored))
    ranked = tmp_path / "ranked.json"
    _main(monkeypatch, "rank-pool", "--key", str(key), "--ratings", str(ratings),
          "--decoding", f"bot={retrieved}",
          "--decoding", 'encoder={"retrieve": 3, "generated": false, "rerank": "dual-encoder"}',
          "--json", str(ranked))
    bot = json.loads(scored.read_text())["sources"]["bot"]
    table = {row["configuration"]: row for row in json.loads(ranked.read_text())["configurations"]}
    assert (table["bot"]["posts"], table["bot"]["unrated"]) == (4, 0)
    assert table["bot"]["ssa"] == pytest.approx(bot["ssa"], abs=1e-3)
    assert table["encoder"]["unrated"] == 0  # the same candidates, another pick
