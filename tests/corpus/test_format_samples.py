"""Every reader on the committed samples of the real formats (tests/data/corpora).

The real corpora live outside the repository (../shared/corpora, see test_shared_corpora.py);
these samples were written for the project in the same formats, quirks included, so every
reader runs on its real format in a fresh clone too. Each case states the detected format,
the pairs and every skipped record by reason.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from nlp.corpus import CorpusError, FormatError, Pair, ReadReport, read_pairs
from nlp.corpus.command import register
from nlp.training.corpus_io import CorpusSpec, load_pairs
from nlp.util.config import DataConfig
from tests.conftest import TEST_DATA

SAMPLES = TEST_DATA / "corpora"
NEWS_OPTIONS: dict[str, Any] = {
    "source_field": "content",
    "target_field": "title",
    "strip_html": True,
    "strip_patterns": [r"target=^\[视频\]", "source=^央视网消息[（(]新闻联播[）)]："],
    "skip_patterns": ["target=完整版"],
}


def read(relative: str | Path, fmt: str = "auto", **options: Any) -> tuple[list[Pair], ReadReport]:
    report = ReadReport()
    return list(read_pairs(SAMPLES / relative, fmt, report=report, **options)), report


def sides(pairs: list[Pair]) -> list[tuple[str, str]]:
    return [(pair.source, pair.target) for pair in pairs]


def where(report: ReadReport) -> dict[tuple[str, int], str]:
    """(file name, line or record) -> reason of every listed problem."""
    return {(Path(p.path).name, p.line): p.reason for p in report.problems}


# (sample, detected format, options, pairs, skipped by reason, problems by (file, line))
CASES: list[tuple[str, str, dict[str, Any], list[tuple[str, str]], dict[str, int], dict]] = [
    (
        "subtitles.conv",
        "conv",
        {},
        [
            ("你今天怎么这么晚才回来", "路上堵车  堵了一个多小时"),
            ("路上堵车  堵了一个多小时", "那你吃饭了吗?"),
            ("那你吃饭了吗?", "还没有  饿死了"),
            ("明天的会议改到几点了", "下午三点  在二楼会议室"),
            ("下午三点  在二楼会议室", "好的  我会准时到"),
        ],
        {"fewer than 2 turns": 1, "not an E or M line": 1, "empty target": 1, "empty source": 1},
        {
            ("subtitles.conv", 11): "not an E or M line: X 这一行不是字幕",
            ("subtitles.conv", 16): "empty target",
            ("subtitles.conv", 17): "empty source",
        },
    ),
    (
        "chitchat/dataset.json",
        "chitchat",
        {},
        [
            ("Hey there Did you finish the book I lent you?", "Almost! Two chapters left"),
            ("Almost! Two chapters left", "No spoilers then"),
            ("No spoilers then", "Deal. What are you reading now?"),
            ("Do you cook?", "Only pasta but I make it well"),
        ],
        {
            "fewer than 2 turns": 1,
            "empty target": 1,
            "empty source": 1,
            "not a chitchat conversation": 1,
        },
        {
            ("dataset.json", 3): "empty source",  # the later of the two problems of record 3
            ("dataset.json", 4): "not a chitchat conversation: "
            "c0a1f3e2-1111-4aaa-9bbb-000000000004: messages[1] is not a message list",
        },
    ),
    (
        "news.jsonl",
        "jsonl",
        NEWS_OPTIONS,
        [
            (
                "青川市今天开放三座社区图书馆，共有藏书12万册，居民凭身份证即可借阅。 "
                "图书馆每天开放到晚上9点。",
                "青川市新建三座社区图书馆",
            ),
            (
                "全长3.6公里的南湖大桥今天上午正式通车，两岸车程由40分钟缩短到8分钟。",
                "南湖大桥今起通车",
            ),
            (
                "在石岭村的果园里，传感器每10分钟记录一次土壤湿度，果农用手机就能浇水。",
                "【走进乡村】果园里的“数字管家”",
            ),
        ],
        {"skip pattern target=完整版": 1, "empty source": 1, "empty target": 1},
        {("news.jsonl", 4): "empty source", ("news.jsonl", 5): "empty target"},
    ),
    (
        "lcsts.tsv",
        "lcsts-tsv",
        {},
        [
            (
                "青川市图书馆今天发布年度报告，全年借阅图书46万册，同比增长18%，其中少儿读物占三成。",
                "青川图书馆借阅量同比增长18%",
            ),
            (
                "记者从南湖区交通局获悉，南湖大桥主体工程已经完工，比原计划提前两个月，预计六月通车。",
                "南湖大桥提前两个月完工",
            ),
            (
                "今年石岭村苹果亩产达到2800公斤，比去年增加300公斤，村里新建的冷库也投入使用。",
                "石岭村苹果丰收",
            ),
        ],
        {"wrong column count": 1, "empty source": 1},
        {
            ("lcsts.tsv", 3): "wrong column count: expected 2, got 1",
            ("lcsts.tsv", 5): "empty source",
        },
    ),
    (
        "PART_III.txt",
        "lcsts-xml",
        {"min_human_label": 3},
        [
            (
                "青川市今天开放三座社区图书馆，共有藏书12万册，居民凭身份证即可借阅，每天开放到晚上9点。",
                "青川市开放三座社区图书馆",
            ),
            (
                "石岭村新建的冷库今天投入使用，可储存苹果500吨，果农不必再急着低价出售。",
                "石岭村冷库投入使用",
            ),
        ],
        {"missing summary": 1, "human_label below threshold": 1},
        {("PART_III.txt", 19): "missing summary"},
    ),
    (
        "dialogues_text.txt",
        "dailydialog",
        {},
        [
            ("Is this seat taken ?", "No , please sit down ."),
            ("No , please sit down .", "Thanks . Are you waiting for the bus too ?"),
            ("Thanks . Are you waiting for the bus too ?", "Yes , it is late again ."),
            ("Could you pass me the salt ?", "Here you are ."),
        ],
        {"fewer than 2 turns": 1, "empty target": 1, "empty source": 1},
        {
            ("dialogues_text.txt", 3): "fewer than 2 turns",
            ("dialogues_text.txt", 4): "empty source",
        },
    ),
    (
        "lccc.txt",
        "lccc",
        {},
        [
            ("你周末打算做什么？", "去爬山，天气预报说是晴天。"),
            ("这家店的面真好吃", "下次带我一起去吧"),
            ("你在听什么歌", "一首老歌，叫MoonRiver"),  # letters spaced: word gaps are lost
            ("我们都说I love you啊", "哈哈哈"),
        ],
        {"wrong column count": 1},
        {("lccc.txt", 3): "wrong column count: expected 2, got 1"},
    ),
    (
        "chatterbot.yml",
        "chatterbot",
        {},
        [
            ("你喜欢下雨天吗？", "喜欢，下雨天适合在家看书。"),
            ("喜欢，下雨天适合在家看书。", "那你最近在看什么书？"),
            ("你会做饭吗？", "会一点，最拿手的是番茄炒蛋。"),
        ],
        {"conversation is not a list of turns": 1, "fewer than 2 turns": 1},
        {
            ("chatterbot.yml", 9): "conversation is not a list of turns",
            ("chatterbot.yml", 10): "fewer than 2 turns",
        },
    ),
    (
        "cornell",
        "cornell",
        {},
        [
            ("Did you lock the café?", "Twice. I checked the back door too."),
            ("Twice. I checked the back door too.", "Good. We open at six tomorrow."),
            ("Is the weather clear over the bay?", "Clear. Wind from the west, light."),
        ],
        {"wrong column count": 1, "unknown line id": 1},
        {
            ("movie_lines.txt", 5): "wrong column count: expected 5, got 2",
            ("movie_conversations.txt", 2): "unknown line id: L199",
        },
    ),
    (
        "cmn.txt",
        "tatoeba",
        {},
        [
            ("Good morning.", "早上好。"),
            ("Where is the station?", "车站在哪里？"),
            ("It is raining again.", "又下雨了。"),
        ],
        {"wrong column count": 1},
        {("cmn.txt", 3): "wrong column count: expected 2 to 3, got 1"},
    ),
    (
        "reuters",
        "reuters",
        {},
        [
            (
                "Northfield Mills Inc <NFM> said it\nraised flour output 12 pct in February on "
                "stronger bakery demand.\n    The company said a new mill line opened in January.",
                "NORTHFIELD MILLS <NFM> RAISES FLOUR OUTPUT 12 PCT",
            ),
            (
                "Café Boreal Ltd said it will open 40\nstores this year, most of them in Quebec.",
                "CAFÉ CHAIN TO OPEN 40 STORES",
            ),
        ],
        {"no title": 1, "no body": 1},
        {},
    ),
    (
        "rss",
        "json",
        {},
        [
            (
                "The ferry will run every hour between the old harbour and the island. Timetable",
                "Harbour town opens a new ferry line",
            ),
            (
                "More than 9,000 visitors came to the museum’s late opening on Saturday.",
                "Museum night draws record crowd",
            ),
        ],
        {"empty source": 1, "missing field": 1},
        {
            ("example-news.json", 3): "empty source",
            ("example-news.json", 4): "missing field: 'target' "
            "(also tried article/headline, post/reply, description/title)",
        },
    ),
]


@pytest.mark.parametrize(
    ("sample", "fmt", "options", "pairs", "skipped", "problems"), CASES, ids=[c[0] for c in CASES]
)
def test_sample(
    sample: str,
    fmt: str,
    options: dict[str, Any],
    pairs: list[tuple[str, str]],
    skipped: dict[str, int],
    problems: dict[tuple[str, int], str],
) -> None:
    read_, report = read(sample, **options)
    assert report.formats[str(SAMPLES / sample)].split()[0] == fmt
    assert sides(read_) == pairs
    assert dict(report.skipped) == skipped
    assert where(report) == problems
    assert report.read == len(pairs) + sum(skipped.values())
    # every record left out on purpose is located too (its first one per reason)
    dropped = set(skipped) - {p.reason.split(":")[0] for p in report.problems}
    assert dropped <= set(report.first_dropped), report.details()


# --- conv -------------------------------------------------------------------------------------


def test_conv_context_turns_and_origins() -> None:
    pairs, _ = read("subtitles.conv", "conv", context_turns=2)
    assert [pair.source for pair in pairs[:3]] == [
        "你今天怎么这么晚才回来",
        "你今天怎么这么晚才回来 __eot__ 路上堵车  堵了一个多小时",
        "你今天怎么这么晚才回来 __eot__ 路上堵车  堵了一个多小时 __eot__ 那你吃饭了吗?",
    ]
    assert [pair.origin.rsplit(":", 1)[1] for pair in pairs] == ["3", "4", "5", "10", "12"]


def test_conv_one_line_block_is_located_but_not_a_problem() -> None:
    _, report = read("subtitles.conv")
    assert str(report.first_dropped["fewer than 2 turns"]).endswith(
        "subtitles.conv:7: fewer than 2 turns"
    )
    assert (
        "subtitles.conv:7: fewer than 2 turns (first of 1 left out on purpose)" in report.details()
    )


def test_conv_strict_stops_at_the_stray_line() -> None:
    with pytest.raises(CorpusError, match=r"subtitles\.conv:11: not an E or M line"):
        list(read_pairs(SAMPLES / "subtitles.conv", report=ReadReport(), strict=True))


def test_conv_detected_by_content(tmp_path: Path) -> None:
    path = shutil.copy(SAMPLES / "subtitles.conv", tmp_path / "lost.txt")
    pairs, report = list(read_pairs(path, report=(r := ReadReport()))), r
    assert report.formats[str(path)] == "conv (detected: content is E blocks of M lines)"
    assert len(pairs) == 5


def test_training_reads_conv_with_the_configured_context() -> None:
    """`s2s train` gives dialogue readers data.context_turns: conv is one of them."""
    pairs = load_pairs(
        CorpusSpec((SAMPLES / "subtitles.conv",)), DataConfig(context_turns=1, turn_separator=" | ")
    )
    assert pairs[1].source == "你今天怎么这么晚才回来 | 路上堵车  堵了一个多小时"


# --- chitchat ---------------------------------------------------------------------------------


def test_chitchat_context_and_record_origins() -> None:
    pairs, _ = read("chitchat/dataset.json", "chitchat", context_turns=1)
    assert (
        pairs[1].source
        == "Hey there Did you finish the book I lent you? __eot__ Almost! Two chapters left"
    )
    assert [pair.origin.rsplit(":", 1)[1] for pair in pairs] == ["record 1"] * 3 + ["record 5"]


def test_chitchat_truncated_file_keeps_what_came_before(tmp_path: Path) -> None:
    text = (SAMPLES / "chitchat/dataset.json").read_text("utf-8")
    cut = text.index('"c0a1f3e2-1111-4aaa-9bbb-000000000003"') + 60
    path = tmp_path / "dataset.json"
    path.write_text(text[:cut], "utf-8")
    pairs, report = list(read_pairs(path, "chitchat", report=(r := ReadReport()))), r
    assert len(pairs) == 3
    [problem] = report.problems
    assert (problem.line, problem.reason.split(":")[0]) == (3, "invalid json")


def test_chitchat_wrong_top_level(tmp_path: Path) -> None:
    path = tmp_path / "dataset.json"
    path.write_text('[{"messages": []}]', "utf-8")
    _, report = list(read_pairs(path, "chitchat", report=(r := ReadReport()))), r
    assert [p.reason.split(":")[0] for p in report.problems] == ["no conversations"]


def _chitchat_file() -> Path | None:
    """The installed chitchat-dataset package's file, found without importing it."""
    spec = importlib.util.find_spec("chitchat_dataset")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "dataset.json"


@pytest.mark.skipif(
    _chitchat_file() is None,
    reason="chitchat-dataset is not installed (the dev extra installs it: pip install -e '.[dev]')",
)
def test_chitchat_package_file() -> None:
    """The real 40 MB file: every conversation streamed, counts as measured (0.9.0)."""
    path = _chitchat_file()
    assert path is not None
    report = ReadReport()
    count = sum(1 for _ in read_pairs(path, report=report))
    assert report.formats[str(path)].startswith("chitchat (detected")
    assert count == report.kept == 131_548
    assert dict(report.skipped) == {
        "fewer than 2 turns": 3_150,
        "empty target": 11,
        "empty source": 10,
    }


# --- strip and skip patterns (any format) ---------------------------------------------------


def test_patterns_apply_to_any_format() -> None:
    pairs, report = read(
        "lcsts.tsv", strip_patterns=["target=同比", "target=\\d+%"], skip_patterns=["source=冷库"]
    )
    assert [target for _, target in sides(pairs)] == [
        "青川图书馆借阅量增长",
        "南湖大桥提前两个月完工",
    ]
    assert report.skipped["skip pattern source=冷库"] == 1


def test_bad_patterns_are_refused_before_reading() -> None:
    for bad, message in [
        ("title=x", "expected source=REGEX or target=REGEX"),
        ("target=", "empty pattern"),
        ("target=[", "invalid regular expression"),
    ]:
        with pytest.raises(FormatError, match=message):
            read_pairs(SAMPLES / "lcsts.tsv", report=ReadReport(), skip_patterns=[bad])


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="s2s")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["corpus", *argv])
    return args.func(args)


def test_news_conversion_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "news-pairs.jsonl"
    news = SAMPLES / "news.jsonl"
    code = cli(
        "convert",
        "--input",
        str(news),
        "--source-field",
        "content",
        "--target-field",
        "title",
        "--strip-html",
        "--strip-pattern",
        r"target=^\[视频\]",
        "--strip-pattern",
        "source=^央视网消息[（(]新闻联播[）)]：",
        "--skip-pattern",
        "target=完整版",
        "--output",
        str(output),
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "read 6, kept 3, skipped 3 (" in err
    assert f"{news}:2: skip pattern target=完整版 (first of 1 left out on purpose)" in err
    assert f"{news}:4: empty source" in err
    records = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    assert [record["target"] for record in records] == [
        "青川市新建三座社区图书馆",
        "南湖大桥今起通车",
        "【走进乡村】果园里的“数字管家”",  # NFKC keeps the quotes
    ]
    assert all(not record["source"].startswith("央视网") for record in records)
    assert cli("stats", "--input", str(news), "--skip-pattern", "headline=x") == 2
