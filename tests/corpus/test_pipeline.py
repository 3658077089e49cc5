"""Normalisation, the pair pipeline (filters, dedupe, split, atomic write) and the CLI."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlp.corpus import (
    JsonlWriter,
    Pair,
    PipelineOptions,
    ReadReport,
    assign_split,
    process,
    split_pairs,
    write_jsonl,
)
from nlp.corpus.command import describe_lengths, register
from nlp.text import normalize_text

# --- normalize_text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("１２３ＡＢＣａｂｃ", "123ABCabc"),  # full-width digits and letters -> ASCII
        ("Ｈｅｌｌｏ％＠＃", "Hello%@#"),
        ("中文\u3000空格", "中文 空格"),  # ideographic space
        ("zero\u200bwidth\u200c\u200djoin\ufeff", "zerowidthjoin"),
        # the joiner and tags that are parts of emoji stay: removed, "👨‍👩‍👧" fell apart
        ("a 👨\u200d👩\u200d👧, 👩\u200d💻", "a 👨\u200d👩\u200d👧, 👩\u200d💻"),
        ("🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f!",
         "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f!"),
        ("\ufeffbom at start", "bom at start"),
        ("ctrl\x03chars\x00\x7f here", "ctrlchars here"),
        ("  tabs\tand\nnew\r\nlines  ", "tabs and new lines"),
        ("non\u00a0breaking", "non breaking"),
        ("ﬁne ligature", "fine ligature"),
        ("e\u0301", "é"),  # composed
        ("soft\u00adhyphen", "softhyphen"),
        ("", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("I ’ m sorry .", "I'm sorry ."),  # DailyDialog's spaced curly apostrophe
        ("That ’ s a good idea , isn ’ t it ?", "That's a good idea , isn't it ?"),
        ("we ’ ll see , you ’ re right , he ’ d", "we'll see , you're right , he'd"),
        ("it ' s fine", "it's fine"),
        ("I’m here", "I'm here"),
        ("He said ‘ yes ’ to me .", "He said ‘ yes ’ to me ."),  # quotation marks stay
        ("I said 'sure' then", "I said 'sure' then"),
        ("‘好’ 的", "‘好’ 的"),
        ("the letter 's' is silent", "the letter 's' is silent"),  # a quoted letter
        ("the letter ‘s’ is silent", "the letter ‘s’ is silent"),
        ("press 'd' or 't' , don ' t", "press 'd' or 't' , don't"),
        ("it 's what we 're told", "it's what we're told"),
    ],
)
def test_normalize_joins_contractions(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_spaced_contractions_tokenize_like_written_ones() -> None:
    """Round trip: training data written "I ’ m" and input written "I'm" meet as one form."""
    from nlp.tokenizers.words import WordTokenizer

    tokenizer = WordTokenizer(lowercase=False)
    spaced = tokenizer.tokenize(normalize_text("I ’ m sure it ’ s fine ."))
    assert spaced == tokenizer.tokenize(normalize_text("I'm sure it's fine."))
    assert tokenizer.detokenize(spaced) == "I'm sure it's fine."


def test_normalize_keeps_chinese_punctuation_full_width() -> None:
    text = "你好，世界！真的吗？是的；注意：（括号）好～……。、《书》“引号”"
    assert normalize_text(text) == text
    assert normalize_text("价格：１００元，ＯＫ！") == "价格：100元，OK！"


def test_normalize_is_idempotent() -> None:
    text = "  Ｆｕｌｌ\u3000width，中文！\u200b ok  "
    once = normalize_text(text)
    assert normalize_text(once) == once


# --- process ----------------------------------------------------------------------------------


def pairs_of(*sides: tuple[str, str]) -> list[Pair]:
    return [Pair(source, target, f"mem:{n}") for n, (source, target) in enumerate(sides, 1)]


def run(pairs: list[Pair], **options: object) -> tuple[list[Pair], ReadReport]:
    report = ReadReport()
    report.read = len(pairs)
    return list(process(pairs, PipelineOptions(**options), report)), report  # type: ignore[arg-type]


def test_process_normalises_then_dedupes() -> None:
    kept, report = run(pairs_of(("ＡＢＣ", "x"), ("ABC", "x"), ("ABC ", " x"), ("ABC", "y")))
    assert [(p.source, p.target) for p in kept] == [("ABC", "x"), ("ABC", "y")]
    assert kept[1].origin == "mem:4"
    assert report.skipped["duplicate"] == 2
    assert report.kept == 2


def test_process_without_dedupe_or_normalisation() -> None:
    kept, _ = run(pairs_of(("ＡＢＣ", "x"), ("ＡＢＣ", "x")), normalize=False, dedupe=False)
    assert [p.source for p in kept] == ["ＡＢＣ", "ＡＢＣ"]


def test_process_lowercase_and_empty_after_normalisation() -> None:
    kept, report = run(pairs_of(("Hello", "World"), ("\u200b", "x")), lowercase=True)
    assert [(p.source, p.target) for p in kept] == [("hello", "world")]
    assert report.skipped["empty source"] == 1


def test_length_filters_in_chars_and_tokens() -> None:
    data = pairs_of(("one two three", "a"), ("one", "a b c d"), ("x", "a"), ("一二三四五", "标题"))
    kept, report = run(data, max_source_length=5)
    assert [p.source for p in kept] == ["one", "x", "一二三四五"]
    assert report.skipped["source too long"] == 1
    kept, report = run(data, length_unit="tokens", min_source_length=1, max_target_length=3)
    assert [p.source for p in kept] == ["one two three", "x", "一二三四五"]
    assert report.skipped["target too long"] == 1
    kept, report = run(data, min_target_length=2)
    assert [p.source for p in kept] == ["one", "一二三四五"]
    assert report.skipped["target too short"] == 2


def test_pipeline_options_are_validated() -> None:
    with pytest.raises(ValueError, match="length_unit"):
        PipelineOptions(length_unit="words")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_source_length"):
        PipelineOptions(max_source_length=-1)


def test_process_streams_lazily() -> None:
    consumed: list[int] = []

    def source() -> Iterator[Pair]:
        for n in range(1_000_000):
            if n >= 3:
                raise AssertionError("process read ahead of its consumer")
            consumed.append(n)
            yield Pair(f"s{n}", f"t{n}")

    stream = process(source(), PipelineOptions(), ReadReport())
    assert next(stream).source == "s0"
    assert next(stream).source == "s1"
    assert consumed == [0, 1]


# --- split ------------------------------------------------------------------------------------

MANY = [Pair(f"source {n}", f"target {n}") for n in range(2000)]


def valid_set(pairs: list[Pair], seed: int, fraction: float = 0.1) -> set[Pair]:
    return {pair for side, pair in split_pairs(pairs, fraction, seed) if side == "valid"}


def test_split_is_deterministic_and_order_independent() -> None:
    first = valid_set(MANY, seed=7)
    assert first == valid_set(list(reversed(MANY)), seed=7)
    assert 140 < len(first) < 260  # about 10% of 2000
    assert first != valid_set(MANY, seed=8)


def test_split_is_disjoint_and_complete() -> None:
    sides = list(split_pairs(MANY, 0.2, seed=1))
    train = {pair for side, pair in sides if side == "train"}
    valid = {pair for side, pair in sides if side == "valid"}
    assert not train & valid
    assert len(train) + len(valid) == len(MANY)


def test_split_edges_and_duplicates() -> None:
    assert not valid_set(MANY, seed=1, fraction=0.0)
    assert len(valid_set(MANY, seed=1, fraction=1.0)) == len(MANY)
    twin = Pair("same", "pair", "a:1"), Pair("same", "pair", "b:9")
    assert assign_split(twin[0], 0.5, 3) == assign_split(twin[1], 0.5, 3)
    with pytest.raises(ValueError, match="valid_fraction"):
        list(split_pairs(MANY, 1.5, seed=1))


# --- writing ----------------------------------------------------------------------------------


def test_write_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "out" / "train.jsonl"
    count = write_jsonl(iter(pairs_of(("你好", "hi"), ("a", "b"))), path)
    assert count == 2
    lines = path.read_text("utf-8").splitlines()
    assert json.loads(lines[0]) == {"source": "你好", "target": "hi"}
    assert "你好" in lines[0]  # not \\u-escaped
    assert list(path.parent.iterdir()) == [path]


def test_write_jsonl_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("old content\n", "utf-8")

    def failing() -> Iterator[Pair]:
        yield Pair("a", "b")
        raise RuntimeError("reader died")

    with pytest.raises(RuntimeError, match="reader died"):
        write_jsonl(failing(), path)
    assert path.read_text("utf-8") == "old content\n"
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_jsonl_writer_counts(tmp_path: Path) -> None:
    with JsonlWriter(tmp_path / "x.jsonl") as writer:
        writer.write(Pair("a", "b"))
    assert writer.count == 1


# --- command line -----------------------------------------------------------------------------


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="s2s")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["corpus", *argv])
    return args.func(args)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    lines = [json.dumps({"source": f"question {n}", "target": f"answer {n}"}) for n in range(200)]
    lines[10] = "{broken"
    lines.append(lines[0])  # a duplicate
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_cli_convert_with_split(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, valid = tmp_path / "train.jsonl", tmp_path / "valid.jsonl"
    code = cli(
        "convert",
        "--input",
        str(corpus),
        "--output",
        str(train),
        "--valid-output",
        str(valid),
        "--valid-fraction",
        "0.1",
        "--seed",
        "3",
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "read 201, kept 199, skipped 2 (" in err
    assert "duplicate 1" in err and "invalid json 1" in err
    assert f"{corpus}:11: invalid json" in err
    n_train = len(train.read_text("utf-8").splitlines())
    n_valid = len(valid.read_text("utf-8").splitlines())
    assert n_train + n_valid == 199 and 5 < n_valid < 40


def test_cli_strict_exit_code_and_no_output(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    assert cli("convert", "--input", str(corpus), "--output", str(out), "--strict") == 1
    assert f"error: {corpus}:11: invalid json" in capsys.readouterr().err
    assert not out.exists()


def test_cli_usage_errors(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "out.jsonl")
    assert cli("convert", "--input", str(corpus), "--output", out, "--context-turns", "2") == 2
    assert "context_turns do not apply to format jsonl" in capsys.readouterr().err
    assert cli("convert", "--input", str(tmp_path / "nope.tsv"), "--output", out) == 2
    assert cli("convert", "--input", str(corpus), "--output", out, "--columns", "1") == 2
    assert cli("convert", "--input", str(corpus), "--output", out, "--valid-output", out) == 2


def test_cli_valid_output_naming_the_output_otherwise_is_refused(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--output out.jsonl --valid-output ./out.jsonl` passed the string comparison, and the
    validation pairs were replaced by the training pairs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "out.jsonl")
    for valid in ("./out.jsonl", str(tmp_path / "out.jsonl"), "link.jsonl"):
        code = cli("convert", "--input", str(corpus), "--output", "out.jsonl",
                   "--valid-output", valid)
        assert code == 2, valid
        assert "--valid-output must differ from --output" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_tsv_columns_and_length_filter(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    path.write_text("x\tshort\tfirst\ny\ta much longer source\tsecond\n", "utf-8")
    out = tmp_path / "out.jsonl"
    code = cli(
        "convert",
        "--input",
        str(path),
        "--format",
        "tsv",
        "--columns",
        "1,2",
        "--output",
        str(out),
        "--max-source-length",
        "10",
    )
    assert code == 0
    assert [json.loads(line) for line in out.read_text("utf-8").splitlines()] == [
        {"source": "short", "target": "first"}
    ]


def test_cli_stats(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("stats", "--input", str(corpus)) == 0
    out = capsys.readouterr().out
    assert "pairs kept: 199 (read 201, skipped 2, duplicates 1)" in out
    assert "source chars: p50 12  p90 12  p95 12  p99 12  max 12  mean 11.5" in out
    assert "vocabulary estimate: 201 distinct tokens" in out  # question, answer, 199 numbers


def test_describe_lengths() -> None:
    assert describe_lengths([]) == "no pairs"
    assert describe_lengths(range(1, 101)) == "p50 50  p90 90  p95 95  p99 99  max 100  mean 50.5"


def test_every_option_has_help() -> None:
    parser = argparse.ArgumentParser(prog="s2s")
    subparsers = parser.add_subparsers()
    register(subparsers)
    corpus_parser = subparsers.choices["corpus"]
    commands = next(a for a in corpus_parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        for action in sub._actions:
            assert action.help, f"corpus {name} {action.option_strings} has no help"


def test_curly_apostrophes_in_words_become_ascii_but_chinese_quotes_stay() -> None:
    assert normalize_text("I’ve got it, don’t worry") == "I've got it, don't worry"
    assert normalize_text("他说‘你好’吧") == "他说‘你好’吧"


def test_cli_convert_excludes_what_training_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A test split drops the dialogues found whole in the training corpus, and the pairs found
    there, and keeps the rest of a dialogue that shares only a common exchange (DailyDialog's
    `validation/` repeats some `train/` dialogues verbatim)."""
    train_raw = tmp_path / "dialogues_train.txt"
    train_raw.write_text(
        "Hi , how are you ? __eou__ Fine , thanks . __eou__ Good to hear . __eou__\n"
        "Thank you . __eou__ You're welcome . __eou__\n",
        "utf-8",
    )
    test_raw = tmp_path / "dialogues_validation.txt"
    test_raw.write_text(
        # the first training dialogue, spaced and cased otherwise: goes whole
        "Hi, how are you? __eou__ fine , thanks. __eou__ Good to hear . __eou__\n"
        # shares one exchange with training: only that pair goes
        "Can you help me ? __eou__ Sure . __eou__ Thank you . __eou__ You're welcome . __eou__\n"
        # a new dialogue: kept whole
        "Where is the bank ? __eou__ Next to the park . __eou__\n",
        "utf-8",
    )
    train = tmp_path / "dd.jsonl"
    assert cli("convert", "--input", str(train_raw), "--output", str(train)) == 0
    test = tmp_path / "dd-test.jsonl"
    code = cli(
        "convert", "--input", str(test_raw), "--output", str(test), "--exclude-corpus", str(train)
    )
    assert code == 0
    err = capsys.readouterr().err
    kept = [json.loads(line) for line in test.read_text("utf-8").splitlines()]
    assert [(r["source"], r["target"]) for r in kept] == [
        ("Can you help me ?", "Sure ."),
        ("Sure .", "Thank you ."),
        ("Where is the bank ?", "Next to the park ."),
    ]
    assert "pair of a conversation found whole in an excluded corpus 2" in err
    assert "pair in an excluded corpus 1" in err
    assert "left out 1 conversations found whole in --exclude-corpus" in err
    assert f"excluding 3 pairs of {train}" in err


def test_a_conversion_that_keeps_nothing_leaves_the_outputs_as_they_were(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped field name skips every record: the converter said "no pairs kept" and had
    already replaced a good output with an empty file."""
    out, valid = tmp_path / "keep.jsonl", tmp_path / "keep-valid.jsonl"
    assert cli("convert", "--input", str(corpus), "--output", str(out),
               "--valid-output", str(valid)) == 0
    before = out.read_bytes(), valid.read_bytes()
    assert before[0]
    records = tmp_path / "records.jsonl"
    records.write_text('{"src": "a b", "tgt": "c d"}\n', "utf-8")
    for split in ((), ("--valid-output", str(valid))):
        assert cli("convert", "--input", str(records), "--output", str(out), "--source-field",
                   "source", "--target-field", "target", *split) == 1
        assert "no pairs kept; no file written" in capsys.readouterr().err
        assert (out.read_bytes(), valid.read_bytes()) == before


def test_converted_files_are_split_again_by_training_with_its_defaults(
    corpus: Path, tmp_path: Path
) -> None:
    """The converter's default seed was train.seed's: the pairs it kept for training all sat
    above the fraction training holds out with the same seed, so `s2s train` on its output
    without --valid stopped with "held none out"."""
    from nlp.training.corpus_io import CorpusSpec, load_pairs, train_valid
    from nlp.util.config import TrainConfig

    out = tmp_path / "train.jsonl"
    assert cli("convert", "--input", str(corpus), "--output", str(out),
               "--valid-output", str(tmp_path / "valid.jsonl")) == 0
    pairs = load_pairs(CorpusSpec((out,)))
    config = TrainConfig()
    train, held = train_valid(pairs, None, config.valid_fraction, config.seed)
    assert held and len(train) + len(held) == len(pairs)


def test_an_excluded_corpus_is_read_with_the_inputs_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--exclude-corpus` read its files without the reader options the inputs were read
    with: records with other field names gave no pair ("excluding 0 pairs"), and the pair
    the model trained on stayed in the test file."""
    def records(path: Path, rows: list[tuple[str, str]]) -> Path:
        path.write_text("".join(json.dumps({"content": c, "title": t}) + "\n" for c, t in rows),
                        "utf-8")
        return path

    train = records(tmp_path / "train.jsonl", [("the article one", "headline one")])
    raw = records(tmp_path / "raw.jsonl", [("the article one", "headline one"),
                                           ("the article two", "headline two")])
    test = tmp_path / "test.jsonl"
    fields = ("--source-field", "content", "--target-field", "title")
    assert cli("convert", "--input", str(raw), "--output", str(test), *fields,
               "--exclude-corpus", str(train)) == 0
    kept = [json.loads(line)["source"] for line in test.read_text("utf-8").splitlines()]
    assert kept == ["the article two"]
    assert f"excluding 1 pairs of {train}" in capsys.readouterr().err


def test_an_excluded_file_written_by_convert_is_read_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The usual excluded file is this command's own output (source and target, UTF-8): read
    with the raw inputs' field names or encoding it gave no pair, excluded nothing and the
    command succeeded; and an excluded file giving no pair is an error, not a silent no-op."""
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(json.dumps({"content": c, "title": t}) + "\n" for c, t in (
        ("the article one", "headline one"), ("the article two", "headline two"))), "utf-8")
    fields = ("--source-field", "content", "--target-field", "title")
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text(json.dumps({"source": "the article one", "target": "headline one"}) + "\n",
                     "utf-8")
    assert cli("convert", "--input", str(raw), "--output", str(test), *fields,
               "--exclude-corpus", str(train)) == 0
    kept = [json.loads(line)["source"] for line in test.read_text("utf-8").splitlines()]
    assert kept == ["the article two"]
    empty = tmp_path / "other.jsonl"
    empty.write_text(json.dumps({"body": "x", "head": "y"}) + "\n", "utf-8")
    assert cli("convert", "--input", str(raw), "--output", str(tmp_path / "t2.jsonl"), *fields,
               "--exclude-corpus", str(empty)) != 0
    assert "exclude nothing" in capsys.readouterr().err


def test_converting_a_conversation_log_says_its_pairs_are_people_s_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read as a log, a file's pairs stay out of retrieval indexes unless asked; converted,
    they are plain pairs an index would send to other people, and nothing said so."""
    from nlp.chat.conversation_log import ConversationLog

    log_file = tmp_path / "bot-log.jsonl"
    log = ConversationLog(log_file, salt="s")
    log.user("1", "my phone number is five five five")
    log.bot("1", "hello")
    log.user("1", "call me at home tonight please")
    log.close()
    assert cli("convert", "--input", str(log_file), "--output", str(tmp_path / "out.jsonl")) == 0
    assert "held what people wrote to the bot" in capsys.readouterr().err
