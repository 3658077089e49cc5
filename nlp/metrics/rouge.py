"""ROUGE-1, ROUGE-2 and ROUGE-L (precision, recall, F1), per character or per word.

Conventions, chosen so that numbers are comparable with published results:
- ``unit="char"`` (Chinese, the LCSTS convention): whitespace is dropped and every other
  character is one unit, Latin letters, digits and punctuation included ("iPhone" is six
  units), after lowercasing. This is what LCSTS papers do when they map characters to ids
  before running ROUGE-1.5.5.
- ``unit="word"`` (English, rouge-score's default tokenizer and ROUGE-1.5.5): lowercase,
  every run of characters other than ASCII ``a-z0-9`` separates tokens (so non-ASCII letters
  are dropped, as there), no stemming unless ``stem=True`` (Porter, as ``use_stemmer=True``
  in rouge-score; words of 3 letters or fewer are not stemmed).
- ``unit="auto"``: "char" when at least half of the references' units are Han, kana or
  Hangul letters (`nlp.text.scripts.character_unit_share`), else "word"; decided once per
  corpus so that one average never mixes units, and by a share so that one quoted Chinese
  name does not turn an English corpus into characters.
- ROUGE-L is the sentence-level LCS (rouge-score's ``rougeL``, not ``rougeLsum``).
- Corpus scores are the mean over pairs of the sentence precision, recall and F1 (rouge-score's
  aggregation, without the bootstrap confidence interval). An empty side scores 0.

Why our own implementation and not `rouge-score` itself: this is the only ROUGE in the
project (evaluation, `train.select_by=rouge` after every epoch, `s2s tune-decoding`), and it
must count Chinese per character, which rouge-score does only with a custom tokenizer; it
also keeps rouge-score (with its absl and nltk) out of the runtime dependencies. rouge-score
stays the oracle: tests/metrics/test_rouge.py checks these figures against it, per word (with and
without stemming) and per character.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from nlp.corpus.records import Pair
from nlp.text.normalize import normalize_text
from nlp.text.scripts import character_unit_share

Units = list[str]

_NON_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")
CHAR_SHARE = 0.5  # the share of character units from which "auto" means "char"


@dataclass(frozen=True)
class Score:
    """Precision, recall and F1 of one ROUGE variant (sentence or corpus mean)."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class RougeScores:
    """Corpus-level ROUGE: means of sentence-level scores over `count` pairs."""

    rouge1: Score
    rouge2: Score
    rougeL: Score  # camelCase: the name every ROUGE report uses
    count: int
    unit: str

    def as_dict(self) -> dict[str, float]:
        """Flat ``{"rouge1_f1": ..., "rougeL_recall": ...}`` for JSON reports and tables."""
        flat: dict[str, float] = {}
        for name in ("rouge1", "rouge2", "rougeL"):
            score: Score = getattr(self, name)
            flat[f"{name}_precision"] = score.precision
            flat[f"{name}_recall"] = score.recall
            flat[f"{name}_f1"] = score.f1
        return flat


def char_units(text: str) -> Units:
    """Every non-whitespace character, lowercased (the LCSTS convention)."""
    return [c for c in text.lower() if not c.isspace()]


def word_units(text: str, stem: bool = False) -> Units:
    """rouge-score's default tokenizer: lowercase ASCII alphanumeric runs, optionally stemmed."""
    tokens = _NON_ALPHANUMERIC.sub(" ", text.lower()).split()
    if stem:
        stemmer = _porter()
        tokens = [stemmer(t) if len(t) > 3 else t for t in tokens]
    return tokens


@cache
def _porter() -> Callable[[str], str]:
    """nltk's Porter stemmer, imported only when asked for (nltk is not a core dependency)."""
    try:
        from nltk.stem import porter
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("ROUGE stemming needs nltk: pip install nltk") from exc
    return porter.PorterStemmer().stem


def resolve_unit(references: Sequence[str], unit: str) -> str:
    """Turn "auto" into "char" (mostly Han, kana or Hangul, see the module docstring) or
    "word"; check the others."""
    if unit == "auto":
        return "char" if character_unit_share(references) >= CHAR_SHARE else "word"
    if unit not in ("char", "word"):
        raise ValueError(f"unit must be 'char', 'word' or 'auto', not {unit!r}")
    return unit


def units(text: str, unit: str, stem: bool = False) -> Units:
    """Split `text` into ROUGE units ("char" or "word")."""
    return char_units(text) if unit == "char" else word_units(text, stem)


def _score(overlap: int, hypothesis_count: int, reference_count: int) -> Score:
    if overlap == 0:
        return Score(0.0, 0.0, 0.0)
    precision = overlap / hypothesis_count
    recall = overlap / reference_count
    return Score(precision, recall, 2 * precision * recall / (precision + recall))


def _ngrams(tokens: Units, n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def rouge_n(hypothesis: Units, reference: Units, n: int) -> Score:
    """Clipped n-gram overlap between two unit lists."""
    hyp, ref = _ngrams(hypothesis, n), _ngrams(reference, n)
    overlap = sum((hyp & ref).values())
    return _score(overlap, sum(hyp.values()), sum(ref.values()))


def lcs_length(a: Units, b: Units) -> int:
    """Length of the longest common subsequence (two-row dynamic programme)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(hypothesis: Units, reference: Units) -> Score:
    """Sentence-level ROUGE-L from the LCS length."""
    return _score(lcs_length(hypothesis, reference), len(hypothesis), len(reference))


def rouge_pair(hypothesis: str, reference: str, unit: str, stem: bool = False) -> dict[str, Score]:
    """ROUGE-1/2/L of one hypothesis against one reference (`unit` already resolved)."""
    hyp, ref = units(hypothesis, unit, stem), units(reference, unit, stem)
    return {
        "rouge1": rouge_n(hyp, ref, 1),
        "rouge2": rouge_n(hyp, ref, 2),
        "rougeL": rouge_l(hyp, ref),
    }


def _mean(scores: Sequence[Score]) -> Score:
    if not scores:
        return Score(0.0, 0.0, 0.0)
    count = len(scores)
    return Score(
        sum(s.precision for s in scores) / count,
        sum(s.recall for s in scores) / count,
        sum(s.f1 for s in scores) / count,
    )


def rouge(
    hypotheses: Sequence[str], references: Sequence[str], unit: str = "auto", stem: bool = False
) -> RougeScores:
    """Corpus ROUGE: the mean of sentence scores over aligned hypothesis/reference pairs."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    resolved = resolve_unit(references, unit)
    pairs = [rouge_pair(h, r, resolved, stem) for h, r in zip(hypotheses, references, strict=True)]
    return RougeScores(
        rouge1=_mean([p["rouge1"] for p in pairs]),
        rouge2=_mean([p["rouge2"] for p in pairs]),
        rougeL=_mean([p["rougeL"] for p in pairs]),
        count=len(pairs),
        unit=resolved,
    )


def mean_rouge_l(outputs: Sequence[str], pairs: Sequence[Pair]) -> float:
    """Mean ROUGE-L F1 against the references (units as `s2s evaluate --metric rouge`)."""
    return rouge(outputs, [normalize_text(pair.target) for pair in pairs]).rougeL.f1
