"""Truecasing: give a lowercased model's output the capitals people write.

Why: the word tokenizers lowercase by default (a smaller vocabulary learns faster), so a chat
model answers "i'm sorry, john." A reader expects "I'm sorry, John." The codec fits a
`Truecaser` on the training texts when the tokenizer lowercases and applies it to every
output text; English casing rules need no model:

- the first word of each sentence (text start, or after ``. ! ?``) gets a capital;
- the pronoun "i" is "I" (also in "i'm", "i'll");
- any other all-lowercase word takes the form the training data writes most often, counted
  only where the case is informative (not sentence-initially), so "john" -> "John" and
  "nasa" -> "NASA", while "the" stays "the".

Only all-lowercase ASCII words are touched, so Chinese text and words the model copied with
their own case pass through unchanged. Placeholders ("phnum1") are not words here (they end in
a digit), so they survive until the codec restores them.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TRUECASE_FILE = "truecase.json"

_WORD = re.compile(r"\b[A-Za-z]+\b", re.ASCII)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")  # not the point in "3.5"
_CONTENT = re.compile(r"\w")  # a number or placeholder before a word: not initial
_PRONOUN = "I"


@dataclass
class Truecaser:
    """`forms` maps a lowercase word to its most frequent written form (when not lowercase)."""

    forms: dict[str, str] = field(default_factory=dict)

    @classmethod
    def fit(cls, texts: Iterable[str], min_count: int = 2) -> Truecaser:
        """Count each word's written forms outside sentence starts; keep a form other than
        all-lowercase when it is the most frequent one and seen at least `min_count` times."""
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for text in texts:
            for match, initial in _words(text):
                if not initial:
                    word = match.group()
                    counts[word.lower()][word] += 1
        forms = {}
        for lower, seen in counts.items():
            form, count = max(seen.items(), key=lambda item: (item[1], item[0] == lower))
            if form != lower and count >= min_count:
                forms[lower] = form
        return cls(forms)

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
        form = _PRONOUN if word == "i" else self.forms.get(word, word)
        return form[0].upper() + form[1:] if initial else form

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.forms, ensure_ascii=False, sort_keys=True), "utf-8")

    @classmethod
    def load(cls, path: Path) -> Truecaser:
        """The saved forms; an absent file (older bundles) gives the rules alone."""
        if not path.exists():
            return cls()
        return cls(dict(json.loads(path.read_text("utf-8"))))


def _words(text: str) -> Iterable[tuple[re.Match[str], bool]]:
    """Each ASCII word of `text`, with whether it starts a sentence (nothing but spaces and
    punctuation between it and the text start or the last sentence end)."""
    initial = True
    last = 0
    for match in _WORD.finditer(text):
        between = text[last : match.start()]
        ends = list(_SENTENCE_END.finditer(between))
        if ends:
            initial, between = True, between[ends[-1].end() :]
        yield match, initial and not _CONTENT.search(between)
        initial = False
        last = match.end()
