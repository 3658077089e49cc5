"""Batch headline generation: articles in (text/JSONL/JSON/TSV/CSV), headlines out (JSONL/TSV).

`generate_headlines(generator, source, destination, options)` is the one entry point; the
`s2s headlines` command and `scripts/generate_headlines.py` only parse options and call it.
No TensorFlow is imported here: the generator is passed in.
"""

from nlp.headlines.job import (
    HeadlineJobOptions,
    JobSummary,
    generate_headlines,
)
from nlp.headlines.readers import HeadlineInputError, ReaderOptions

__all__ = [
    "HeadlineInputError",
    "HeadlineJobOptions",
    "JobSummary",
    "ReaderOptions",
    "generate_headlines",
]
