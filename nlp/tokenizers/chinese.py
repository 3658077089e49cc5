"""The "jieba" tokenizer: Chinese words by jieba, everything else by the words tokenizer's rules.

Only runs of Han characters go to jieba. Latin words, numbers ("3.14", "37.5%"), URLs and
punctuation inside Chinese text follow exactly the same rules as in English text, so a mixed
sentence tokenizes the same way whichever tokenizer kind is picked for its Latin parts, and
whitespace can never become a token. (The cost: jieba dictionary words mixing Han and Latin,
such as "T恤", come out as two tokens.)

jieba is set up once per process, when the first tokenizer is made, on a private
`jieba.Tokenizer` (not the global one that other code might configure), with its "Building
prefix dict" chatter silenced and its cache file kept in the system temporary directory, never
in the working directory.
"""

from __future__ import annotations

import functools
import logging
import tempfile

import jieba

from nlp.tokenizers.words import WordTokenizer


@functools.cache
def jieba_segmenter() -> jieba.Tokenizer:
    """Return the process-wide jieba tokenizer, loading its dictionary on the first call
    (about 0.6 s)."""
    logging.getLogger("jieba").setLevel(logging.WARNING)
    segmenter = jieba.Tokenizer()
    segmenter.tmp_dir = tempfile.gettempdir()
    segmenter.initialize()
    return segmenter


class JiebaTokenizer(WordTokenizer):
    """Chinese word segmentation with jieba (HMM on, for names and new words)."""

    name = "jieba"

    def __init__(self, lowercase: bool = True) -> None:
        """Loads jieba's dictionary now, not at the first Han text: a served bundle's first
        Chinese message would otherwise wait for it, and under load so would the queue
        behind it (a bot's warm-up writes to "hello", which jieba never sees)."""
        super().__init__(lowercase)
        jieba_segmenter()

    def segment_han(self, run: str) -> list[str]:
        return [word for word in jieba_segmenter().cut(run, HMM=True) if word.strip()]
