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
    check_key_apart,
    context_before,
    score_sheet,
    sheet_rows,
    write_sheet,
)


def _turns() -> list[Turn]:
    posts = ["how are you?", "where do you live?", "do you like tea?"]
    contexts = [(), ("hi",), ("hello", "hey")]
    references = ["fine, and you?", "in a small town.", "yes, green tea."]
    bot = [("good, thanks.", "retrieved"), ("i am a the.", "generated"), ("ok.", "retrieved")]
    return sheet_rows(posts, contexts, references, {"bot": bot})


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
    files = write_sheet(_turns(), tmp_path / "sheet", tmp_path / "key.json", {"model": "m"})
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


def _many_turns() -> list[Turn]:
    posts = [f"post {n}?" for n in range(20)]
    bot = [(f"bot reply {n}.", "retrieved") for n in range(20)]
    return sheet_rows(posts, [()] * 20, [f"person reply {n}." for n in range(20)], {"bot": bot})


def test_ids_and_order_are_not_drawn_from_anything_printed(tmp_path: Path) -> None:
    """The sampling seed is printed beside the figures: whoever has the sheet and the seed
    must not rebuild the key. The same rows written twice with the same meta (seed and all)
    get other ids and another order, and a row's place does not follow the rows given."""
    meta: dict[str, object] = {"seed": 1}
    written = []
    for n in range(2):
        files = write_sheet(_many_turns(), tmp_path / f"s{n}", tmp_path / f"k{n}.json", meta)
        lines = (files.folder / "sheet.jsonl").read_text().splitlines()
        written.append([(row["id"], row["reply"]) for row in map(json.loads, lines)])
    (first, second) = written
    assert {i for i, _ in first} != {i for i, _ in second}
    assert [reply for _, reply in first] != [reply for _, reply in second]
    given = [turn.reply for turn in _many_turns()]
    assert [reply for _, reply in first] != given
    # whose reply it is: not readable from the ids' order either
    by_id = [reply for _, reply in sorted(first)]
    assert by_id != given and by_id != [reply for _, reply in sorted(second)]


def test_the_key_is_refused_anywhere_under_the_folder_handed_over(tmp_path: Path) -> None:
    for key in (tmp_path / "sheet" / "key.json", tmp_path / "sheet" / "deep" / "key.json"):
        with pytest.raises(ValueError, match="must not be inside"):
            write_sheet(_turns(), tmp_path / "sheet", key, {})
    # a sheet in parts: the raters get the folder of the parts, the key beside a part is in it
    with pytest.raises(ValueError, match="must not be inside"):
        write_sheet(_turns(), tmp_path / "sheets" / "part1", tmp_path / "sheets" / "key.json",
                    {}, handed=tmp_path / "sheets")
    assert not (tmp_path / "sheets").exists()  # refused before writing anything
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "sheet", target_is_directory=True)
    with pytest.raises(ValueError, match="must not be inside"):
        check_key_apart(tmp_path / "link" / "key.json", tmp_path / "sheet")
    check_key_apart(tmp_path / "sheet-key.json", tmp_path / "sheet")  # a name alike is apart


def _rate(files_folder: Path, key: Path, by_reply: dict[str, tuple[int, int]]) -> Path:
    rows = [json.loads(line) for line in (files_folder / "sheet.jsonl").read_text().splitlines()]
    lines = [
        f"{row['id']}\t{by_reply[row['reply']][0]}\t{by_reply[row['reply']][1]}" for row in rows
    ]
    path = files_folder / "ratings.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rates_per_source_by_hand(tmp_path: Path) -> None:
    files = write_sheet(_turns(), tmp_path / "sheet", tmp_path / "key.json", {})
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
    assert report.posts == 3 and not report.control_ok  # people 0.83: below 0.85


def test_bad_ratings_name_the_line(tmp_path: Path) -> None:
    files = write_sheet(_turns(), tmp_path / "sheet", tmp_path / "key.json", {})
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
    # saved by a spreadsheet: a byte-order mark before the first id is not part of it
    ratings.write_text("".join(f"{i}\t1\t1\n" for i in ids), encoding="utf-8-sig")
    assert score_sheet(files.key, ratings).posts


SEP = " __eot__ "


def test_context_is_the_earlier_turns_of_the_conversation() -> None:
    # conversation a: t1 t2 t3 t4; b: u1 u2 u3; then a pair alone
    groups = ["a", "a", "a", "b", "b", ""]
    sources = ["t1", "t2", "t3", "u1", "u2", "alone"]
    targets = ["t2", "t3", "t4", "u2", "u3", "reply"]
    assert context_before(groups, sources, targets, 2, 3, SEP) == ("t1", "t2")
    assert context_before(groups, sources, targets, 2, 1, SEP) == ("t2",)
    assert context_before(groups, sources, targets, 2, 0, SEP) == ()
    assert context_before(groups, sources, targets, 3, 3, SEP) == ()
    assert context_before(groups, sources, targets, 4, 3, SEP) == ("u1",)
    assert context_before(groups, sources, targets, 5, 3, SEP) == ()


def test_a_pair_missing_from_inside_a_conversation_cuts_its_context_there() -> None:
    """Turns t1..t5 give pairs (t1, t2) .. (t4, t5); the file lacks (t2, t3), as valid.jsonl
    or --exclude-corpus leave it. Before t3 stands t2, which the file does not hold: t3 is
    shown with nothing before it, t4 with t3 alone, never t1 as if it came just before."""
    groups = ["a", "a", "a"]
    sources = ["t1", "t3", "t4"]
    targets = ["t2", "t4", "t5"]
    assert context_before(groups, sources, targets, 1, 3, SEP) == ()
    assert context_before(groups, sources, targets, 2, 3, SEP) == ("t3",)


def test_the_earlier_turns_a_source_holds_are_its_context_across_a_gap() -> None:
    """A file converted with --context-turns 2 holds the turns before each message in its
    source: they stand even where the pair before is missing, and the context goes further
    back through the conversation where it is not."""
    groups = ["a", "a", "a", "a"]
    sources = ["t1", f"t1{SEP}t2", f"t2{SEP}t3{SEP}t4", f"t3{SEP}t4{SEP}t5"]
    targets = ["t2", "t3", "t5", "t6"]  # the pair (t3, t4) is missing
    assert context_before(groups, sources, targets, 2, 3, SEP) == ("t2", "t3")
    assert context_before(groups, sources, targets, 3, 5, SEP) == ("t2", "t3", "t4")
    assert context_before(groups, sources, targets, 1, 5, SEP) == ("t1",)


def test_configurations_share_the_rows_of_replies_they_both_sent(tmp_path: Path) -> None:
    turns = sheet_rows(
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
    files = write_sheet(turns, tmp_path / "sheet", tmp_path / "key.json", {})
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
        sheet_rows(["x"], [()], ["y"], {"my config": [("z", "retrieved")]})


def test_parts_of_a_sheet_rated_apart_score_as_one(tmp_path: Path) -> None:
    turns = _turns()
    halves = [[t for t in turns if t.post_index % 2 == part] for part in (0, 1)]
    files = [
        write_sheet(half, tmp_path / f"p{n}", tmp_path / f"k{n}.json", {})
        for n, half in enumerate(halves)
    ]
    ratings = [_rate(f.folder, f.key, MARKS) for f in files]
    report = score_sheet([f.key for f in files], ratings)
    whole = write_sheet(turns, tmp_path / "all", tmp_path / "all.json", {})
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
    turns = sheet_rows(posts, [(), ()], ["fine, and you?", "in a small town."], {"bot": bot}, pools)
    assert len(turns) == 6  # two people's, four candidates (the bot's picks among them)
    files = write_sheet(turns, tmp_path / "sheet", tmp_path / "key.json", {})
    report = score_sheet(files.key, _rate(files.folder, files.key, MARKS))
    bot_rates, pool = report.sources[BOT], report.sources["pool"]
    assert (bot_rates.ssa, bot_rates.best_ssa) == (0.25, 0.25)  # ok. (1, 0); nonsense (0, 0)
    assert (pool.replies, pool.sensible, pool.ssa) == (4, 0.75, 0.5)
    # best a post: "good, thanks." (1, 1) and "yes, green tea." (1, 0)
    assert (pool.best_sensible, pool.best_ssa) == (1.0, 0.75)
    with pytest.raises(ValueError, match="distinct names"):
        sheet_rows(posts, [(), ()], ["a", "b"], {"pool": bot}, pools)
