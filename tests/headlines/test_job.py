"""Batch headline generation: formats, error records, alignment, streaming, strict, resume
(including a real CLI run killed with SIGKILL), all with the fake generator (no model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from nlp.decoding import DecodeOptions
from nlp.generation.decode_args import flag_changes, merge_options
from nlp.generation.text_generator import Generation
from nlp.headlines import (
    HeadlineInputError,
    HeadlineJobOptions,
    JobSummary,
    ReaderOptions,
    generate_headlines,
)
from nlp.headlines.command import add_arguments
from nlp.headlines.resume import records_done
from tests.conftest import REPO
from tests.fakes.fake_generators import FakeGenerator

FAKE_CLI = REPO / "tests" / "fakes" / "fake_generators.py"  # `s2s headlines` serving fake:// models


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _run(
    tmp_path: Path, content: bytes, name: str = "in.txt", out: str = "out.jsonl", **options: Any
) -> tuple[JobSummary, Path]:
    """Write `content` to `name`, run the job with the fake generator, return the summary."""
    source = tmp_path / name
    source.write_bytes(content)
    job = HeadlineJobOptions(**options)
    return generate_headlines(FakeGenerator(words=3), source, tmp_path / out, job), tmp_path / out


class RecordingGenerator(FakeGenerator):
    """Remembers each batch it was given and the output file's size at that moment."""

    def __init__(self, output: Path) -> None:
        super().__init__(words=2)
        self.output = output
        self.batches: list[list[str]] = []
        self.sizes: list[int] = []

    def generate(self, texts: Sequence[str], options: DecodeOptions) -> list[list[Generation]]:
        self.batches.append(list(texts))
        self.sizes.append(self.output.stat().st_size if self.output.exists() else 0)
        return super().generate(texts, options)


def test_plain_text_with_an_empty_line_stays_aligned(tmp_path: Path) -> None:
    summary, out = _run(tmp_path, "苹果发布新手机\n\nOil prices rose sharply today\n".encode())
    records = _jsonl(out)
    assert records == [
        {"id": 1, "headline": "苹果发布新手", "score": 0.0},
        {"id": 2, "line": 2, "error": "empty article"},
        {"id": 3, "headline": "Oil prices rose", "score": 0.0},
    ]
    assert summary.written == 3 and summary.error_count == 1
    assert "in.txt:2: empty article" in summary.summary(str(tmp_path / "in.txt"))


def test_jsonl_bad_records_become_error_records(tmp_path: Path) -> None:
    lines = [
        b'{"id": "a1", "article": "first article here"}',
        b'{"id": "a2", "article": "broken',
        b'{"id": "a3", "title": "no article field"}',
        b'{"id": "a4", "source": "from the source field"}',
        b'{"id": "a5", "text": "   "}',
        b'{"id": "\\ud800", "text": "\xff\xfe undecodable"}',
        b"[1, 2]",
        b"",
        b'{"id": 9, "text": "last one"}',
    ]
    summary, out = _run(tmp_path, b"\n".join(lines) + b"\n", "in.jsonl", batch_size=4)
    records = _jsonl(out)
    assert len(records) == len(lines)
    assert [r["id"] for r in records] == ["a1", 2, "a3", "a4", "a5", 6, 7, 8, 9]
    assert records[0] == {"id": "a1", "headline": "first article here", "score": 0.0}
    assert records[1]["error"].startswith("invalid JSON") and records[1]["line"] == 2
    assert records[2]["error"] == (
        "missing field 'source' / 'article' / 'post' / 'description' / 'text'")
    assert records[3]["headline"] == "from the source"
    assert records[4]["error"] == "empty article"
    assert records[5]["error"] == "undecodable bytes (not UTF-8)"
    assert records[6]["error"] == "not a JSON object"
    assert records[7]["error"] == "empty line"
    assert records[8]["headline"] == "last one"
    assert summary.error_count == 6 and summary.errors["invalid JSON"] == 1


def test_jsonl_chosen_field_and_id_field(tmp_path: Path) -> None:
    content = b'{"key": "k1", "body": "the body text", "article": "ignored"}\n'
    reader = ReaderOptions(field="body", id_field="key")
    _, out = _run(tmp_path, content, "in.jsonl", reader=reader)
    assert _jsonl(out) == [{"id": "k1", "headline": "the body text", "score": 0.0}]


def test_tsv_by_index_and_csv_by_header_name(tmp_path: Path) -> None:
    tsv = '标题一\t内容 一 二 三 四\n标题二\n标题三\t内容"三"\n'.encode()
    _, out = _run(tmp_path, tsv, "in.tsv", reader=ReaderOptions(column="1", id_column="0"))
    assert _jsonl(out) == [
        {"id": "标题一", "headline": "内容 一 二", "score": 0.0},
        {"id": "标题二", "line": 2, "error": "missing column 1"},
        {"id": "标题三", "headline": '内容"三"', "score": 0.0},
    ]
    csv_text = b'id,article\nx1,"Oil, gas and\ncoal prices rose"\nx2,Stocks fell\nx3,\n'
    reader = ReaderOptions(column="article", id_column="id")
    _, out = _run(tmp_path, csv_text, "in.csv", out="csv.jsonl", reader=reader)
    assert _jsonl(out) == [
        {"id": "x1", "headline": "Oil, gas and", "score": 0.0},
        {"id": "x2", "headline": "Stocks fell", "score": 0.0},
        {"id": "x3", "line": 5, "error": "empty article"},  # the quoted field spans lines 2-3
    ]
    bad_id = b"\xffid\tgood article\nok\t\xfe\n"
    _, out = _run(tmp_path, bad_id, "bad.tsv", out="bad.jsonl", reader=ReaderOptions(id_column="0"))
    assert [r["error"] for r in _jsonl(out)] == ["undecodable bytes (not UTF-8)"] * 2
    with pytest.raises(HeadlineInputError, match=r"in\.csv:1: header has no column 'body'"):
        _run(tmp_path, csv_text, "in.csv", reader=ReaderOptions(column="body"))


def test_a_csv_header_is_not_an_article_with_the_default_column(tmp_path: Path) -> None:
    """With the default column (the last, by index) a CSV's header row was read as an
    article and got a headline of its own ("article"); a header is recognised by its article
    cell's name and skipped, with the records' lines still right; a first row that is an
    article stays one."""
    csv_text = b'id,Article\nx1,"Oil, gas and\ncoal prices rose"\nx2,Stocks fell\n'
    _, out = _run(tmp_path, csv_text, "in.csv", out="csv.jsonl")
    assert _jsonl(out) == [
        {"id": 2, "headline": "Oil, gas and", "score": 0.0},
        {"id": 4, "headline": "Stocks fell", "score": 0.0},
    ]
    headerless = "x1,石油价格上涨\nx2,股市下跌\n".encode()
    _, out = _run(tmp_path, headerless, "bare.csv", out="bare.jsonl")
    assert [r["id"] for r in _jsonl(out)] == [1, 2]


def test_one_unreadable_table_record_costs_that_record_only(tmp_path: Path) -> None:
    """A stray carriage return in an article, or an article past the csv module's field
    limit, raised `_csv.Error` out of the job: a traceback and the batch's good records lost.
    An error record now, the others read; in TSV (no quoting) both are text."""
    long = b"x" * 140_000  # past the csv module's default field limit: read whole now
    table = b"T1,first article\nT2,stray\rcr\nT3," + long + b"\nT4,fourth\n"
    _, out = _run(tmp_path, table, "in.csv", out="csv.jsonl")
    records = _jsonl(out)
    assert [r.get("headline", "")[:5] for r in records] == ["first", "", "xxxxx", "fourt"]
    assert records[1]["error"].startswith("unreadable CSV record")
    _, out = _run(tmp_path, table.replace(b",", b"\t"), "in.tsv", out="tsv.jsonl")
    assert [r.get("error") for r in _jsonl(out)] == [None] * 4
    # a quote never closed took every later line into one article, with no error
    open_quote = b'id,article\n1,"first"\n2,"second, never closed\n3,third\n4,fourth\n'
    _, out = _run(tmp_path, open_quote, "q.csv", out="q.jsonl")
    records = _jsonl(out)
    assert records[0]["headline"] == "first" and "never closed" in records[1]["error"]


def test_an_unreadable_csv_header_names_the_file_and_line(tmp_path: Path) -> None:
    """A header row the csv module cannot read (a stray carriage return) raised `_csv.Error`
    out of the job, a traceback naming neither the file nor the line."""
    table = b"id,arti\rcle\nx1,first article\n"
    with pytest.raises(HeadlineInputError, match=r"in\.csv:1: unreadable header"):
        _run(tmp_path, table, "in.csv", reader=ReaderOptions(column="article"))


def test_a_named_field_reads_json_records_without_an_extension(tmp_path: Path) -> None:
    """On stdin (no extension) or an .ndjson file, `--field body` was ignored and each raw
    JSON line became the article; a table's --column on plain text is refused."""
    content = b'{"id": "a1", "body": "the body text"}\n'
    for name in ("in.ndjson", "in"):
        _, out = _run(tmp_path, content, name, out=f"{name}.out",
                      reader=ReaderOptions(field="body"))
        assert _jsonl(out) == [{"id": "a1", "headline": "the body text", "score": 0.0}]
    with pytest.raises(HeadlineInputError, match="--column does not apply to text input"):
        _run(tmp_path, b"an article\n", "in.txt", out="t.out", reader=ReaderOptions(column="2"))


def test_tsv_output_has_four_clean_columns(tmp_path: Path) -> None:
    generator = FakeGenerator(words=3)
    source = tmp_path / "in.txt"
    source.write_text("a\tb c d\n\n", "utf-8")  # lines with tabs would be detected as TSV
    options = HeadlineJobOptions(reader=ReaderOptions(format="text"))
    generate_headlines(generator, source, tmp_path / "out.tsv", options)
    rows = [line.split("\t") for line in (tmp_path / "out.tsv").read_text("utf-8").splitlines()]
    assert rows == [["1", "a b c", "0.0", ""], ["2", "", "", "empty article"]]


def test_n_best_lists(tmp_path: Path) -> None:
    options = DecodeOptions(beam_size=3, n_best=3)
    _, out = _run(tmp_path, b"one two three four\n", decode=options)
    (record,) = _jsonl(out)
    assert record["headline"] == "one two three"
    assert [c["headline"] for c in record["n_best"]] == ["one two three", "one two", "one"]
    assert [c["score"] for c in record["n_best"]] == [0.0, -1.0, -2.0]


def test_batches_are_streamed_and_flushed(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    generator = RecordingGenerator(out)
    source = tmp_path / "in.txt"
    source.write_text("".join(f"article {i}\n" for i in range(1, 11)) + "\n", "utf-8")
    generate_headlines(generator, source, out, HeadlineJobOptions(batch_size=4))
    assert [len(b) for b in generator.batches] == [4, 4, 2]  # the last batch has an empty line
    assert generator.sizes[0] == 0 and generator.sizes[1] > 0  # batch 1 was on disk before 2
    assert generator.sizes[1] < generator.sizes[2] < out.stat().st_size
    assert len(_jsonl(out)) == 11


def test_strict_writes_the_good_records_before_the_bad_one(tmp_path: Path) -> None:
    content = b'{"text": "good one"}\n{"text": "good two"}\n{oops\n{"text": "never"}\n'
    with pytest.raises(HeadlineInputError, match=r"in\.jsonl:3: invalid JSON"):
        _run(tmp_path, content, "in.jsonl", strict=True, batch_size=10)
    assert [r["headline"] for r in _jsonl(tmp_path / "out.jsonl")] == ["good one", "good two"]


def test_resume_drops_a_partial_line_and_appends_the_rest(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("".join(f"article {i}\n" for i in range(1, 8)), "utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": 1, "headline": "x", "score": 0.0}\n{"id": 2, "headl', "utf-8")
    options = HeadlineJobOptions(resume=True, batch_size=2)
    summary = generate_headlines(FakeGenerator(), source, out, options)
    assert summary.resumed == 1 and summary.written == 6
    assert [r["id"] for r in _jsonl(out)] == list(range(1, 8))
    # Resuming a complete output does nothing; an output longer than the input is an error.
    assert generate_headlines(FakeGenerator(), source, out, options).written == 0
    source.write_text("article 1\n", "utf-8")
    with pytest.raises(HeadlineInputError, match="already has 7 records"):
        generate_headlines(FakeGenerator(), source, out, options)
    with pytest.raises(ValueError, match="stdout"):
        generate_headlines(FakeGenerator(), source, "-", options)


def test_records_done_on_missing_empty_and_unterminated_files(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    assert records_done(path) == 0
    path.write_bytes(b"no newline at all")
    assert records_done(path) == 0 and path.read_bytes() == b""
    path.write_bytes(b"a\nb\n")
    assert records_done(path) == 2 and path.read_bytes() == b"a\nb\n"


@pytest.mark.slow
def test_sigkilled_cli_run_resumes_exactly_once_in_order(tmp_path: Path) -> None:
    """Kill a real run of the script mid-job, then --resume: every input once, in order.

    The run stalls in its fifth batch, so it is killed with exactly four batches written,
    however long the machine takes to get there (a delay per batch raced the kill)."""
    total, batch, written = 60, 3, 4
    source = tmp_path / "in.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"doc{i}", "article": f"w{i} a b c"}) + "\n" for i in range(total)
        ),
        "utf-8",
    )
    out = tmp_path / "out.jsonl"
    def command(model: str, *extra: str) -> list[str]:
        return [sys.executable, str(FAKE_CLI), "--model", model, str(source), "-o", str(out),
                "--batch-size", str(batch), "--quiet", *extra]

    process = subprocess.Popen(command(f"fake://?stall_after={written}"))
    lines = 0
    while lines < written * batch and process.poll() is None:
        time.sleep(0.01)
        lines = out.read_bytes().count(b"\n") if out.exists() else 0
    assert process.poll() is None, "the run ended instead of stalling"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert out.read_bytes().count(b"\n") == written * batch
    with out.open("ab") as handle:  # what a kill in the middle of a write leaves behind
        handle.write(b'{"id": "doc')
    resumed = subprocess.run(
        command("fake://", "--resume"), capture_output=True, text=True, timeout=300, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [r["id"] for r in _jsonl(out)] == [f"doc{i}" for i in range(total)]


@pytest.mark.slow
def test_cli_stdin_to_stdout_and_exit_codes(tmp_path: Path) -> None:
    command = [sys.executable, str(FAKE_CLI), "--model", "fake://?words=2"]
    command += ["--output-format", "tsv"]
    done = subprocess.run(command, input="a b c\n\n", capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert done.stdout == "1\ta b\t0.0\t\n2\t\t\tempty article\n"
    assert "1 x empty article" in done.stderr and "-:2: empty article" in done.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n', "utf-8")
    strict = subprocess.run(
        [*command, str(bad), "--strict"], capture_output=True, text=True, check=False
    )
    assert strict.returncode == 1 and f"{bad}:2: invalid JSON" in strict.stderr
    usage = subprocess.run(
        [*command, "--greedy", "--n-best", "2"], capture_output=True, text=True, check=False
    )
    assert usage.returncode == 2 and "n_best must be 1" in usage.stderr


def test_decode_flags_are_the_shared_ones() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)

    def parse(*flags: str) -> DecodeOptions:
        return merge_options(None, flag_changes(parser.parse_args(["--model", "fake://", *flags])))

    assert parse() == DecodeOptions()
    beam = parse("--beam", "8", "--n-best", "3", "--length-penalty", "0.6", "--max-length", "20")
    assert (beam.strategy, beam.beam_size, beam.n_best) == ("beam", 8, 3)
    assert (beam.length_penalty, beam.max_length) == (0.6, 20)
    sample = parse("--sample", "0.7", "--top-k", "10", "--sample-seed", "1")
    assert (sample.strategy, sample.temperature, sample.top_k) == ("sample", 0.7, 10)
    assert parse("--greedy", "--no-repeat-ngram", "3").strategy == "greedy"
    diverse = parse("--diverse-beam", "2", "--diversity-penalty", "0.5")
    assert (diverse.strategy, diverse.beam_groups, diverse.beam_size) == ("diverse_beam", 2, 4)
    assert diverse.diversity_penalty == 0.5
    with pytest.raises(ValueError, match="--beam"):  # greedy search has no beam
        parse("--greedy", "--beam", "3")
    with pytest.raises(SystemExit):
        parser.parse_args(["--model", "m", "--greedy", "--sample", "0.7"])


def test_real_generator_through_the_job_with_resume(tiny_bundle: Path, tmp_path: Path) -> None:
    """The lead's Generator (tiny trained bundle) fits the protocol; resume completes it."""
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(tiny_bundle)
    source = tmp_path / "in.jsonl"
    articles = ["how are you today?", "", "what is your name?", "see you tomorrow", "hello"]
    source.write_text("".join(json.dumps({"text": a}) + "\n" for a in articles), "utf-8")
    out = tmp_path / "out.jsonl"
    decode = DecodeOptions(beam_size=2, n_best=2, max_length=6)
    summary = generate_headlines(
        generator, source, out, HeadlineJobOptions(decode=decode, batch_size=2)
    )
    assert summary.written == 5 and summary.error_count == 1
    first = _jsonl(out)
    assert [r["id"] for r in first] == [1, 2, 3, 4, 5] and first[1]["error"] == "empty article"
    for record in first[:1] + first[2:]:
        assert isinstance(record["headline"], str) and isinstance(record["score"], float)
        assert len(record["n_best"]) == 2
    lines = out.read_bytes().split(b"\n")
    out.write_bytes(b"\n".join(lines[:3]) + b"\n" + lines[3][:7])  # 3 complete + a partial line
    options = HeadlineJobOptions(decode=decode, batch_size=2, resume=True)
    assert generate_headlines(generator, source, out, options).resumed == 3
    assert _jsonl(out) == first  # beam search is deterministic


def test_the_input_as_output_is_refused_before_it_is_emptied(tmp_path: Path) -> None:
    """`s2s headlines same.jsonl -o same.jsonl` opened the output first: the articles were
    gone, and the job said "0 records written", exit 0."""
    source = tmp_path / "same.jsonl"
    source.write_bytes(b'{"article": "the body text"}\n')
    with pytest.raises(ValueError, match="the output is the input file"):
        generate_headlines(FakeGenerator(words=3), source, source, HeadlineJobOptions())
    assert source.read_bytes() == b'{"article": "the body text"}\n'


def test_an_error_before_the_first_result_keeps_the_existing_output(tmp_path: Path) -> None:
    """The output was opened (emptied) before the reader looked at the input: a header
    without the named column, or --strict on a bad first record, wiped the last run's
    headlines."""
    previous = b'{"id": 1, "headline": "from the last run", "score": 0.0}\n'
    (tmp_path / "out.jsonl").write_bytes(previous)
    with pytest.raises(HeadlineInputError, match="header has no column 'body'"):
        _run(tmp_path, b"id,article\nx1,text\n", "in.csv", reader=ReaderOptions(column="body"))
    assert (tmp_path / "out.jsonl").read_bytes() == previous
    with pytest.raises(HeadlineInputError, match="invalid JSON"):
        _run(tmp_path, b'{oops\n{"text": "fine"}\n', "in.jsonl", strict=True)
    assert (tmp_path / "out.jsonl").read_bytes() == previous
    _, out = _run(tmp_path, b"", "empty.txt")
    assert out.read_bytes() == b""  # a run that completes replaces it, even with no records


def test_a_feed_item_gets_a_headline_of_its_description_not_its_feed_url(tmp_path: Path) -> None:
    """Feed exports have `"source": "https://.../rss"`: `source` was tried before the item's
    text, so every headline was the feed's URL. The article field now follows the corpus
    readers' pairs (`source` with `target`, else `description` with `title`)."""
    items = [
        {"title": "A", "description": "Council approves budget", "source": "https://x.org/rss"},
        {"source": "the article", "target": "its headline", "text": "a note"},
        {"source": "https://x.org/rss", "description": "no title here"},
    ]
    content = "".join(json.dumps(item) + "\n" for item in items).encode()
    records = _jsonl(_run(tmp_path, content, "in.jsonl")[1])
    assert [r.get("headline") for r in records[:2]] == ["Council approves budget", "the article"]
    assert records[2]["error"] == "ambiguous fields 'source' / 'description': give --field"
