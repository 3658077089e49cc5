"""`s2s headlines` inputs: the format detected from name and content (the corpus readers'
detection), JSON arrays, corpora of pairs refused, compressed files read by both runners."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from nlp.headlines import HeadlineInputError, HeadlineJobOptions, generate_headlines
from nlp.headlines.readers import Article, ReaderOptions, read_articles
from tests.fakes.fake_generators import FakeGenerator

FEED = [
    {"title": "A", "description": "The council approved the budget", "source": "https://x/rss"},
    {"title": "B", "description": "Heavy rain flooded roads"},
]


def _headlines(tmp_path: Path, name: str, content: bytes, **reader: Any) -> list[dict[str, Any]]:
    source, out = tmp_path / name, tmp_path / f"{name}.out.jsonl"
    source.write_bytes(content)
    options = HeadlineJobOptions(reader=ReaderOptions(**reader))
    generate_headlines(FakeGenerator(words=3), source, out, options)
    return [json.loads(line) for line in out.read_text("utf-8").splitlines()]


def test_a_json_array_is_read_record_by_record(tmp_path: Path) -> None:
    """A .json array (the corpus `json` format, feed exports) was read as JSON Lines: every
    record "invalid JSON". Pretty-printed, on one line or without an extension, its records
    are numbered from 1; a syntax error costs the rest of the array, reported once."""
    expected = [
        {"id": 1, "headline": "The council approved", "score": 0.0},
        {"id": 2, "headline": "Heavy rain flooded", "score": 0.0},
    ]
    assert _headlines(tmp_path, "feed.json", json.dumps(FEED, indent=2).encode()) == expected
    assert _headlines(tmp_path, "feed", json.dumps(FEED).encode()) == expected
    broken = json.dumps(FEED).encode()[:-30]
    records = _headlines(tmp_path, "broken.json", broken)
    assert records[0] == expected[0]
    assert records[1]["line"] == 2 and records[1]["error"].startswith("invalid JSON")
    with pytest.raises(HeadlineInputError, match="not an array of records"):
        _headlines(tmp_path, "doc.json", b'{"items": [{"article": "x"}]}')


def test_a_json_array_after_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """The reader saw past the BOM that Windows tools write, the parser did not: the whole
    array was one "invalid JSON" record."""
    records = _headlines(tmp_path, "feed.json", b"\xef\xbb\xbf" + json.dumps(FEED).encode())
    assert [r.get("headline") for r in records] == ["The council approved", "Heavy rain flooded"]


def test_text_that_starts_with_a_bracket_is_still_text(tmp_path: Path) -> None:
    records = _headlines(tmp_path, "in.txt", "[视频]央行下调准备金率\n[1] second one\n".encode())
    assert [r["headline"] for r in records] == ["[视频]央行", "[1] second one"]


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("PART_III.txt", '<doc id=1>\n<human_label>5</human_label>\n<summary>\n标题\n'
         "</summary>\n<short_text>\n正文\n</short_text>\n</doc>\n", "lcsts-xml"),
        ("reut2-000.sgm", '<REUTERS NEWID="1">\n<TITLE>T</TITLE><BODY>b</BODY></REUTERS>\n',
         "reuters"),
    ],
)
def test_a_corpus_of_pairs_is_refused_saying_how_to_get_its_articles(
    tmp_path: Path, name: str, content: str, fmt: str
) -> None:
    """An LCSTS PART_III.txt or a Reuters .sgm got a headline for each markup line."""
    with pytest.raises(HeadlineInputError, match=rf"{name}:0: this is a {fmt} corpus .*"
                       rf"s2s corpus convert --format {fmt} --input \S*{name}"):
        _headlines(tmp_path, name, content.encode())


def test_compressed_input_is_read_alike_by_both_runners(tmp_path: Path) -> None:
    """A .gz input: the in-process job read the compressed bytes ("undecodable bytes"), the
    Beam runner the decompressed ones as plain text (its name ends in .gz, not .jsonl); both
    now detect the format of the decompressed content."""
    content = "".join(json.dumps(item) + "\n" for item in FEED).encode()
    plain = _headlines(tmp_path, "feed.jsonl", content)
    assert plain[0]["headline"] == "The council approved"
    (tmp_path / "feed.jsonl.gz").write_bytes(gzip.compress(content))
    out = tmp_path / "gz.out.jsonl"
    generate_headlines(FakeGenerator(words=3), tmp_path / "feed.jsonl.gz", out,
                       HeadlineJobOptions())
    assert [json.loads(line) for line in out.read_text("utf-8").splitlines()] == plain
    pytest.importorskip("apache_beam", reason="the Beam runner needs the beam extra")
    from nlp.headlines.beam_runner import ReadArticles

    beam_read = list(ReadArticles(ReaderOptions(), strict=False).process(
        str(tmp_path / "feed.jsonl.gz")))
    with (tmp_path / "feed.jsonl").open("rb") as handle:
        in_process = list(read_articles(handle, str(tmp_path / "feed.jsonl"), ReaderOptions()))
    assert beam_read == in_process
    assert beam_read[0] == Article(1, 1, "The council approved the budget")


def test_json_ids_are_carried_through_as_written(tmp_path: Path) -> None:
    """Ids other than str/int (3.0, as pandas writes an integer column with gaps; null) were
    replaced by line numbers, which may be other records' ids: a join swapped headlines."""
    lines = [
        {"id": 3.0, "article": "article three"},
        {"id": None, "article": "article without an id"},
        {"id": 1.0, "article": "article one"},
        {"article": "no id field"},
        {"id": 2.5, "article": "a fractional id"},
        {"id": [1], "article": "an array as id"},
    ]
    content = "".join(json.dumps(line) + "\n" for line in lines).encode()
    records = _headlines(tmp_path, "in.jsonl", content)
    assert [r["id"] for r in records] == [3, None, 1, 4, 2.5, 6]
    assert records[5]["error"] == "id is a JSON array"
    (tmp_path / "in.jsonl").write_bytes(content)
    generate_headlines(FakeGenerator(words=2), tmp_path / "in.jsonl", tmp_path / "out.tsv",
                       HeadlineJobOptions())
    ids = [line.split("\t")[0] for line in (tmp_path / "out.tsv").read_text().splitlines()]
    assert ids == ["3", "null", "1", "4", "2.5", "6"]


def test_articles_are_cleaned_of_markup_as_the_corpus_format_is(tmp_path: Path) -> None:
    """Training read json/csv with HTML stripped (and the xwlb recipe adds --strip-html and
    --strip-pattern), but the articles kept their markup: headlines like "p < to rise >"."""
    import argparse

    from nlp.corpus.readers.base import SidePattern
    from nlp.decoding import DecodeOptions
    from nlp.headlines.command import add_arguments, job_options

    table = b'id,article\n1,"<p>Oil &amp; gas <b>prices</b></p><br>rose"\n'
    assert _headlines(tmp_path, "in.csv", table)[0]["headline"] == "Oil & gas"
    jsonl = json.dumps({"id": 1, "text": "[Video] <p>Stocks fell</p>"}).encode()
    assert _headlines(tmp_path, "in.jsonl", jsonl)[0]["headline"] == "[Video] <p>Stocks fell</p>"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--model", "m", "--strip-html", "--strip-pattern", r"source=^\[\w+\]"])
    reader = job_options(args, DecodeOptions()).reader
    assert reader.strip_html is True and [str(p) for p in reader.strip_patterns] == [
        r"source=^\[\w+\]"]
    records = _headlines(tmp_path, "in.jsonl", jsonl, strip_html=True,
                         strip_patterns=reader.strip_patterns)
    assert records[0]["headline"] == "Stocks fell"
    with pytest.raises(ValueError, match="an article is a pair's source"):
        ReaderOptions(strip_patterns=(SidePattern.parse("target=x"),))


@pytest.mark.parametrize("header", ["description,title", "source,target", "Text,id"])
def test_a_header_naming_corpus_fields_chooses_the_article_column(
    tmp_path: Path, header: str
) -> None:
    """A header the reader did not know (`description,title`, a corpus's `source,target`)
    was read as an article, and the last column, the headline, as every article."""
    article_first = header.split(",")[0].lower() in ("description", "source", "text")
    row = "Heavy rain flooded roads,Rain" if article_first else "Rain,Heavy rain flooded roads"
    records = _headlines(tmp_path, "in.csv", f"{header}\n{row}\n".encode())
    assert records == [{"id": 2, "headline": "Heavy rain flooded", "score": 0.0}]


def test_options_of_another_format_are_refused(tmp_path: Path) -> None:
    """--field was silently ignored for CSV/TSV and --column for JSONL; the refusal of a
    table option on text named a flag that does not exist (--format, not --input-format)."""
    import argparse

    from nlp.headlines.command import add_arguments

    table = b"id,article\n1,an article\n"
    with pytest.raises(HeadlineInputError, match=r"in\.csv:0: --field does not apply to csv "
                       r"input \(detected: extension \.csv\); --input-format gives the format"):
        _headlines(tmp_path, "in.csv", table, field="body")
    with pytest.raises(HeadlineInputError, match="--column and --id-column do not apply to jsonl"):
        _headlines(tmp_path, "in.jsonl", b'{"text": "x"}\n', column="0", id_column="1")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--model", "m", "--input-format", "csv"]).input_format == "csv"
