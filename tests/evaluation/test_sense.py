"""Blinded rating sheets and the rates they give (`nlp.evaluation.sense`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp.evaluation.sense import (
    BOT,
    PEOPLE,
    RatingError,
    Turn,
    context_before,
    score_sheet,
    turns_of,
    write_sheet,
)


def _turns() -> list[Turn]:
    posts = ["how are you?", "where do you live?", "do you like tea?"]
    contexts = [(), ("hi",), ("hello", "hey")]
    references = ["fine, and you?", "in a small town.", "yes, green tea."]
    bot = [("good, thanks.", "retrieved"), ("i am a the.", "generated"), ("ok.", "retrieved")]
    return turns_of(posts, contexts, references, {"bot": bot})


# each reply of `_turns` as a rater might rate it: (sensible, specific)
MARKS = {
    "fine, and you?": (1, 1),
    "in a small town.": (1, 1),
    "yes, green tea.": (1, 0),
    "good, thanks.": (1, 1),
    "i am a the.": (0, 0),
    "ok.": (1, 0),
}


def test_the_sheet_is_blind_and_the_key_apart(tmp_path: Path) -> None:
    files = write_sheet(_turns(), tmp_path / "sheet", tmp_path / "key.json", 1, {"model": "m"})
    rows = [json.loads(line) for line in (files.folder / "sheet.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and len({row["id"] for row in rows}) == 6
    assert all(set(row) == {"id", "context", "post", "reply"} for row in rows)
    text = "".join(p.read_text() for p in files.folder.iterdir() if p.name != "INSTRUCTIONS.md")
    for word in ("retrieved", "generated", PEOPLE, "model"):
        assert word not in text
    key = json.loads(files.key.read_text())
    assert {row["id"] for row in rows} == set(key["rows"])
    assert sorted(s for r in key["rows"].values() for s in r["sources"]) == [
        "bot generated",
        "bot retrieved",
        "bot retrieved",
        PEOPLE,
        PEOPLE,
        PEOPLE,
    ]
    # one post's two replies are not kept side by side in the order written
    assert [row["reply"] for row in rows] != [t.reply for t in _turns()]
    with pytest.raises(ValueError, match="must not be inside"):
        write_sheet(_turns(), tmp_path / "sheet", tmp_path / "sheet" / "key.json", 1, {})


def _rate(files_folder: Path, key: Path, by_reply: dict[str, tuple[int, int]]) -> Path:
    rows = [json.loads(line) for line in (files_folder / "sheet.jsonl").read_text().splitlines()]
    lines = [
        f"{row['id']}\t{by_reply[row['reply']][0]}\t{by_reply[row['reply']][1]}" for row in rows
    ]
    path = files_folder / "ratings.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rates_per_source_by_hand(tmp_path: Path) -> None:
    files = write_sheet(_turns(), tmp_path / "sheet", tmp_path / "key.json", 2, {})
    ratings = _rate(
        files.folder,
        files.key,
        MARKS,
    )
    report = score_sheet(files.key, ratings)
    people, bot = report.sources[PEOPLE], report.sources[BOT]
    assert (people.sensible, people.specific) == (1.0, pytest.approx(2 / 3))
    assert people.ssa == pytest.approx(5 / 6)
    assert (bot.replies, bot.sensible, bot.specific) == (
        3,
        pytest.approx(2 / 3),
        pytest.approx(1 / 3),
    )
    assert bot.ssa == pytest.approx(0.5)
    retrieved, generated = report.sources["bot retrieved"], report.sources["bot generated"]
    assert (retrieved.replies, retrieved.ssa, retrieved.share) == (2, 0.75, pytest.approx(2 / 3))
    assert (generated.ssa, generated.share) == (0.0, pytest.approx(1 / 3))
    assert report.posts == 3 and report.control_ok  # people 0.83 is in the normal range


def test_bad_ratings_name_the_line(tmp_path: Path) -> None:
    files = write_sheet(_turns(), tmp_path / "sheet", tmp_path / "key.json", 3, {})
    ratings = files.folder / "ratings.tsv"
    ids = [line.split("\t")[0] for line in ratings.read_text().splitlines()]
    ratings.write_text("".join(f"{i}\t1\t1\n" for i in ids[:-1]))
    with pytest.raises(RatingError, match="1 ids of the key not rated"):
        score_sheet(files.key, ratings)
    ratings.write_text("".join(f"{i}\t0\t1\n" for i in ids))
    with pytest.raises(RatingError, match=r"ratings.tsv:1: .* specific but not sensible"):
        score_sheet(files.key, ratings)
    ratings.write_text(f"{ids[0]}\tyes\t1\n")
    with pytest.raises(RatingError, match=r"ratings.tsv:1:"):
        score_sheet(files.key, ratings)


def test_context_is_the_earlier_posts_of_the_conversation() -> None:
    groups = ["a", "a", "a", "b", "b", ""]
    sources = ["t1", "t2", "t3", "u1", "u2", "alone"]
    assert context_before(groups, sources, 2, 3) == ("t1", "t2")
    assert context_before(groups, sources, 2, 1) == ("t2",)
    assert context_before(groups, sources, 3, 3) == ()
    assert context_before(groups, sources, 4, 3) == ("u1",)
    assert context_before(groups, sources, 5, 3) == ()


def test_configurations_share_the_rows_of_replies_they_both_sent(tmp_path: Path) -> None:
    turns = turns_of(
        ["how are you?", "do you like tea?"],
        [(), ()],
        ["fine.", "yes, green tea."],
        {
            "a": [("fine.", "retrieved"), ("no idea what tea is.", "generated")],
            "b": [("good, thanks.", "retrieved"), ("no idea what tea is.", "generated")],
        },
    )
    # post 0: the person's reply is also a's; post 1: a and b sent the same text
    assert [t.sources for t in turns] == [
        (PEOPLE, "a retrieved"),
        ("b retrieved",),
        (PEOPLE,),
        ("a generated", "b generated"),
    ]
    files = write_sheet(turns, tmp_path / "sheet", tmp_path / "key.json", 5, {})
    ratings = _rate(
        files.folder,
        files.key,
        {
            "fine.": (1, 0),
            "good, thanks.": (1, 1),
            "yes, green tea.": (1, 1),
            "no idea what tea is.": (0, 0),
        },
    )
    report = score_sheet(files.key, ratings)
    assert report.sources["a"].ssa == pytest.approx(0.25)
    assert report.sources["b"].ssa == pytest.approx(0.5)
    assert report.sources["b generated"].replies == 1
    assert report.sources["b generated"].share == 0.5
    assert report.sources[PEOPLE].ssa == pytest.approx(0.75)
    with pytest.raises(ValueError, match="without spaces"):
        turns_of(["x"], [()], ["y"], {"my config": [("z", "retrieved")]})


def test_parts_of_a_sheet_rated_apart_score_as_one(tmp_path: Path) -> None:
    turns = _turns()
    halves = [[t for t in turns if t.post_index % 2 == part] for part in (0, 1)]
    files = [
        write_sheet(half, tmp_path / f"p{n}", tmp_path / f"k{n}.json", n, {})
        for n, half in enumerate(halves)
    ]
    ratings = [_rate(f.folder, f.key, MARKS) for f in files]
    report = score_sheet([f.key for f in files], ratings)
    whole = write_sheet(turns, tmp_path / "all", tmp_path / "all.json", 9, {})
    assert (
        report.as_dict() == score_sheet(whole.key, _rate(whole.folder, whole.key, MARKS)).as_dict()
    )
    assert report.posts == 3
    with pytest.raises(RatingError, match="2 keys but 1 ratings"):
        score_sheet([f.key for f in files], ratings[:1])


def test_a_pool_rates_every_candidate_and_its_best_a_post_by_hand(tmp_path: Path) -> None:
    """With the candidates a ranker chose among rated beside its pick, the pool's mean is a
    random pick's and its best a post the best pick's; a candidate the bot also sent is rated
    once, for both."""
    posts = ["how are you?", "do you like tea?"]
    bot = [("ok.", "retrieved"), ("i am a the.", "retrieved")]
    pools = {"pool": [[("ok.", "retrieved"), ("good, thanks.", "retrieved")],
                      [("i am a the.", "retrieved"), ("yes, green tea.", "retrieved")]]}
    turns = turns_of(posts, [(), ()], ["fine, and you?", "in a small town."], {"bot": bot}, pools)
    assert len(turns) == 6  # two people's, four candidates (the bot's picks among them)
    files = write_sheet(turns, tmp_path / "sheet", tmp_path / "key.json", 4, {})
    report = score_sheet(files.key, _rate(files.folder, files.key, MARKS))
    bot_rates, pool = report.sources[BOT], report.sources["pool"]
    assert (bot_rates.ssa, bot_rates.best_ssa) == (0.25, 0.25)  # ok. (1, 0); nonsense (0, 0)
    assert (pool.replies, pool.sensible, pool.ssa) == (4, 0.75, 0.5)
    # best a post: "good, thanks." (1, 1) and "yes, green tea." (1, 0)
    assert (pool.best_sensible, pool.best_ssa) == (1.0, 0.75)
    with pytest.raises(ValueError, match="distinct names"):
        turns_of(posts, [(), ()], ["a", "b"], {"pool": bot}, pools)
