"""`s2s headlines --runner beam`: the Beam pipeline (Beam's local FnApiRunner, the DirectRunner's
batch engine) writes what the in-process job writes (same records in the same order, same
headlines and errors, scores to the written precision) for 300 articles with bad records and a
tiny trained headline model, every input exactly once, also sharded over 2 workers."""

from __future__ import annotations

import bisect
import json
import os
from pathlib import Path

import pytest

pytest.importorskip(
    "apache_beam",
    reason="apache-beam is not installed (the optional extra: pip install '.[beam]'); "
    "`make test` installs it",
)

from s2s.cli import main
from tests.conftest import REPO, tiny_overrides

pytestmark = pytest.mark.slow  # trains a model, then runs Beam (2 workers too)

ARTICLES = 300
BAD = {  # line -> (raw line, the error the in-process job reports)
    7: (b'{"id": "a7", "article": "unterminated', "invalid JSON"),
    31: (b"", "empty line"),
    58: (b'{"id": "a58", "title": "no article field"}', "missing field"),
    90: (b'{"id": "a90", "article": "   "}', "empty article"),
    123: (b'["not", "an", "object"]', "not a JSON object"),
    150: (b'{"id": "a150", "article": 42}', "field 'article' is not a string"),
    201: (b'{"id": "a201", "article": "caf\xe9 latin-1 bytes"}', "undecodable bytes"),
    277: (b'{"id": "a277", "article": ""}', "empty article"),
}


@pytest.fixture(scope="module")
def headline_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy model trained for a few epochs on the shipped English sample (seconds): it
    copies source words, so its headlines differ from article to article."""
    from nlp.training.corpus_io import CorpusSpec
    from nlp.training.run import RunOptions, train
    from nlp.util.config import ExperimentConfig

    out = tmp_path_factory.mktemp("beam_headline_run")
    settings = {"data.task": "headline", "train.epochs": 4, "model.copy": "true"}
    config = ExperimentConfig().with_overrides(tiny_overrides(**settings))
    corpus = CorpusSpec((REPO / "corpora" / "headlines-en.jsonl",))
    train(config, corpus, RunOptions(out, verbose=0))
    return out / "model"


@pytest.fixture(scope="module")
def articles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 JSONL records: the sample's articles (cut to different lengths so that batches
    differ), with 8 bad records of 7 kinds at fixed lines."""
    sources = [
        json.loads(line)["source"]
        for line in (REPO / "corpora" / "headlines-en.jsonl").read_text("utf-8").splitlines()
    ]
    lines = []
    for n in range(1, ARTICLES + 1):
        if n in BAD:
            lines.append(BAD[n][0])
            continue
        words = sources[n % len(sources)].split()
        text = " ".join(words[: 8 + (n * 7) % len(words)])
        lines.append(json.dumps({"id": f"a{n}", "article": text}).encode())
    path = tmp_path_factory.mktemp("beam_articles") / "articles.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _run(model: Path | str, source: Path, out: Path, *extra: str) -> int:
    """`s2s headlines` in this process: beam search of width 3, 4 to 10 tokens per headline
    (short, and words rather than the tiny model's end token alone)."""
    return main([
        "headlines", "--model", str(model), str(source), "-o", str(out),
        "--beam", "3", "--min-length", "4", "--max-length", "10", *extra,
    ])


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _assert_same(got: list[dict], expected: list[dict]) -> None:
    """Record by record: the same ids, headlines and errors; scores (written rounded to 4
    decimals) equal up to one rounding step, because a batch of another size or composition
    sums in another order and moves raw scores by ~1e-6 (the in-process job with another
    --batch-size does the same)."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert {k: v for k, v in g.items() if k != "score"} == {
            k: v for k, v in e.items() if k != "score"
        }
        assert abs(g.get("score", 0.0) - e.get("score", 0.0)) <= 1.5e-4, (g, e)


def test_beam_pipeline_writes_what_the_in_process_job_writes(
    headline_model: Path, articles: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = tmp_path / "in-process.jsonl"
    assert _run(headline_model, articles, expected) == 0
    in_process_log = capsys.readouterr().err

    single = tmp_path / "beam.jsonl"
    assert _run(headline_model, articles, single, "--runner", "beam", "--batch-size", "16") == 0
    beam_log = capsys.readouterr().err
    records = _records(expected)
    _assert_same(_records(single), records)
    assert len(records) == ARTICLES  # every input exactly once, in input order
    for n, record in enumerate(records, 1):
        if n in BAD:
            assert record["line"] == n and record["error"].startswith(BAD[n][1]), record
        else:
            assert record["id"] == f"a{n}" and record["headline"], record
    assert len({r["headline"] for r in records if "headline" in r}) > 20  # not one stock reply
    # The summary names the bad records by file and line, as the in-process job's does.
    for n in BAD:
        assert f"{articles}:{n}: " in beam_log
    summary = [line for line in beam_log.splitlines() if "records written" in line]
    assert summary and summary[0].startswith("300 records written (292 headlines, 8 errors)")
    assert [line for line in beam_log.splitlines() if line.startswith("  ")] == [
        line for line in in_process_log.splitlines() if line.startswith("  ")
    ]

    # Two worker processes, sharded output: the same records, each once.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    sharded = tmp_path / "sharded.jsonl"
    assert _run(
        headline_model, articles, sharded, "--runner", "beam", "--num-shards", "2",
        "--beam-options=--direct_num_workers=2 --direct_running_mode=multi_processing",
    ) == 0
    shards = sorted(tmp_path.glob("sharded.jsonl-*-of-00002"))
    assert [p.name for p in shards] == ["sharded.jsonl-00000-of-00002",
                                        "sharded.jsonl-00001-of-00002"]
    by_id = {r["id"]: r for r in records}
    sharded_records = [r for p in shards for r in _records(p)]
    assert len(sharded_records) == ARTICLES and {r["id"] for r in sharded_records} == set(by_id)
    _assert_same(sharded_records, [by_id[r["id"]] for r in sharded_records])


def test_beam_runner_strict_fails_at_the_first_bad_record(
    headline_model: Path, articles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(headline_model, articles, tmp_path / "out.jsonl", "--runner", "beam", "--strict")
    assert code == 1
    assert f"{articles}:7: invalid JSON" in capsys.readouterr().err


def test_beam_runner_refuses_what_it_cannot_do(
    headline_model: Path, articles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "out.jsonl")
    model = str(headline_model)
    assert main(["headlines", "--model", model, str(articles), "-o", out,
                 "--runner", "beam", "--resume"]) == 2
    assert main(["headlines", "--model", model, str(articles), "--runner", "beam"]) == 1
    assert "not stdin/stdout" in capsys.readouterr().err
    assert main(["headlines", "--model", model, str(articles), "-o", out,
                 "--num-shards", "2"]) == 2


def test_batches_are_bucketed_by_length(tmp_path: Path) -> None:
    """Short and long articles interleaved: every batch RunInference hands the model holds
    articles of one length bucket, and is full except the last of its bucket."""
    import apache_beam as beam
    from apache_beam.ml.inference.base import PredictionResult, RunInference

    from nlp.decoding import DecodeOptions
    from nlp.headlines import beam_runner as beam_job
    from nlp.headlines.readers import Article

    log = tmp_path / "batches.jsonl"

    class Recording(beam_job.HeadlineModelHandler):
        """The real handler's batching; records each batch's lengths instead of decoding."""

        def load_model(self) -> None:
            return None

        def run_inference(self, batch, model, inference_args=None):  # type: ignore[no-untyped-def]
            with log.open("a") as handle:
                handle.write(json.dumps([len(a.text) for a in batch]) + "\n")
            return [PredictionResult(a, None) for a in batch]

    lengths = [10, 40, 100, 300] * 25  # 4 buckets, 25 articles each
    articles = [Article(n, str(n), "x" * length) for n, length in enumerate(lengths, 1)]
    handler = Recording("unused", DecodeOptions(), batch_size=8)
    with beam.Pipeline(options=beam_job.pipeline_options([])) as pipeline:
        _ = pipeline | beam.Create(articles) | RunInference(handler)
    batches = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(n for b in batches for n in b) == sorted(lengths)
    for batch in batches:
        assert len(set(batch)) == 1, f"a batch mixes lengths: {batch}"
    sizes = sorted(len(b) for b in batches)
    assert sizes == [1] * 4 + [8] * 12, sizes  # 25 = 3 full batches of 8 + 1, per bucket
    assert len({bisect.bisect_right(beam_job.LENGTH_BUCKETS, b[0]) for b in batches}) == 4
