"""`s2s headlines --runner beam`: the batch headline job as an Apache Beam pipeline.

    read (the job's own readers, line numbers and bad records included)
      -> Reshuffle (spread the articles over the workers)
      -> good articles: RunInference(HeadlineModelHandler)  | bad ones: error records
      -> Flatten -> format (the job's own JSONL/TSV writers)
      -> OUT (one file, in input order) or OUT-00000-of-000NN shards (`num_shards`)

Why the input is read by one DoFn per file and not by `ReadFromText`: the job's records carry
their line number (the id of a plain-text record, and the place a bad record is reported at),
and a CSV record may span lines; a split text read knows neither. Reading is cheap next to
decoding, so the Reshuffle after it is what spreads the work.

`RunInference` batches the articles by length: Beam's length-aware `BatchElements` (the
`batch_length_fn` of a `ModelHandler`, Beam >= 2.73) keys each article by the bucket of its
length (`LENGTH_BUCKETS`) and fills batches of `batch_size` per bucket and worker, so a batch of
short articles is not padded to the length of a long one. Its DoFn loads the model once per
worker process in `setup`, through `apache_beam.utils.shared.Shared`, so the threads of a
worker share one copy. The handler calls `nlp.headlines.job.decode_batch`, the function the
in-process job calls, and through it `Generator.generate` and the project's one decoder (which
sorts each batch by token length).

Bad records are counted in Beam metrics (written, one counter per reason) and the first
`MAX_PROBLEMS` by line are kept with a `Top` combine, so the launcher prints the same summary
as the in-process job. Only this module imports `apache_beam` (`pip install .[beam]`).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics, MetricsFilter
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from nlp.decoding import DecodeOptions
from nlp.headlines import input_format, readers, writers
from nlp.headlines.job import MAX_PROBLEMS, JobSummary, decode_batch, error_reason
from nlp.headlines.readers import Article, HeadlineInputError, ReaderOptions
from nlp.headlines.writers import Result

NAMESPACE = "s2s.headlines"
WRITTEN = "written"
ERROR_PREFIX = "error: "
PROBLEMS = "problems"
SHARD_TEMPLATE = "-SSSSS-of-NNNNN"
LENGTH_BUCKETS = (32, 64, 128, 256, 512, 1024, 2048)
"""Bucket boundaries of an article's length in characters: lower-inclusive, so the buckets
are [0, 32), [32, 64) ... [2048, inf). Characters, not tokens: the keying step runs before the
model (and its tokenizer) is loaded, and an article's token count grows with its characters in
every tokenizer here. Articles longer than the model's source limit are truncated to the same
length, so the top buckets only bound the host-side work."""
MAX_BATCH_WAIT_SECONDS = 10
"""How long a bucket's partial batch may wait for more articles (Beam's stateful batching needs
it; a batch job flushes every partial batch when the input ends anyway)."""
LOCAL_RUNNER = "FnApiRunner"
"""The runner when none is given: the batch engine of Beam's DirectRunner. The DirectRunner
itself first tries the Prism runner, a Go binary it downloads from GitHub on first use; this
one runs in Python with nothing to fetch (``--direct_num_workers`` and ``--direct_running_mode``
apply to it)."""


@dataclass
class BeamJobOptions:
    """The pipeline's settings: the in-process job's, plus where the model is and how Beam
    runs (`pipeline_args` are Beam's own flags, e.g. ``--runner=DataflowRunner``)."""

    model: str
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    reader: ReaderOptions = field(default_factory=ReaderOptions)
    output_format: str = "auto"
    batch_size: int = 64
    strict: bool = False  # the first bad record fails the pipeline (HeadlineInputError)
    num_shards: int | None = None  # None: one file OUT in input order; 0: the runner decides
    jit_compile: bool = False
    pipeline_args: Sequence[str] = ()


class HeadlineModelHandler(ModelHandler[Article, PredictionResult, Any]):
    """Loads a bundle's `Generator` (once per worker: RunInference shares it) and turns a
    batch of good articles into results with the in-process job's `decode_batch`."""

    def __init__(
        self, model: str, decode: DecodeOptions, *, batch_size: int, jit_compile: bool = False
    ) -> None:
        # Full batches, as in the in-process job (BatchElements would otherwise start at 1 and
        # grow), per length bucket; only the last batch of a bucket is smaller.
        super().__init__(
            min_batch_size=batch_size,
            max_batch_size=batch_size,
            max_batch_duration_secs=MAX_BATCH_WAIT_SECONDS,
            batch_length_fn=article_length,
            batch_bucket_boundaries=list(LENGTH_BUCKETS),
        )
        self.model = model
        self.decode = decode
        self.jit_compile = jit_compile

    def load_model(self) -> Any:
        from nlp.generation.loading import load_model

        return load_model(self.model, jit_compile=self.jit_compile).generator

    def run_inference(
        self,
        batch: Sequence[Article],
        model: Any,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        results = decode_batch(model, batch, self.decode)
        return [PredictionResult(a, r) for a, r in zip(batch, results, strict=True)]

    def get_num_bytes(self, batch: Sequence[Article]) -> int:
        return sum(len(a.text.encode("utf-8", "surrogateescape")) for a in batch)

    def get_metrics_namespace(self) -> str:
        return "s2s.headlines.RunInference"


def article_length(article: Article) -> int:
    """The length an article is bucketed by (`LENGTH_BUCKETS`)."""
    return len(article.text)


class ReadArticles(beam.DoFn):
    """Every record of one input file, with its line number (`nlp.headlines.readers`), through
    Beam's filesystems (local paths, gs://, s3://, hdfs:// ...)."""

    def __init__(self, options: ReaderOptions, strict: bool) -> None:
        self.options = options
        self.strict = strict

    def process(self, path: str) -> Iterator[Article]:
        with FileSystems.open(path) as handle:
            for article in readers.read_articles(handle, path, self.options):
                if self.strict and article.error:
                    raise HeadlineInputError(path, article.line, article.error)
                yield article


def _error_result(article: Article) -> Result:
    return Result(article.id, article.line, error=article.error)


def _result(prediction: PredictionResult) -> Result:
    return cast(Result, prediction.inference)  # PredictionResult is not generic


class CountResults(beam.DoFn):
    """Metrics for the summary: records written, and error records by reason."""

    def __init__(self) -> None:
        self.written = Metrics.counter(NAMESPACE, WRITTEN)

    def process(self, result: Result) -> Iterator[Result]:
        self.written.inc()
        if result.error:
            Metrics.counter(NAMESPACE, ERROR_PREFIX + error_reason(result.error)).inc()
        yield result


def _report_problems(problems: list[tuple[int, str]]) -> None:
    """The first problems (by line) into a string-set metric the launcher reads back."""
    cell = Metrics.string_set(NAMESPACE, PROBLEMS)
    for line, error in problems:
        cell.add(json.dumps([line, error], ensure_ascii=False))


class WriteInOrder(beam.DoFn):
    """Writes all (line, text) pairs, sorted by line, to one file: the in-process job's output.
    It holds the results (not the articles) of the whole input on one worker; use shards for
    inputs that do not fit."""

    def __init__(self, path: str) -> None:
        self.path = path

    def process(self, lines: list[tuple[int, str]]) -> Iterator[str]:
        with FileSystems.create(self.path) as handle:
            for _, text in sorted(lines, key=lambda pair: pair[0]):
                handle.write((text + "\n").encode("utf-8"))
        yield self.path


def build_pipeline(
    pipeline: beam.Pipeline, source: str, destination: str, options: BeamJobOptions
) -> None:
    """Add the job's transforms to `pipeline` (read `source`, write `destination`)."""
    formatter = writers.FORMATTERS[writers.detect_format(destination, options.output_format)]
    n_best = options.decode.n_best
    articles = (
        pipeline
        | "Input" >> beam.Create([source])
        | "Read" >> beam.ParDo(ReadArticles(options.reader, options.strict))
        | "Spread" >> beam.Reshuffle()
    )
    good = articles | "Good" >> beam.Filter(lambda a: not a.error)
    bad = articles | "Bad" >> beam.Filter(lambda a: bool(a.error))
    handler = HeadlineModelHandler(
        options.model, options.decode,
        batch_size=options.batch_size, jit_compile=options.jit_compile,
    )
    headlines = (
        good
        | "Generate" >> RunInference(handler)
        | "Results" >> beam.Map(_result)
    )
    errors = bad | "ErrorRecords" >> beam.Map(_error_result)
    results = (headlines, errors) | "All" >> beam.Flatten() | "Count" >> beam.ParDo(CountResults())
    (
        results
        | "Problems" >> beam.Filter(lambda r: bool(r.error))
        | "ProblemLines" >> beam.Map(lambda r: (r.line, r.error))
        | "FirstProblems" >> beam.combiners.Top.Smallest(MAX_PROBLEMS)
        | "Report" >> beam.Map(_report_problems)
    )
    if options.num_shards is None:
        (
            results
            | "Format" >> beam.Map(lambda r: (r.line, formatter(r, n_best)))
            | "Gather" >> beam.combiners.ToList()
            | "Write" >> beam.ParDo(WriteInOrder(destination))
        )
    else:
        (
            results
            | "Format" >> beam.Map(lambda r: formatter(r, n_best))
            | "Write" >> beam.io.WriteToText(
                destination, num_shards=options.num_shards, shard_name_template=SHARD_TEMPLATE
            )
        )


def run_pipeline(source: str, destination: str, options: BeamJobOptions) -> JobSummary:
    """Run the pipeline to the end and return the in-process job's summary, from metrics."""
    if "-" in (str(source), str(destination)):
        raise ValueError("--runner beam reads and writes files, not stdin/stdout")
    source, destination = str(source), str(destination)
    if options.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {options.batch_size}")
    if options.num_shards is not None and options.num_shards < 0:
        raise ValueError(f"num_shards must be >= 0, got {options.num_shards}")
    options.decode.validate()
    writers.detect_format(destination, options.output_format)
    input_format.check_format(options.reader.format)
    if not FileSystems.exists(source):
        raise FileNotFoundError(f"{source}: no such file")
    started = time.perf_counter()
    pipeline = beam.Pipeline(options=pipeline_options(options.pipeline_args))
    build_pipeline(pipeline, source, destination, options)
    result = pipeline.run()
    result.wait_until_finish()
    summary = summary_from_metrics(result)
    summary.seconds = time.perf_counter() - started
    return summary


def pipeline_options(args: Sequence[str]) -> PipelineOptions:
    """Beam's options from its own flags; without ``--runner``, the `LOCAL_RUNNER`."""
    options = PipelineOptions(list(args))
    if options.view_as(StandardOptions).runner is None:
        options.view_as(StandardOptions).runner = LOCAL_RUNNER
    return options


def quiet_beam_logs() -> None:
    """Beam's INFO lines off, and one bogus WARNING: Beam 2.77's RunInference imports the
    `resource` module together with a torch-only module, so without torch it logs "Resource
    module is not available" on the root logger for every model load."""
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    logging.getLogger().addFilter(_drop_resource_warning)


def _drop_resource_warning(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Resource module is not available")


def summary_from_metrics(result: Any) -> JobSummary:
    """The counts and first problems the pipeline reported (committed values where the
    runner has them, attempted ones otherwise)."""
    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    summary = JobSummary(errors=Counter())
    for counter in query["counters"]:
        name, value = counter.key.metric.name, _value(counter)
        if name == WRITTEN:
            summary.written += value
        elif name.startswith(ERROR_PREFIX):
            summary.errors[name.removeprefix(ERROR_PREFIX)] += value
    problems: set[tuple[int, str]] = set()
    for strings in query.get("string_sets", []):
        if strings.key.metric.name == PROBLEMS:
            problems |= {tuple(json.loads(s)) for s in _value(strings)}  # type: ignore[misc]
    summary.problems = sorted(problems)[:MAX_PROBLEMS]
    return summary


def _value(metric: Any) -> Any:
    return metric.committed if metric.committed is not None else metric.attempted


def shard_paths(destination: str | Path) -> list[str]:
    """The files a sharded run wrote (OUT-00000-of-000NN ...), sorted."""
    pattern = f"{destination}-*-of-*"
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
