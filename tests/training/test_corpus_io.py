"""The training/validation split: de-duplicated, content-hashed, one function for all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nlp.corpus.pipeline import VALID, split_pairs
from nlp.corpus.records import Pair
from nlp.training import prepare, run
from nlp.training.checkpoint import TrainState
from nlp.training.corpus_io import CorpusSpec, train_valid
from nlp.util.config import ExperimentConfig
from tests.conftest import tiny_overrides, write_jsonl

PAIRS = [(f"question number {i} ?", f"answer {i} .") for i in range(60)]


def _examples_given_to_training(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, valid: CorpusSpec | None = None
) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Run `train` up to the point where it hands examples to the trainer."""
    encoded: list[set[tuple[str, str]]] = []
    real_tokenize_pairs = prepare.tokenize_pairs

    def tokenize_pairs(codec, groups, **options):  # type: ignore[no-untyped-def]
        encoded.extend({(p.source, p.target) for p in pairs} for pairs in groups)
        return real_tokenize_pairs(codec, groups, **options)

    def fit(*args, **named):  # type: ignore[no-untyped-def]
        return TrainState()

    monkeypatch.setattr(prepare, "tokenize_pairs", tokenize_pairs)
    monkeypatch.setattr(run, "_fit", fit)
    corpus = write_jsonl(tmp_path / "train.jsonl", PAIRS * 3)  # every pair three times
    config = ExperimentConfig().with_overrides(tiny_overrides(**{"train.valid_fraction": 0.2}))
    run.train(config, CorpusSpec((corpus,)), run.RunOptions(tmp_path / "run", verbose=0), valid)
    train, valid = encoded  # train() tokenizes the training and the validation pairs at once
    return train, valid


def test_repeated_pairs_never_land_on_both_sides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, valid = _examples_given_to_training(tmp_path, monkeypatch)
    assert train and valid
    assert not train & valid
    assert len(train) + len(valid) == len(PAIRS)


def test_validation_corpus_pairs_also_in_training_are_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    valid_file = write_jsonl(tmp_path / "valid.jsonl", [*PAIRS[:5], ("brand new ?", "yes .")])
    train, valid = _examples_given_to_training(tmp_path, monkeypatch, CorpusSpec((valid_file,)))
    assert len(valid) == 1 and not train & valid


def test_training_uses_the_corpus_pipeline_split() -> None:
    pairs = [Pair(s, t) for s, t in PAIRS]
    train, valid = train_valid(pairs, None, 0.3, seed=5)
    expected = [p for side, p in split_pairs(pairs, 0.3, 5) if side == VALID]
    assert valid == expected
    assert len(train) == len(pairs) - len(expected)


def test_a_split_that_holds_out_nothing_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no validation pairs"):
        train_valid([Pair("a", "b"), Pair("a", "b")], None, 0.01, seed=1)


def test_training_reports_how_many_targets_are_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ten targets of eight tokens over a limit of four: the corpus statistics say so."""

    class NoTraining:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def fit(self, *args: object, **kwargs: object) -> TrainState:
            return TrainState(epoch=1, best_epoch=1)  # as if one epoch had been kept

    monkeypatch.setattr(run, "Trainer", NoTraining)
    pairs = [
        (f"question {i} ?", "a much longer answer than that ." if i % 3 == 0 else f"answer {i} .")
        for i in range(30)
    ]
    corpus = write_jsonl(tmp_path / "train.jsonl", pairs)
    config = ExperimentConfig().with_overrides(
        tiny_overrides(**{"train.valid_fraction": 0.2, "train.max_target_length": 4})
    )
    run.train(config, CorpusSpec((corpus,)), run.RunOptions(tmp_path / "run"))
    found = re.search(r"(\d+) training and (\d+) validation targets over "
                      r"train.max_target_length=4 tokens", capsys.readouterr().err)
    assert found is not None
    assert int(found[1]) + int(found[2]) == 10


def test_a_runs_validation_file_is_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metadata holds the path as training was given it (`--out runs/chat`: relative to
    where it ran); `s2s index` run elsewhere, or on a copied run, must still find the file,
    or it indexes the validation pairs (or holds out pairs that are not validation)."""
    from nlp.training.corpus_io import run_validation_file, run_validation_pairs
    from nlp.tuning.command import _run_valid_file

    run_dir = tmp_path / "copy" / "runs" / "chat"
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "valid.jsonl").write_text('{"source": "hi", "target": "hello"}\n', "utf-8")
    metadata = {"corpus": {"valid_file": "runs/chat/valid.jsonl"}}
    monkeypatch.chdir(tmp_path)  # not where training ran
    held = run_validation_pairs(metadata, run_dir / "model")
    assert held is not None and [(p.source, p.target) for p in held] == [("hi", "hello")]
    assert run_validation_pairs(metadata) is None  # the recorded path alone names nothing here
    assert run_validation_pairs({}, run_dir / "model") is None
    # s2s tune-decoding reads the same file (it failed on a copied run: "pass --corpus")
    assert run_validation_file(metadata, run_dir / "model") == run_dir / "valid.jsonl"
    assert _run_valid_file(metadata, run_dir / "model") == run_dir / "valid.jsonl"


def test_a_validation_pair_written_otherwise_than_its_training_twin_is_left_out() -> None:
    """`--valid` pairs that are training pairs were left out only when written alike;
    "I see.Do you?" against "I see . Do you ?" stayed, as in `corpus convert
    --exclude-corpus` before: both compare case and spacing aside now."""
    train = [Pair("I see . Do you like it ?", "Yes , a lot ."), Pair("hi", "hello")]
    valid = [Pair("i see.Do you like it?", "Yes, a lot."), Pair("new post", "new reply")]
    _, held = train_valid(train, valid, 0.05, 1)
    assert [(p.source, p.target) for p in held] == [("new post", "new reply")]


def test_a_validation_file_beside_a_raw_corpus_takes_only_its_own_options(
    tmp_path: Path,
) -> None:
    """`--corpus raw.jsonl --source-field content --target-field title --valid valid.jsonl`:
    the convert output was read with the raw file's field names ("missing field 'content'",
    then "no usable pairs"); with `--encoding latin-1` a UTF-8 one was silently mis-read."""
    import json

    from nlp.training.corpus_io import CorpusSpec, load_pairs

    valid = tmp_path / "valid.jsonl"
    valid.write_text(json.dumps({"source": "café au lait", "target": "oui"}) + "\n", "utf-8")
    for options in ((("source_field", "content"), ("target_field", "title")),
                    (("encoding", "latin-1"),)):
        pairs = load_pairs(CorpusSpec((valid,), "auto", False, options, True))
        assert [(p.source, p.target) for p in pairs] == [("café au lait", "oui")]
