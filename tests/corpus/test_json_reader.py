"""The `json` corpus format and HTML cleaning, on fixtures shaped like feed-reader exports.

The records imitate the shared rss-news snapshots (`source` is the feed URL there, the pair is
`description` -> `title`), with text written for these tests.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from nlp.corpus import CorpusError, FormatError, Pair, ReadReport, detect_format, read_pairs
from nlp.corpus.command import register
from nlp.text.html import html_to_text

FEED = "https://news.example.com/rss"


def item(title: Any, description: Any, **extra: Any) -> dict[str, Any]:
    """One record in the shape of the rss-news snapshots."""
    return {
        "source": FEED,
        "title": title,
        "description": description,
        "link": "https://news.example.com/a/1",
        "date_published": "2021-03-05 09:12:00+00:00",
        "persistent": False,
        "user": None,
        "language": "en-GB",
        **extra,
    }


def dump(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), "utf-8")
    return path


def read(path: Path, fmt: str = "auto", **options: Any) -> tuple[list[Pair], ReadReport]:
    report = ReadReport()
    return list(read_pairs(path, fmt, report=report, **options)), report


def sides(pairs: list[Pair]) -> list[tuple[str, str]]:
    return [(pair.source, pair.target) for pair in pairs]


# A Guardian-like description (text written for this test): paragraphs, a list of links,
# typographic entities and the trailing "Continue reading..." link.
GUARDIAN_LIKE = (
    "<p>Ministers say the new timetable will cut journeys between Leeds and York by ten "
    "minutes</p><ul><li><a href=\"https://news.example.com/uk/transport\">See all our transport "
    "coverage</a></li></ul><p>Passengers on the route have waited three years for the change, "
    "which the operator says &ldquo;puts the timetable back on track&rdquo;.</p><p>Fares rise "
    "by 4.6%&nbsp;in&#160;May.</p> <a href=\"https://news.example.com/uk/2026/mar/05/leeds\">"
    "Continue reading...</a>"
)
GUARDIAN_TEXT = (
    "Ministers say the new timetable will cut journeys between Leeds and York by ten minutes "
    "See all our transport coverage Passengers on the route have waited three years for the "
    "change, which the operator says \u201cputs the timetable back on track\u201d. Fares rise "
    "by 4.6% in May. Continue reading..."
)


# --- html_to_text ---------------------------------------------------------------------------


def test_guardian_like_markup_becomes_its_visible_text() -> None:
    assert html_to_text(GUARDIAN_LIKE) == GUARDIAN_TEXT


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("one<br>two<br/>three", "one two three"),  # line breaks separate words
        ("<p>end.</p><p>Next</p>", "end. Next"),
        ("a <b>bold</b>word and <a href='x'>link</a>s", "a boldword and links"),  # inline: glued
        ("before<script>var x = '<p>no</p>';</script> after", "before after"),
        ("<style>p { color: red }</style>Shown", "Shown"),
        ("AT&amp;T &lt;b&gt; caf&eacute; &#8217;", "AT&T <b> caf\u00e9 \u2019"),
        ("<!-- hidden --><p>kept</p>", "kept"),
        ("Tom & Jerry  ", "Tom & Jerry"),
    ],
)
def test_html_to_text_spacing_and_hidden_content(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


def test_plain_text_is_returned_untouched() -> None:
    text = "Prices rose 4.6%  in March,\nofficials said"
    assert html_to_text(text) is text


# --- the json reader ------------------------------------------------------------------------


def test_array_file_reads_description_and_title(tmp_path: Path) -> None:
    path = dump(
        tmp_path / "feed_entries.json",
        [
            item("Leeds opens a new library", "The city opened its largest library on Monday."),
            item("York sees snow", "Snow fell in York overnight."),
        ],
    )
    pairs, report = read(path)
    assert report.formats[str(path)].startswith("json")
    assert sides(pairs) == [
        ("The city opened its largest library on Monday.", "Leeds opens a new library"),
        ("Snow fell in York overnight.", "York sees snow"),
    ]
    assert pairs[1].origin == f"{path}:record 2"
    assert report.summary() == "read 2, kept 2, skipped 0"


def test_object_with_records_field_and_dotted_fields(tmp_path: Path) -> None:
    records = [
        {"id": 1, "body": {"text": "Rail fares rise 4.6% in May."}, "meta": {"headline": "Up"}},
        {"id": 2, "body": {"text": "A new bridge opens."}, "meta": {}},
    ]
    path = dump(tmp_path / "export.json", {"status": "ok", "data": {"items": records}})
    options = {"source_field": "body.text", "target_field": "meta.headline"}
    pairs, report = read(path, "json", records_field="data.items", **options)
    assert sides(pairs) == [("Rail fares rise 4.6% in May.", "Up")]
    assert [str(problem) for problem in report.problems] == [
        f"{path}:record 2: missing field: 'meta.headline'"
    ]
    assert report.summary() == "read 2, kept 1, skipped 1 (missing field 1)"


def test_top_level_object_without_records_field_is_explained(tmp_path: Path) -> None:
    path = dump(tmp_path / "export.json", {"status": "ok", "items": [item("T", "D")]})
    pairs, report = read(path, "json")
    assert pairs == []
    [problem] = report.problems
    assert str(problem) == (
        f"{path}: no records array: the top level is an object with fields status, items; "
        "set --records-field"
    )
    _, report = read(path, "json", records_field="entries")
    assert report.problems[0].reason == (
        "no records array: no array at 'entries' (the top level is an object)"
    )


def test_directory_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    dump(tmp_path / "2021-01-02" / "b_entries.json", [item("Third", "third day")])
    dump(tmp_path / "2021-01-01" / "z_entries.json", [item("Second", "second file")])
    dump(tmp_path / "2021-01-01" / "a_entries.json", [item("First", "first file")])
    (tmp_path / "notes.txt").write_text("not a corpus file", "utf-8")
    pairs, report = read(tmp_path)
    assert report.formats[str(tmp_path)] == "json (detected: directory holds .json files)"
    assert [pair.target for pair in pairs] == ["First", "Second", "Third"]


def test_malformed_file_keeps_earlier_records_and_the_other_files(tmp_path: Path) -> None:
    good = [item("Kept one", "first"), item("Kept two", "second")]
    text = json.dumps(good)[:-1] + ', {"title": "cut off", "descr'  # truncated mid-record
    (tmp_path / "a_entries.json").write_text(text, "utf-8")
    dump(tmp_path / "b_entries.json", [item("Other file", "still read")])
    pairs, report = read(tmp_path, "json")
    assert [pair.target for pair in pairs] == ["Kept one", "Kept two", "Other file"]
    [problem] = report.problems
    assert (Path(problem.path).name, problem.line, problem.unit) == ("a_entries.json", 3, "record")
    assert problem.reason.startswith("invalid json: ")
    assert problem.reason.endswith("; rest of file lost")
    with pytest.raises(CorpusError, match=r"a_entries\.json:record 3: invalid json"):
        read(tmp_path, "json", strict=True)


def test_bytes_that_are_not_utf8_end_the_file_with_one_line_reason(tmp_path: Path) -> None:
    path = tmp_path / "feed.json"
    path.write_bytes(b'[{"description": "ok", "title": "T"}, {"description": "caf\xe9"}]')
    pairs, report = read(path)
    assert [pair.target for pair in pairs] == ["T"]
    assert [str(problem) for problem in report.problems] == [
        f"{path}:record 2: invalid json: lexical error: invalid bytes in UTF8 string; "
        "rest of file lost"
    ]
    with pytest.raises(FormatError, match="read as UTF-8, not latin-1"):
        read(path, encoding="latin-1")


def test_bad_records_are_reported_with_their_index(tmp_path: Path) -> None:
    records = [
        item("Fine", "a sound record"),
        {"source": FEED, "title": "no description"},
        ["not", "an", "object"],
        item(42, "title is a number"),
        item("Only markup", "<p><img src='x.png'></p>"),
        item("Last", "the last record"),
    ]
    path = dump(tmp_path / "feed.json", records)
    pairs, report = read(path)
    assert [pair.target for pair in pairs] == ["Fine", "Last"]
    assert {problem.line: problem.reason for problem in report.problems} == {
        # the feed URL is in "source", so only "target" is missing of the default pair
        2: "missing field: 'target' (also tried article/headline, post/reply, description/title)",
        3: "not a json object: list",
        4: "not a string: 'title'",
        5: "empty source",
    }
    with pytest.raises(CorpusError, match=r"feed\.json:record 2: missing field"):
        read(path, strict=True)


def test_html_in_fields_is_cleaned_by_default_and_counted(tmp_path: Path) -> None:
    path = dump(
        tmp_path / "guardian_entries.json",
        [
            item("Leeds &amp; York rail timetable changes", GUARDIAN_LIKE),
            item("Plain title", "Plain description without markup."),
        ],
    )
    pairs, report = read(path)
    assert sides(pairs)[0] == (GUARDIAN_TEXT, "Leeds & York rail timetable changes")
    assert report.html_cleaned == 2
    assert report.summary().endswith("; HTML removed from 2 text fields")
    raw, report = read(path, strip_html=False)
    assert raw[0].source == GUARDIAN_LIKE
    assert report.html_cleaned == 0


def test_strip_html_defaults_per_format(tmp_path: Path) -> None:
    text = "source,target\n<p>Snow in <b>York</b></p>,York &amp; snow\n"
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text(text, "utf-8")
    tsv_path = tmp_path / "pairs.tsv"
    tsv_path.write_text("<p>Snow in <b>York</b></p>\tYork &amp; snow\n", "utf-8")
    assert sides(read(csv_path, "csv")[0]) == [("Snow in York", "York & snow")]
    assert sides(read(tsv_path, "tsv")[0]) == [("<p>Snow in <b>York</b></p>", "York &amp; snow")]
    assert sides(read(tsv_path, "tsv", strip_html=True)[0]) == [("Snow in York", "York & snow")]


def test_options_of_other_formats_are_refused(tmp_path: Path) -> None:
    path = dump(tmp_path / "feed.json", [item("T", "D")])
    with pytest.raises(FormatError, match="columns do not apply to format json"):
        read(path, "json", columns=3)
    with pytest.raises(FormatError, match="records_field do not apply to format jsonl"):
        read(path, "jsonl", records_field="items")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"source": "a", "target": "b"}]', "json"),
        ('{"items": [{"source": "a", "target": "b"}]}', "json"),
        ('{\n  "items": [\n    {"source": "a", "target": "b"}\n  ]\n}\n', "json"),
        ('{"source": "a", "target": "b"}\n{"source": "c", "target": "d"}\n', "jsonl"),
        ('{"source": "a", "target": "b"}\n', "jsonl"),
    ],
)
def test_dot_json_files_are_told_apart(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "data.json"
    path.write_text(text, "utf-8")
    assert detect_format(path)[0] == expected


def test_large_file_streams_under_a_memory_cap(tmp_path: Path) -> None:
    """A ~60 MB array is read with a traced peak far below its size (cap: 8 MB)."""
    cap = 8 * 1024 * 1024
    path = tmp_path / "big.json"
    description = "Rail passengers in Leeds wait for the new timetable. " * 18  # ~1 KB
    count = 60_000
    with path.open("w", encoding="utf-8") as handle:
        handle.write("[")
        for number in range(count):
            record = item(f"Timetable story {number}", description)
            handle.write(("," if number else "") + json.dumps(record))
        handle.write("]")
    assert path.stat().st_size > 60 * 1024 * 1024
    report = ReadReport()
    tracemalloc.start()
    try:
        kept = sum(1 for _ in read_pairs(path, "json", report=report))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert kept == count
    assert peak < cap, f"peak {peak / 2**20:.1f} MB"


# --- the command line -----------------------------------------------------------------------


def run_corpus(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["corpus", *argv])
    return int(args.func(args))


def test_convert_a_glob_of_day_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    days = tmp_path / "rss"
    dump(days / "2021-12-31" / "f_entries.json", [item("Old year", "<p>last day</p>")])
    dump(days / "2022-01-01" / "f_entries.json", [item("New year", "first day")])
    dump(days / "2022-01-02" / "f_entries.json", [item("New year", "first day")])  # repeat
    out = tmp_path / "2022.jsonl"
    inputs = [str(path) for path in sorted(days.glob("2022-*"))]
    code = run_corpus(["convert", "--format", "json", "--input", *inputs, "--output", str(out)])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert lines == [{"source": "first day", "target": "New year"}]
    err = capsys.readouterr().err
    assert f"format: {inputs[0]} and 1 more inputs: json" in err
    assert "read 2, kept 1, skipped 1 (duplicate 1)" in err


def test_no_strip_html_on_the_command_line(tmp_path: Path) -> None:
    path = dump(tmp_path / "feed.json", [item("Title", "<p>Body</p>")])
    out = tmp_path / "out.jsonl"
    code = run_corpus(["convert", "--input", str(path), "--no-strip-html", "--output", str(out)])
    assert code == 0
    assert json.loads(out.read_text("utf-8"))["source"] == "<p>Body</p>"


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_one_field_given_takes_its_known_partner(tmp_path: Path, fmt: str) -> None:
    """The feed URL in `source` must not become every pair's source when only the target
    field is named: `title` pairs with `description`, as without options."""
    records = [item("Snow closes York schools", "Heavy snow closed schools across York.")]
    path = tmp_path / f"feed.{fmt}"
    if fmt == "json":
        dump(path, records)
    else:
        path.write_text("".join(json.dumps(record) + "\n" for record in records), "utf-8")
    pairs, _ = read(path, fmt, target_field="title")
    assert sides(pairs) == [("Heavy snow closed schools across York.", "Snow closes York schools")]
    pairs, _ = read(path, fmt, source_field="description")
    assert sides(pairs) == [("Heavy snow closed schools across York.", "Snow closes York schools")]
    # a name in no known pair keeps the default name for the other side
    pairs, _ = read(path, fmt, target_field="language")
    assert sides(pairs) == [(FEED, "en-GB")]
