"""Truecasing: give a lowercased model's output the capitals people write.

Why: the word tokenizers lowercase by default (a smaller vocabulary learns faster), so a chat
model answers "i'm sorry, john." A reader expects "I'm sorry, John." The codec fits a
`Truecaser` on the training texts when the tokenizer lowercases and applies it to every
output text; English casing rules need no model:

- the first word of each sentence (text start, or after ``. ! ?``) gets a capital when the
  training data writes most sentences so (a digits-to-words corpus does not);
- the pronoun "i" is "I" (also in "i'm", "i'll") unless the data writes it lowercase;
- any other all-lowercase word takes the form the training data writes most often, counted
  only where the case is informative (not sentence-initially), so "john" -> "John" and
  "nasa" -> "NASA", while "the" stays "the".

Only all-lowercase ASCII words are touched, so Chinese text and words the model copied with
their own case pass through unchanged. Placeholders ("phnum1") are not words here (they end in
a digit), so they survive until the codec restores them.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TRUECASE_FILE = "truecase.json"

_WORD = re.compile(r"\b[A-Za-z]+\b", re.ASCII)
# A sentence ends at . ! ? followed by a space or the text's end: not the point in "3.5",
# "p.m" or "example.com", and not after an initialism's letters ("p.m.", "e.g.", "U.S.")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_INITIALISM = re.compile(r"(?<![\w.])(?:[A-Za-z]\.){2,}$")
_LOOK_BACK = 12  # characters an initialism's check reads before its point ("u.s.a.")
# A URL, an address or a dotted name: its words keep the case they have ("example.com/i")
_DOTTED = re.compile(r"\S+://\S+|\S*\w\.\w\S*")
_CONTENT = re.compile(r"\w")  # a number or placeholder before a word: not initial
_PRONOUN = "I"


@dataclass
class TruecaseCounts:
    """What `Truecaser.from_counts` needs from the training texts: each word's written forms
    counted outside sentence starts, and whether sentence starts are capitalised.

    Why counts rather than texts: training tokenizes its texts in worker processes
    (`nlp.training.prepare`), and each worker counts its share of the texts it already has;
    counts merged in the texts' order (`update`) give the truecaser one pass over all of
    them gives, ties included (a `Counter` keeps first-seen order).
    """

    forms: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    initials: Counter[bool] = field(default_factory=Counter)

    def add(self, text: str) -> None:
        """Count one text."""
        for match, initial in _words(text):
            word = match.group()
            if initial:
                self.initials[word[0].isupper()] += 1
            else:
                self.forms[word.lower()][word] += 1

    def update(self, other: TruecaseCounts) -> None:
        """Add the counts of texts that come after this one's."""
        for lower, seen in other.forms.items():
            self.forms[lower].update(seen)
        self.initials.update(other.initials)


@dataclass
class Truecaser:
    """`forms` maps a lowercase word to its most frequent written form (when not lowercase);
    `capitalize_initial` says whether sentences start with a capital."""

    forms: dict[str, str] = field(default_factory=lambda: {"i": _PRONOUN})
    capitalize_initial: bool = True

    @classmethod
    def fit(cls, texts: Iterable[str], min_count: int = 2) -> Truecaser:
        """The truecaser of these texts (`TruecaseCounts` and `from_counts`)."""
        counts = TruecaseCounts()
        for text in texts:
            counts.add(text)
        return cls.from_counts(counts, min_count)

    @classmethod
    def from_counts(cls, counts: TruecaseCounts, min_count: int = 2) -> Truecaser:
        """Keep a form other than all-lowercase when it is a word's most frequent one and seen
        at least `min_count` times; sentence starts vote on `capitalize_initial`."""
        forms = {}
        for lower, seen in counts.forms.items():
            form, count = max(seen.items(), key=lambda item: (item[1], item[0] == lower))
            if form != lower and count >= min_count:
                forms[lower] = form
        pronoun = counts.forms.get("i", Counter())
        if pronoun["i"] <= pronoun[_PRONOUN]:  # English writes "I" unless the data does not
            forms["i"] = _PRONOUN
        return cls(forms, counts.initials[True] >= counts.initials[False])

    def apply(self, text: str) -> str:
        """`text` with sentence capitals, "I", and the learned forms of lowercase words."""
        pieces: list[str] = []
        last = 0
        for match, initial in _words(text):
            word = match.group()
            pieces.append(text[last : match.start()])
            pieces.append(self._case(word, initial) if word.islower() else word)
            last = match.end()
        pieces.append(text[last:])
        return "".join(pieces)

    def _case(self, word: str, initial: bool) -> str:
        form = self.forms.get(word, word)
        return form[0].upper() + form[1:] if initial and self.capitalize_initial else form

    def save(self, path: Path) -> None:
        raw = {"forms": self.forms, "capitalize_initial": self.capitalize_initial}
        path.write_text(json.dumps(raw, ensure_ascii=False, sort_keys=True), "utf-8")

    @classmethod
    def load(cls, path: Path) -> Truecaser:
        """The saved table; an absent file (older bundles) gives the English rules alone."""
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text("utf-8"))
        if "forms" not in raw:  # the first format: the forms alone
            return cls({"i": _PRONOUN, **raw})
        return cls(dict(raw["forms"]), bool(raw["capitalize_initial"]))


def _words(text: str) -> Iterable[tuple[re.Match[str], bool]]:
    """Each ASCII word of `text` outside URLs and dotted names (`_DOTTED`), with whether it
    starts a sentence (nothing but spaces and punctuation between it and the text start or
    the last sentence end). One pass over the text: training counts every target."""
    ends = [end.end() for end in _SENTENCE_END.finditer(text)
            if not _INITIALISM.search(text[max(0, end.end() - _LOOK_BACK) : end.end()])]
    dotted = iter(span.span() for span in _DOTTED.finditer(text))
    span = next(dotted, None)
    initial = True
    last = 0
    for match in _WORD.finditer(text):
        while span is not None and span[1] <= match.start():
            span = next(dotted, None)
        if span is not None and span[0] <= match.start():
            initial, last = False, match.end()
            continue
        passed = bisect.bisect_right(ends, match.start()) - 1
        between = text[last : match.start()]
        if passed >= 0 and ends[passed] > last:
            initial, between = True, text[ends[passed] : match.start()]
        yield match, initial and not _CONTENT.search(between)
        initial = False
        last = match.end()
