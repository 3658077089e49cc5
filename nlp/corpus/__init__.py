"""Corpus layer: read any supported corpus format as `Pair`s, clean them, write JSONL.

report = ReadReport()
pairs = process(read_pairs("train.tsv", "lcsts-tsv", report=report), PipelineOptions(), report)
write_jsonl(pairs, "data/train.jsonl"); print(report.details())
"""

from nlp.corpus.pipeline import (
    JsonlWriter,
    PipelineOptions,
    assign_split,
    process,
    split_pairs,
    write_jsonl,
)
from nlp.corpus.readers import FORMATS, detect_format, format_options, read_pairs
from nlp.corpus.records import CorpusError, FormatError, Pair, Problem, ReadReport

__all__ = [
    "FORMATS",
    "CorpusError",
    "FormatError",
    "JsonlWriter",
    "Pair",
    "PipelineOptions",
    "Problem",
    "ReadReport",
    "assign_split",
    "detect_format",
    "format_options",
    "process",
    "read_pairs",
    "split_pairs",
    "write_jsonl",
]
