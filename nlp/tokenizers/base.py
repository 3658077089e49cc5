"""The tokenizer contract, and the text clean-up every tokenizer shares.

Why one shared clean-up: whichever kind a config picks, user text must reach the model the same
way (same lowercasing, same whitespace handling) and must never smuggle in a control token such
as `</s>`, which would end a decoder input early or fake a turn boundary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from nlp.text.scripts import is_cjk_letter
from nlp.tokenizers.specials import SPECIAL_TOKENS

# sentencepiece's visible space marker. Plain text has no business containing it, and if it did,
# sentencepiece would decode it as a space, so every tokenizer treats it as one.
SP_SPACE = "\u2581"

_SPECIALS_RE = re.compile("|".join(re.escape(token) for token in SPECIAL_TOKENS))


@runtime_checkable
class Tokenizer(Protocol):
    """What the rest of the project may rely on (see docs/ARCHITECTURE.md).

    A tokenizer only splits and joins text; ids are the vocabulary's business
    (`nlp.tokenizers.vocab`), so every kind can share one `Vocabulary` and one set of special ids.
    """

    name: str

    def fit(self, texts: Iterable[str]) -> None:
        """Learn from training texts (sentencepiece trains its model; the others do nothing)."""
        ...

    def tokenize(self, text: str) -> list[str]:
        """Split text into tokens; never returns whitespace or a special token string."""
        ...

    def detokenize(self, tokens: Sequence[str]) -> str:
        """Join tokens back into natural text."""
        ...

    def spaced(self, left: str, right: str) -> bool:
        """Whether `detokenize` writes a space between the texts `left` and `right` (what
        restoring a placeholder's value asks of its neighbours)."""
        ...

    def save(self, directory: Path) -> None:
        """Write whatever `load_tokenizer` needs into `directory` (nothing for rule-based kinds)."""
        ...


def clean_text(text: str, lowercase: bool) -> str:
    """Lowercase (if asked), remove special-token strings and collapse whitespace.

    Specials are replaced by a space, not by nothing, so that removing one cannot join its
    neighbours into a new special (`<</s>/s>` must not become `</s>`). Lowercasing comes first
    so `<S>` cannot slip through either. Collapsing whitespace here means no tokenizer ever sees
    a tab or newline, so no token can contain one (vocab.txt is one token per line).
    """
    if lowercase:
        text = text.lower()
    text = _SPECIALS_RE.sub(" ", text.replace(SP_SPACE, " "))
    return " ".join(text.split())


def is_latin_word(token: str) -> bool:
    """True when the token holds a letter of a space-separated script ("python", "mp3", "gpt-4").

    Numbers alone are not Latin words: Chinese writes "2015年" with no space, but "我爱 Python".
    """
    return any(char.isalpha() and not is_cjk_letter(char) for char in token)
