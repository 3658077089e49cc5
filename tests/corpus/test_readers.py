"""Every corpus reader on small fixtures in the real formats, malformed records included."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from nlp.corpus import CorpusError, FormatError, Pair, ReadReport, read_pairs
from nlp.corpus.readers.delimited import join_spaced_tokens


def read(path: Path, fmt: str = "auto", **options: Any) -> tuple[list[Pair], ReadReport]:
    report = ReadReport()
    return list(read_pairs(path, fmt, report=report, **options)), report


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def problem_lines(report: ReadReport) -> dict[int, str]:
    return {problem.line: problem.reason for problem in report.problems}


def sides(pairs: list[Pair]) -> list[tuple[str, str]]:
    return [(pair.source, pair.target) for pair in pairs]


# --- report and records -------------------------------------------------------------------


def test_report_summary_and_problem_cap() -> None:
    report = ReadReport(max_problems=2)
    report.read = 10
    for line in (3, 5, 7):
        report.add_problem("a.tsv", line, "wrong column count", "expected 2, got 3")
    report.count_skip("duplicate")
    assert report.kept == 6
    assert report.summary() == "read 10, kept 6, skipped 4 (wrong column count 3, duplicate 1)"
    details = report.details().splitlines()
    assert details[1] == "a.tsv:3: wrong column count: expected 2, got 3"
    assert details[-1] == "... and 1 more problems"


def test_corpus_error_message() -> None:
    error = CorpusError("data/x.jsonl", 12, "invalid json")
    assert str(error) == "data/x.jsonl:12: invalid json"
    assert (error.path, error.line, error.reason) == ("data/x.jsonl", 12, "invalid json")


# --- jsonl ----------------------------------------------------------------------------------

JSONL = (
    '{"source": "hello", "target": "hi"}\n'
    '{"source": "broken", \n'
    '{"source": "no target"}\n'
    '{"article": "long text", "headline": "title"}\n'
    "\n"
    '{"source": 3, "target": "x"}\n'
    '{"post": "how are you", "reply": "fine"}\n'
    '["not", "an", "object"]\n'
    '{"source": "a", "target": "   "}\n'
    '{"source": "last", "target": "one"}\n'
)


def test_jsonl_keeps_good_records_and_reports_bad_ones(tmp_path: Path) -> None:
    pairs, report = read(write(tmp_path / "c.jsonl", JSONL))
    assert sides(pairs) == [
        ("hello", "hi"),
        ("long text", "title"),
        ("how are you", "fine"),
        ("last", "one"),
    ]
    assert pairs[1].origin == f"{tmp_path / 'c.jsonl'}:4"
    lines = problem_lines(report)
    assert lines[2].startswith("invalid json")
    assert lines[3].startswith("missing field: 'target'")
    assert lines[6].startswith("not a string: 'source'")
    assert lines[8].startswith("not a json object")
    assert lines[9] == "empty target"
    assert report.read == 9 and report.kept == 4  # the blank line 5 is not a record
    assert report.formats[str(tmp_path / "c.jsonl")].startswith("jsonl (detected")


def test_jsonl_strict_raises_at_first_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", JSONL)
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: invalid json"):
        list(read_pairs(path, "jsonl", report=ReadReport(), strict=True))


def test_jsonl_selected_fields(tmp_path: Path) -> None:
    text = '{"q": "question", "a": "answer", "source": "x"}\n{"q": 1}\n'
    path = write(tmp_path / "c.jsonl", text)
    pairs, report = read(path, "jsonl", source_field="q", target_field="a")
    assert sides(pairs) == [("question", "answer")]
    assert problem_lines(report)[2] == "missing field: 'a'"


def test_undecodable_line_costs_one_record(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(
        b'{"source": "a", "target": "b"}\n{"source": "\xff\xfe", "target": "b"}\n'
        b'{"source": "c", "target": "d"}\r\n'
    )
    pairs, report = read(path)
    assert sides(pairs) == [("a", "b"), ("c", "d")]
    assert problem_lines(report) == {2: "undecodable bytes: not valid utf-8"}


def test_reading_is_lazy(tmp_path: Path) -> None:
    path = write(tmp_path / "c.jsonl", '{"source": "a", "target": "b"}\n' + "garbage\n" * 3)
    pairs = read_pairs(path, report=ReadReport(), strict=True)
    assert next(pairs) == Pair("a", "b", f"{path}:1")  # the bad lines are not reached yet
    with pytest.raises(CorpusError, match=":2: invalid json"):
        next(pairs)


# --- usage errors ---------------------------------------------------------------------------


def test_usage_errors_are_raised_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", "a\tb\n")
    report = ReadReport()
    with pytest.raises(FormatError, match="no such file"):
        read_pairs(tmp_path / "missing.tsv", report=report)
    with pytest.raises(FormatError, match="unknown format 'xml'"):
        read_pairs(path, "xml", report=report)
    with pytest.raises(FormatError, match="context_turns do not apply to format tsv"):
        read_pairs(path, "tsv", report=report, context_turns=2)
    with pytest.raises(FormatError, match="reads files, not directories"):
        read_pairs(tmp_path, "tsv", report=report)


# --- tsv, csv, lcsts-tsv, tatoeba, lccc ---------------------------------------------------


def test_tsv_columns_and_wrong_column_count(tmp_path: Path) -> None:
    path = write(tmp_path / "c.txt", "id1\tq1\ta1\nid2\tq2\nid3\tq3\ta3\n")
    pairs, report = read(path, "tsv", source_column=1, target_column=2)
    assert sides(pairs) == [("q1", "a1"), ("q3", "a3")]
    assert problem_lines(report) == {2: "wrong column count: expected at least 3, got 2"}
    pairs, report = read(path, "tsv", columns=2)
    assert sides(pairs) == [("id2", "q2")]
    assert sorted(problem_lines(report)) == [1, 3]


def test_csv_by_header_name_with_quoted_multiline_record(tmp_path: Path) -> None:
    text = (
        "id,headline,article\n"
        '1,First,"Body one, with comma"\n'
        '2,Second,"Body two\nspans lines"\n'
        "3,too,many,fields\n"
        "4,Fourth,Body four\n"
    )
    path = write(tmp_path / "c.csv", text)
    pairs, report = read(path)
    assert sides(pairs) == [
        ("Body one, with comma", "First"),
        ("Body two\nspans lines", "Second"),
        ("Body four", "Fourth"),
    ]
    assert [pair.origin.rsplit(":", 1)[1] for pair in pairs] == ["2", "3", "6"]
    assert problem_lines(report) == {5: "wrong column count: expected 3, got 4"}
    pairs, _ = read(path, "csv", source_column="id", target_column=1)
    assert sides(pairs)[0] == ("1", "First")


def test_a_quote_never_closed_says_which_lines_it_took(tmp_path: Path) -> None:
    """One record's unbalanced quote took the five good records after it into one field:
    reported as one record of the wrong width at its first line, the lost lines unnamed."""
    path = write(tmp_path / "q.csv", 'source,target\na,b\n"c,d\ne,f\ng,h\ni,j\n')
    pairs, report = read(path)
    assert sides(pairs) == [("a", "b")]
    assert "lines 3-6" in problem_lines(report)[3]


def test_a_quote_left_open_in_the_last_column_is_reported(tmp_path: Path) -> None:
    """Opened in the last column, the quote made a record as wide as the header: the lines up
    to the end of the file became one field of a pair, nothing reported."""
    path = write(tmp_path / "q.csv", 'source,target\na,b\nc,"d said ""hi\ne,f\ng,h\n')
    pairs, report = read(path)
    assert sides(pairs) == [("a", "b")]
    assert "never closed" in problem_lines(report)[3]


def test_csv_without_header(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "q;a\nx;y\n")
    pairs, _ = read(path, "csv", header=False, delimiter=";")
    assert sides(pairs) == [("q", "a"), ("x", "y")]
    with pytest.raises(FormatError, match="no header"):
        read(path, "csv", header=False, source_column="q", target_column="a")


def test_lcsts_tsv_swaps_title_and_content(tmp_path: Path) -> None:
    text = "标题一\t这是正文一，比标题长。\n只有一列\n标题三\t正文三的内容更长一些。\n"
    path = write(tmp_path / "train.tsv", text)
    pairs, report = read(path)
    assert report.formats[str(path)].startswith("lcsts-tsv")
    assert sides(pairs) == [
        ("这是正文一，比标题长。", "标题一"),
        ("正文三的内容更长一些。", "标题三"),
    ]
    assert problem_lines(report) == {2: "wrong column count: expected 2, got 1"}


def test_tatoeba_with_and_without_attribution(tmp_path: Path) -> None:
    text = (
        "Hi.\t嗨。\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123 (CM)\n"
        "Run.\t你用跑的。\nHello!\n"
    )
    pairs, report = read(write(tmp_path / "cmn.txt", text))
    assert report.formats[str(tmp_path / "cmn.txt")].startswith("tatoeba")
    assert sides(pairs) == [("Hi.", "嗨。"), ("Run.", "你用跑的。")]
    assert problem_lines(report) == {3: "wrong column count: expected 2 to 3, got 1"}


def test_lccc_joins_spaced_characters(tmp_path: Path) -> None:
    text = (
        "为 歌 手 疯 狂 打 c a l l\t厉 害 了 ！\n这 是 一 行\n"
        "下 面 一 堆 V 姐 , 知 名 度 好 高 啊\t低 调\n"
    )
    pairs, report = read(write(tmp_path / "toy_train.txt", text))
    assert report.formats[str(tmp_path / "toy_train.txt")].startswith("lccc")
    assert sides(pairs) == [("为歌手疯狂打call", "厉害了！"), ("下面一堆V姐,知名度好高啊", "低调")]
    assert problem_lines(report) == {2: "wrong column count: expected 2, got 1"}


def test_join_spaced_tokens_keeps_spaces_between_latin_words() -> None:
    assert join_spaced_tokens("我 爱 你 ， 2 0 1 4") == "我爱你，2014"
    assert join_spaced_tokens("我们 都 说 I love you 啊") == "我们都说I love you啊"
    assert join_spaced_tokens("  ") == ""


# --- lcsts-xml --------------------------------------------------------------------------------

LCSTS_XML = """<doc id=0>
    <human_label>5</human_label>
    <summary>
        标题零
    </summary>
    <short_text>
        正文零，很长。
    </short_text>
</doc>
<doc id=1>
    <human_label>2</human_label>
    <summary>
        标题一
    </summary>
    <short_text>
        正文一。
    </short_text>
</doc>
<doc id=2>
    <human_label>4</human_label>
    <short_text>
        没有摘要的正文。
    </short_text>
</doc>
<doc id=3> <summary> 标题三 </summary> <short_text> 正文三 </short_text> </doc>
<doc id=4>
    <summary>
        没有结束标签
<doc id=5>
    <human_label>3</human_label>
    <summary>标题五</summary>
    <short_text>正文五。</short_text>
</doc>
"""


def test_lcsts_xml_records(tmp_path: Path) -> None:
    path = write(tmp_path / "PART_II.txt", LCSTS_XML)
    pairs, report = read(path)
    assert report.formats[str(path)].startswith("lcsts-xml")
    assert sides(pairs) == [
        ("正文零，很长。", "标题零"),
        ("正文一。", "标题一"),
        ("正文三", "标题三"),
        ("正文五。", "标题五"),
    ]
    assert [pair.origin.rsplit(":", 1)[1] for pair in pairs] == ["1", "10", "25", "29"]
    assert problem_lines(report) == {19: "missing summary", 26: "unterminated record: no </doc>"}


def test_lcsts_xml_human_label_threshold(tmp_path: Path) -> None:
    path = write(tmp_path / "PART_III.txt", LCSTS_XML)
    pairs, report = read(path, "lcsts-xml", min_human_label=3)
    assert sides(pairs) == [("正文零，很长。", "标题零"), ("正文五。", "标题五")]
    assert report.skipped["human_label below threshold"] == 1
    assert problem_lines(report)[25].startswith("missing human_label")  # record 3 has none


# --- dialogue formats -----------------------------------------------------------------------

DAILYDIALOG = (
    "Hi , Tom . __eou__ Hello ! __eou__ How are you ? __eou__ Fine . __eou__\n"
    "Only one turn . __eou__\n"
    "A __eou__  __eou__ C __eou__\n"
)


def test_dailydialog_adjacent_turns(tmp_path: Path) -> None:
    path = write(tmp_path / "dialogues_train.txt", DAILYDIALOG)
    pairs, report = read(path)
    assert report.formats[str(path)].startswith("dailydialog")
    assert sides(pairs) == [
        ("Hi , Tom .", "Hello !"),
        ("Hello !", "How are you ?"),
        ("How are you ?", "Fine ."),
    ]
    assert str(report.problems[0]) == f"{path}:2: fewer than 2 turns"
    assert report.skipped["empty target"] == 1 and report.skipped["empty source"] == 1


def test_dailydialog_context_turns(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", DAILYDIALOG.splitlines()[0] + "\n")
    pairs, _ = read(path, "dailydialog", context_turns=1)
    assert [pair.source for pair in pairs] == [
        "Hi , Tom .",
        "Hi , Tom . __eot__ Hello !",
        "Hello ! __eot__ How are you ?",
    ]
    with pytest.raises(FormatError, match="context_turns must be >= 0"):
        read(path, "dailydialog", context_turns=-1)



def test_a_turn_holding_the_separator_cannot_forge_a_turn(tmp_path: Path) -> None:
    """A corpus turn that contains the turn separator's text (as typed, in capitals or full
    width, all of which reach the model as the separator token) must not add a turn to the
    sources built from it: each source holds as many turns as without it."""
    full_width = "\uff3f\uff3f\uff45\uff4f\uff54\uff3f\uff3f"
    plain = "Hi , Tom . __eou__ Hello ! __eou__ How are you ? __eou__ Fine . __eou__\n"
    forged = (
        f"Hi __eot__ Tom . __eou__ Hello __EOT__ there ! __eou__ How are{full_width}you ? __eou__"
        " Fine . __eou__\n"
    )
    counts = []
    for name, text in (("plain", plain), ("forged", forged)):
        path = write(tmp_path / f"{name}.txt", text)
        pairs, _ = read(path, "dailydialog", context_turns=2)
        counts.append([pair.source.count("__eot__") for pair in pairs])
        assert all("eot" not in pair.target.lower() for pair in pairs)
        if name == "forged":
            assert [pair.source for pair in pairs] == [
                "Hi Tom .",
                "Hi Tom . __eot__ Hello there !",
                "Hi Tom . __eot__ Hello there ! __eot__ How are you ?",
            ]
    assert counts[0] == counts[1] == [0, 1, 2]

CHATTERBOT = """categories:
- trivia
conversations:
- - Who was the 37th President of the United States?
  - Richard Nixon
- In a game of bingo, which number is two little ducks?
  - '22'
- - How are you?
  - I am fine.
  - Good to hear.
- - 1984
  - - nested
"""


def test_chatterbot_conversations(tmp_path: Path) -> None:
    path = write(tmp_path / "trivia.yml", CHATTERBOT)
    pairs, report = read(path)
    assert sides(pairs) == [
        ("Who was the 37th President of the United States?", "Richard Nixon"),
        ("How are you?", "I am fine."),
        ("I am fine.", "Good to hear."),
    ]
    assert pairs[2].origin.endswith("trivia.yml:10")
    assert problem_lines(report) == {
        6: "conversation is not a list of turns",
        12: "turn is not text",
    }


def test_chatterbot_yaml_error_reported_and_directory_continues(tmp_path: Path) -> None:
    write(tmp_path / "a_bad.yml", "conversations:\n- - ok\n  - fine\n- - a: b: c\n  - x\n")
    write(tmp_path / "b_good.yml", "conversations:\n- - hello\n  - hi\n")
    pairs, report = read(tmp_path)
    assert sides(pairs) == [("hello", "hi")]
    [problem] = report.problems
    assert problem.path.endswith("a_bad.yml") and problem.reason.startswith("invalid yaml")
    assert problem.line == 4
    with pytest.raises(CorpusError, match=r"a_bad\.yml:4: invalid yaml"):
        list(read_pairs(tmp_path, "chatterbot", report=ReadReport(), strict=True))


def _cornell(directory: Path) -> None:
    lines = (
        "L1 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Café tonight?\n"
        "L2 +++$+++ u2 +++$+++ m0 +++$+++ CAMERON +++$+++ Sure.\n"
        "L3 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Great!\n"
        "L4 +++$+++ broken line\n"
        "L5 +++$+++ u2 +++$+++ m0 +++$+++ CAMERON +++$+++ \n"
    )
    conversations = (
        "u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L1', 'L2', 'L3']\n"
        "u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L3', 'L99']\n"
        "u0 +++$+++ u2 +++$+++ m0 +++$+++ L1, L2\n"
        "u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L3', 'L5']\n"
    )
    write(directory / "movie_lines.txt", lines, "iso-8859-1")
    write(directory / "movie_conversations.txt", conversations, "iso-8859-1")


@pytest.mark.parametrize("name", ["", "movie_lines.txt", "movie_conversations.txt"])
def test_cornell_from_directory_or_either_file(tmp_path: Path, name: str) -> None:
    _cornell(tmp_path)
    pairs, report = read(tmp_path / name if name else tmp_path)
    assert sides(pairs) == [("Café tonight?", "Sure."), ("Sure.", "Great!")]
    assert pairs[0].origin.endswith("movie_conversations.txt:1")
    by_file = {(Path(p.path).name, p.line): p.reason for p in report.problems}
    assert by_file == {
        ("movie_lines.txt", 4): "wrong column count: expected 5, got 2",
        ("movie_conversations.txt", 2): "unknown line id: L99",
        ("movie_conversations.txt", 3): "invalid line id list: L1, L2",
        ("movie_conversations.txt", 4): "empty target",
    }


def test_cornell_needs_both_files(tmp_path: Path) -> None:
    write(tmp_path / "movie_lines.txt", "L1 +++$+++ u0 +++$+++ m0 +++$+++ A +++$+++ hi\n")
    with pytest.raises(FormatError, match=r"movie_conversations\.txt"):
        read(tmp_path)


# --- reuters --------------------------------------------------------------------------------

REUTERS = """<!DOCTYPE lewis SYSTEM "lewis.dtd">
<REUTERS TOPICS="YES" LEWISSPLIT="TRAIN" NEWID="1">
<DATE>26-FEB-1987 15:01:01.79</DATE>
<TEXT>&#2;
<TITLE>STANDARD OIL &lt;SRD> TO FORM FINANCIAL UNIT</TITLE>
<DATELINE>    CLEVELAND, Feb 26 - </DATELINE><BODY>Standard Oil Co &lt;SRD> said
it will form a financial unit.
 Reuter
&#3;</BODY></TEXT>
</REUTERS>
<REUTERS TOPICS="NO" NEWID="2">
<TEXT TYPE="UNPROC">&#2;
FEDERAL RESERVE WEEKLY REPORT
&#3;</TEXT>
</REUTERS>
<REUTERS TOPICS="NO" NEWID="3">
<TEXT TYPE="BRIEF">&#2;
<TITLE>SHORT ITEM WITHOUT BODY</TITLE>
&#3;</TEXT>
</REUTERS>
<REUTERS NEWID="4"><TEXT><TITLE>COCOA REVIEW</TITLE><BODY>Showers continued. REUTER
&#3;</BODY></TEXT></REUTERS>
"""


def test_reuters_titles_bodies_and_skips(tmp_path: Path) -> None:
    path = tmp_path / "reut2-000.sgm"
    unterminated = b'<REUTERS NEWID="5">\n<TEXT><TITLE>CAF\xc9</TITLE>'
    path.write_bytes(REUTERS.encode("ascii") + unterminated)
    pairs, report = read(path)
    assert sides(pairs) == [
        (
            "Standard Oil Co <SRD> said\nit will form a financial unit.",
            "STANDARD OIL <SRD> TO FORM FINANCIAL UNIT",
        ),
        ("Showers continued.", "COCOA REVIEW"),
    ]
    assert [pair.origin.rsplit(":", 1)[1] for pair in pairs] == ["2", "21"]
    assert report.skipped["no title"] == 1 and report.skipped["no body"] == 1
    assert problem_lines(report) == {23: "unterminated record: no </REUTERS>"}
    pairs, _ = read(tmp_path, "reuters", title_case=True)
    assert pairs[1].target == "Cocoa Review"


@pytest.mark.parametrize(
    ("title", "body", "expected"),
    [
        ("USX <X> DEBT DOWGRADED", "Moody's downgraded USX Corp's debt.",
         "USX <X> Debt Dowgraded"),
        ("U.S. SUGAR IMPORTS DOWN IN WEEK - USDA",
         "Sugar imports fell in the week, the Agriculture Department (USDA) said.",
         "U.S. Sugar Imports Down In Week - USDA"),
        ("OPEC OUTPUT ABOVE CEILING, GM SAYS", "OPEC pumped more; GM economists said so.",
         "OPEC Output Above Ceiling, GM Says"),
        ("<FRANKLIN TAX-FREE FUND> SETS 4TH PAYOUT", "The fund set a payout.",
         "<FRANKLIN TAX-FREE FUND> Sets 4th Payout"),
        ("BROWN-FORMAN, DUFF/PHELPS IN TALKS", "The companies are in talks.",
         "Brown-Forman, Duff/Phelps In Talks"),
    ],
)
def test_reuters_title_case_keeps_acronyms_tickers_and_abbreviations(
    tmp_path: Path, title: str, body: str, expected: str
) -> None:
    """string.capwords lowercased them all: "Usx <x> Debt Dowgraded", "U.s. ... - Usda"."""
    path = tmp_path / "reut2-000.sgm"
    escaped = title.replace("<", "&lt;")
    path.write_text(f"<REUTERS NEWID=\"1\"><TEXT><TITLE>{escaped}</TITLE><BODY>{body}\n Reuter"
                    "\n&#3;</BODY></TEXT></REUTERS>\n", "ascii")
    pairs, _ = read(path, "reuters", title_case=True)
    assert [pair.target for pair in pairs] == [expected]


@pytest.mark.parametrize(
    ("ending", "kept"),
    [
        ("\n REUTER...", ""),
        ("\n Reuter...", ""),
        ("\nREUTER...^M", ""),
        ("\nreuter^M", ""),
        ("\n REUTERS", ""),
        ("\nREUTER\n Reuter", ""),
        (" Noranda said. Reuter", " Noranda said."),
        (" a spokesman told\nReuters.", " a spokesman told\nReuters."),
    ],
)
def test_reuters_signature_endings_are_removed(tmp_path: Path, ending: str, kept: str) -> None:
    """Only a bare `Reuter` was stripped: bodies kept "REUTER..." and "REUTER^M" endings."""
    path = tmp_path / "reut2-000.sgm"
    path.write_text(f"<REUTERS NEWID=\"1\"><TEXT><TITLE>GOLD OUTPUT UP</TITLE><BODY>Output rose."
                    f"{ending}\n&#3;</BODY></TEXT></REUTERS>\n", "ascii")
    pairs, _ = read(path, "reuters")
    assert [pair.source for pair in pairs] == ["Output rose." + kept]


# --- auto detection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.jsonl", '{"source": "a", "target": "b"}\n', "jsonl"),
        ("data.txt", '{"source": "a", "target": "b"}\n', "jsonl"),
        ("a.csv", "source,target\na,b\n", "csv"),
        ("pairs.txt", "hello\tworld\n", "tsv"),
        (
            "x.txt",
            "<doc id=1>\n<summary>标题</summary>\n<short_text>正文</short_text>\n</doc>\n",
            "lcsts-xml",
        ),
        (
            "x.dat",
            '<REUTERS NEWID="1"><TEXT><TITLE>A</TITLE><BODY>b</BODY></TEXT></REUTERS>\n',
            "reuters",
        ),
    ],
)
def test_auto_detection(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = write(tmp_path / name, text)
    pairs, report = read(path)
    assert report.formats[str(path)].split()[0] == expected
    assert pairs


def test_undetectable_content(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="cannot detect"):
        read(write(tmp_path / "notes.txt", "just some prose\n"))


def test_islice_reads_only_what_is_needed(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", DAILYDIALOG * 1000)
    report = ReadReport()
    first = list(itertools.islice(read_pairs(path, "dailydialog", report=report), 2))
    assert len(first) == 2 and report.read == 2


def test_an_encoding_the_line_readers_cannot_split_is_refused_with_the_fix(
    tmp_path: Path,
) -> None:
    """`--encoding utf-16` was accepted and then every line of a valid UTF-16 TSV (Excel's
    "Unicode Text") was "not valid utf-16" or had the wrong column count: the readers split
    lines on the byte 0x0a. Refused at once, naming the file and how to convert it; an
    unknown encoding's name too; UTF-8 with a BOM and Latin-1 still read."""
    path = tmp_path / "pairs.tsv"
    path.write_text("hello\tworld\n", "utf-16")
    with pytest.raises(FormatError, match=r"pairs\.tsv.*iconv -f utf-16 -t utf-8"):
        list(read_pairs(path, "tsv", report=ReadReport(), encoding="utf-16"))
    with pytest.raises(FormatError, match="unknown encoding 'klingon'"):
        list(read_pairs(path, "tsv", report=ReadReport(), encoding="klingon"))
    for encoding in ("utf-8-sig", "latin-1"):
        path.write_text("hello\tworld\n", encoding)
        pairs = list(read_pairs(path, "tsv", report=ReadReport(), encoding=encoding))
        assert [(p.source, p.target) for p in pairs] == [("hello", "world")]
