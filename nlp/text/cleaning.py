"""Message text as a reply or a model input can use it: control and invisible characters out,
whitespace collapsed.

Why here and not in the chat: a reply candidate is sendable only when something is left of it
after this (`nlp.chat.responder.choose_reply`), and the generator must know which retrieved
replies are sendable before it decides whether to decode (`nlp.generation.retrieved_fit`), two
floors below the chat. Unlike `nlp.text.normalize.normalize_text` (what corpora and the model
read), it changes no letter: people see the result.
"""

from __future__ import annotations

import re
import unicodedata

# Invisible characters that change how text *looks* without being words: bidi overrides and
# isolates (a classic spoofing trick), zero-width space/no-break, BOM. The zero-width joiner
# (U+200D) is kept because emoji sequences need it.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u2060\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"),
    None,
)
_SPACES = re.compile(r"\s+")


def clean_message(text: str) -> str:
    """Drop control and invisible characters and collapse whitespace to single spaces.

    Control characters become spaces (not nothing) so that "a\\x00b" does not glue two words.
    """
    text = text.translate(_INVISIBLE)
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return _SPACES.sub(" ", text).strip()


def has_words(text: str) -> bool:
    """Whether `text` holds a letter or a digit: something a word-level model can read.

    One definition for both sides of a conversation: the chat answers a message of emoji or
    punctuation alone without a model call (`nlp.chat.text_input.classify`), and BM25's reply
    index never matches a training post without a word (`nlp.training.reply_index`), since
    what people said after "!!!" or ":)" answered the turns before it, not the mark.
    """
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def undecodable(text: str) -> bool:
    """Whether `text` holds bytes its reader could not decode: lone surrogates, which only
    `errors="surrogateescape"` (stdin's, and line readers that keep the line) makes. Cleaning
    drops them, so such text must be refused rather than read without those letters."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
