"""Batch headline generation: stream articles in, decode them in batches, stream results out.

Memory stays flat whatever the input size: records are read lazily, one batch at a time is
held, and each batch is written and flushed before the next is read. The generator is passed
in (any `nlp.generation.text_generator.TextGenerator`), so this module never imports TensorFlow and
tests drive it with a fake.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import BinaryIO, TextIO

from nlp.decoding import DecodeOptions
from nlp.generation.text_generator import Generation, TextGenerator
from nlp.headlines import input_format, readers, resume, writers
from nlp.headlines.input_format import Readable
from nlp.headlines.readers import Article, HeadlineInputError, ReaderOptions
from nlp.headlines.writers import Candidate, Result
from nlp.util.fsutil import same_path
from nlp.util.progress import Progress

STDIO = "-"
MAX_PROBLEMS = 20


@dataclass
class HeadlineJobOptions:
    """Everything about a job except the generator and the two paths."""

    decode: DecodeOptions = field(default_factory=DecodeOptions)
    reader: ReaderOptions = field(default_factory=ReaderOptions)
    output_format: str = "auto"  # auto | jsonl | tsv
    batch_size: int = 64
    strict: bool = False  # the first bad record stops the job (HeadlineInputError)
    resume: bool = False  # complete an interrupted output instead of overwriting it
    progress: TextIO | None = None  # where to draw the progress line (None: nowhere)


@dataclass
class JobSummary:
    """Counts for this run (records skipped by --resume are counted apart)."""

    resumed: int = 0  # records already in the output before this run
    written: int = 0  # records written by this run (headlines + error records)
    errors: Counter[str] = field(default_factory=Counter)  # by reason, e.g. "invalid JSON"
    problems: list[tuple[int, str]] = field(default_factory=list)  # first (line, reason)s
    seconds: float = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def articles_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def record_error(self, record: Article | Result) -> None:
        self.errors[error_reason(record.error)] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((record.line, record.error))

    def summary(self, source: str = "input") -> str:
        """Human-readable report for stderr: totals, then the first problems with lines."""
        parts = [
            f"{self.written:,} records written ({self.written - self.error_count:,} headlines, "
            f"{self.error_count:,} errors) in {self.seconds:.1f} s, "
            f"{self.articles_per_second:,.1f} articles/s"
        ]
        if self.resumed:
            parts[0] += f"; resumed after {self.resumed:,} records"
        parts += [f"  {count:,} x {reason}" for reason, count in self.errors.most_common()]
        parts += [f"  {source}:{line}: {reason}" for line, reason in self.problems]
        if self.error_count > len(self.problems):
            parts.append(f"  ... {self.error_count - len(self.problems):,} more")
        return "\n".join(parts)


def generate_headlines(
    generator: TextGenerator,
    source: str | Path,
    destination: str | Path,
    options: HeadlineJobOptions,
) -> JobSummary:
    """Write one result line per record of `source` to `destination` ("-": stdin/stdout).

    Bad records become error records (or, with `strict`, raise HeadlineInputError after the
    good records before them are written). With `resume`, records already complete in
    `destination` are skipped and the rest appended.
    """
    source, destination = str(source), str(destination)
    if options.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {options.batch_size}")
    if options.resume and destination == STDIO:
        raise ValueError("--resume needs an output file, not stdout")
    options.decode.validate()
    if STDIO not in (source, destination) and same_path(source, destination):
        # opening the output empties it before a single article is read
        raise ValueError(f"{destination}: the output is the input file; write elsewhere")
    formatter = writers.FORMATTERS[writers.detect_format(destination, options.output_format)]
    input_format.check_format(options.reader.format)  # fail early on a bad format name
    summary = JobSummary()
    if options.resume:
        summary.resumed = resume.records_done(Path(destination))
    started = time.perf_counter()
    progress = Progress(options.progress)
    with ExitStack() as stack:
        inp = _open_input(source, stack)
        out = _LazyOutput(destination, append=options.resume, stack=stack)
        articles = readers.read_articles(inp, source, options.reader)
        _skip(articles, summary.resumed, source)
        try:
            for batch in _batches(articles, options.batch_size):
                bad = _first_bad(batch) if options.strict else None
                results = decode_batch(generator, batch[:bad], options.decode)
                for result in results:
                    if result.error:
                        summary.record_error(result)
                if results:  # none when --strict stops at a batch's first record
                    out.write("".join(formatter(r, options.decode.n_best) + "\n"
                                      for r in results).encode())
                summary.written += len(results)
                progress.update(summary.written, f"{summary.error_count:,} errors")
                if bad is not None:
                    raise HeadlineInputError(source, batch[bad].line, batch[bad].error)
            out.open()  # an input without records still gets its (empty) output
        finally:
            summary.seconds = time.perf_counter() - started
            progress.close(summary.written, f"{summary.error_count:,} errors")
    return summary


def _open_input(source: str, stack: ExitStack) -> Readable:
    if source == STDIO:
        return sys.stdin.buffer
    return stack.enter_context(input_format.open_input(source))


class _LazyOutput:
    """The output, opened at the first write.

    Why not at the start: opening empties an existing file, and the errors that come before
    any result (a header without the named column, options that do not fit the input, a
    model that fails on the first batch) would destroy the previous run's output for
    nothing. From the first write on the file is this run's, and --resume completes it.
    """

    def __init__(self, destination: str, *, append: bool, stack: ExitStack) -> None:
        self.destination, self.append, self.stack = destination, append, stack
        self.handle: BinaryIO | None = None

    def open(self) -> BinaryIO:
        """The output, opened now if it is not yet."""
        if self.handle is None:
            if self.destination == STDIO:
                self.handle = sys.stdout.buffer
            else:
                path = Path(self.destination)
                self.handle = self.stack.enter_context(path.open("ab" if self.append else "wb"))
        return self.handle

    def write(self, data: bytes) -> None:
        """Write and flush `data` (so a killed run leaves whole batches)."""
        handle = self.open()
        handle.write(data)
        handle.flush()


def _skip(articles: Iterator[Article], count: int, source: str) -> None:
    """Consume the `count` records an earlier run already answered."""
    skipped = sum(1 for _ in islice(articles, count))
    if skipped < count:
        raise HeadlineInputError(
            source, skipped, f"the output already has {count} records but the input only {skipped}"
        )


def _batches(articles: Iterator[Article], size: int) -> Iterator[list[Article]]:
    while batch := list(islice(articles, size)):
        yield batch


def _first_bad(batch: Sequence[Article]) -> int | None:
    return next((i for i, a in enumerate(batch) if a.error), None)


def error_reason(error: str) -> str:
    """The kind of an error record's message ("invalid JSON: ..." -> "invalid JSON"): the key
    the summary counts by."""
    return error.split(":")[0]


def decode_batch(
    generator: TextGenerator,
    batch: Sequence[Article],
    options: DecodeOptions,
) -> list[Result]:
    """Results for `batch` in input order: the good articles go to the generator together.

    Shared by this job and the Beam pipeline (`nlp.headlines.beam_runner`), so both turn articles
    into results (and an article without any hypothesis into an error record) the same way.
    """
    good = [a for a in batch if not a.error]
    generations = generator.generate([a.text for a in good], options) if good else []
    if len(generations) != len(good):
        raise RuntimeError(f"generator returned {len(generations)} results for {len(good)} texts")
    by_line = dict(zip((a.line for a in good), generations, strict=True))
    return [article_result(article, by_line.get(article.line, ())) for article in batch]


def article_result(article: Article, hypotheses: Sequence[Generation]) -> Result:
    """One article's result: its candidates best first, its own error, or "no hypothesis"
    when the generator found nothing to say. Shared with the HTTP server (`serve`), which
    decodes the same articles through the micro-batcher instead of `decode_batch`."""
    if article.error:
        return Result(article.id, article.line, error=article.error)
    if not hypotheses:
        return Result(article.id, article.line, error="no hypothesis")
    return Result(article.id, article.line, [Candidate(h.text, h.score) for h in hypotheses])
