"""Every reader on the real corpora in ../shared/corpora (first records only, to stay fast).

These corpora are not part of the repository; on a machine without them the tests skip.
"""

from __future__ import annotations

import itertools

import pytest

from nlp.corpus import PipelineOptions, ReadReport, process, read_pairs
from tests.conftest import SHARED_CORPORA

SHARED = SHARED_CORPORA
LIMIT = 2000

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared corpora not found at {SHARED}"),
]

# (path under corpora/, format auto-detection must pick, minimum pairs among the first LIMIT)
CORPORA = [
    ("headlines-zh/lcsts/train.tsv", "lcsts-tsv", LIMIT),
    ("headlines-zh/lcsts/val.tsv", "lcsts-tsv", 1000),
    ("headlines-en/reuters21578", "reuters", LIMIT),
    ("dialogue-zh/lccc/toy_train.txt", "lccc", LIMIT),
    ("dialogue-zh/chatterbot", "chatterbot", 500),
    ("dialogue-en/chatterbot", "chatterbot", LIMIT),
    ("dialogue-en/dailydialog/train/dialogues_train.txt", "dailydialog", LIMIT),
    ("dialogue-en/dailydialog/validation/dialogues_validation.txt", "dailydialog", LIMIT),
    ("translation/tatoeba-cmn-eng/cmn.txt", "tatoeba", LIMIT),
    ("dialogue-zh/dgk-subtitles/lost.conv", "conv", LIMIT),
]


@pytest.mark.parametrize(("relative", "fmt", "minimum"), CORPORA, ids=[c[0] for c in CORPORA])
def test_real_corpus(relative: str, fmt: str, minimum: int) -> None:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} not present")
    report = ReadReport()
    pairs = list(itertools.islice(read_pairs(path, report=report), LIMIT))
    assert report.formats[str(path)].split()[0] == fmt
    assert len(pairs) >= minimum
    assert all(pair.source.strip() and pair.target.strip() for pair in pairs)
    assert report.problem_count <= len(pairs) // 100 + 1, report.details()
    cleaned = list(process(pairs, PipelineOptions(), report))
    assert len(cleaned) >= len(pairs) // 3  # the chatterbot corpora repeat a lot


def test_lccc_spaces_are_removed() -> None:
    path = SHARED / "dialogue-zh/lccc/toy_train.txt"
    if not path.exists():
        pytest.skip(f"{path} not present")
    pairs = list(itertools.islice(read_pairs(path, "lccc", report=ReadReport()), 500))
    spaced = [pair for pair in pairs if " " in pair.source + pair.target]
    assert not spaced, spaced[:3]


def test_reuters_headline_pairs() -> None:
    path = SHARED / "headlines-en/reuters21578/reut2-000.sgm"
    if not path.exists():
        pytest.skip(f"{path} not present")
    report = ReadReport()
    pairs = list(read_pairs(path, report=report))
    assert pairs[0].target == "BAHIA COCOA REVIEW"
    assert pairs[0].source.startswith("Showers continued throughout the week")
    assert not any(pair.source.rstrip().lower().endswith("reuter") for pair in pairs)
    assert not any("&lt;" in pair.source or "\x03" in pair.source for pair in pairs)
    assert report.skipped["no title"] + report.skipped["no body"] > 0
    assert report.read == 1000  # every <REUTERS> document of the file is accounted for


def test_chatterbot_known_malformed_conversation_is_reported() -> None:
    path = SHARED / "dialogue-en/chatterbot/trivia.yml"
    if not path.exists():
        pytest.skip(f"{path} not present")
    report = ReadReport()
    pairs = list(read_pairs(path, report=report))
    assert pairs
    assert [(p.line, p.reason) for p in report.problems] == [
        (35, "conversation is not a list of turns")
    ]


def test_rss_news_month_of_snapshots() -> None:
    """August 2021 of the rss-news snapshots: detected, HTML cleaned, repeats counted."""
    root = SHARED / "headlines-en/rss-news"
    days = sorted(root.glob("2021-08-*"))  # a month in which items recur on later days
    if not days:
        pytest.skip(f"{root} not present")
    report = ReadReport()
    read = [pair for day in days for pair in read_pairs(day, report=report)]
    assert {fmt.split()[0] for fmt in report.formats.values()} == {"json"}
    assert len(read) > 1500
    assert report.html_cleaned > 0
    assert not any("<p>" in pair.source or "&amp;" in pair.source for pair in read)
    assert set(report.skipped) <= {"empty source"}, report.details()  # CNN items without text
    kept = list(process(read, PipelineOptions(), report))
    assert 0 < len(read) - len(kept) == report.skipped["duplicate"]


def test_dgk_subtitles_every_adjacent_line_pair() -> None:
    """All six .conv files: every pair of adjacent lines in a block, nothing malformed; the
    one-line blocks are counted (and the first located), not listed as problems."""
    root = SHARED / "dialogue-zh/dgk-subtitles"
    if not root.is_dir():
        pytest.skip(f"{root} not present")
    report = ReadReport()
    count = sum(1 for _ in read_pairs(root, report=report))
    assert report.formats[str(root)] == "conv (detected: directory holds .conv files)"
    assert count == report.kept == 216_057
    assert dict(report.skipped) == {"fewer than 2 turns": 6_232}
    assert report.problem_count == 0
    assert str(report.first_dropped["fewer than 2 turns"]).endswith(
        "fanzxl.conv:92: fewer than 2 turns"
    )


XWLB_OPTIONS = {
    "source_field": "content",
    "target_field": "title",
    "strip_html": True,
    "strip_patterns": [
        r"target=^\[视频\]",
        "source=^(央视网|中国网络电视台)[^：:]{0,12}[：:]",  # the opening line, all spellings
        r"source=[（(][^（()）]{0,6}编辑[：:][^）)]*[）)]$",  # the editors' credit
    ],
    "skip_patterns": ["target=完整版"],
}


def test_xwlb_year_with_generic_cleaning() -> None:
    """Xinwen Lianbo 2012 with the documented options: transcript -> title, markup, title
    prefix and the channel's opening line removed, whole-programme items and items without
    a transcript left out and counted."""
    path = SHARED / "headlines-zh/xwlb/xwlb-2012.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not present")
    report = ReadReport()
    pairs = list(read_pairs(path, report=report, **XWLB_OPTIONS))
    assert report.read == 3_070 and len(pairs) == 2_693
    assert dict(report.skipped) == {"empty source": 195, "skip pattern target=完整版": 182}
    assert str(report.problems[0]) == f"{path}:58: empty source"
    assert str(report.first_dropped["skip pattern target=完整版"]).startswith(f"{path}:20:")
    assert not any(p.target.startswith("[视频]") or "完整版" in p.target for p in pairs)
    assert not any(p.source.startswith(("央视网", "中国网络电视台")) for p in pairs)
    assert not any("<p>" in p.source.lower() or "编辑：" in p.source[-30:] for p in pairs)
