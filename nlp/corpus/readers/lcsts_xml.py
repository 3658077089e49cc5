"""LCSTS original release (PART_I/II/III): pseudo-XML `<doc id=N>` records.

`<human_label>K</human_label>` (PART_II/III only) is a 1-5 relevance score of the summary;
PART_III's test convention keeps K >= 3, which `min_human_label=3` reproduces.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from nlp.corpus.readers.base import RecordSource
from nlp.corpus.readers.tagged import element_text, tagged_records
from nlp.corpus.records import Pair

MISSING_SUMMARY = "missing summary"
MISSING_TEXT = "missing short_text"
MISSING_LABEL = "missing human_label"
INVALID_LABEL = "invalid human_label"
LOW_LABEL = "human_label below threshold"

_START = re.compile(r"<doc\b")
_END = "</doc>"


def read_lcsts_xml(src: RecordSource, *, min_human_label: int | None = None) -> Iterator[Pair]:
    """Pairs (short_text -> summary), optionally only those with human_label >= threshold."""
    for record in tagged_records(src, _START, _END):
        summary = element_text(record.text, "summary")
        text = element_text(record.text, "short_text")
        if summary is None:
            src.reject(record.line, MISSING_SUMMARY)
            continue
        if text is None:
            src.reject(record.line, MISSING_TEXT)
            continue
        if min_human_label is not None and not _label_passes(
            src, record.line, record.text, min_human_label
        ):
            continue
        if pair := src.pair(record.line, text, summary):
            yield pair


def _label_passes(src: RecordSource, line: int, record: str, threshold: int) -> bool:
    """True when the record's label reaches the threshold; otherwise it is counted as skipped."""
    raw = element_text(record, "human_label")
    if raw is None:
        src.reject(line, MISSING_LABEL, f"min_human_label={threshold} needs one (PART_I has none)")
        return False
    try:
        label = int(raw.strip())
    except ValueError:
        src.reject(line, INVALID_LABEL, repr(raw.strip()))
        return False
    if label < threshold:
        src.drop(LOW_LABEL, line)
        return False
    return True
