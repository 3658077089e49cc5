"""Repetition in generated text: the share of outputs that say the same thing twice.

Why a figure of its own: ROUGE barely moves when a headline stutters ("雅虎:雅虎:的的的的",
"地方地方地方设计设计"): the repeated units still overlap the reference. People notice at once.

Definitions (the same for every model, whatever tokenizer it was trained with, so a words
model and a chars model are compared on one scale):
- Tokens: what a reader sees, the "chars" tokenizer's split of the lowercased output
  (`nlp.tokenizers.chars`): each Chinese (Han or kana) character one token, Latin words,
  numbers and punctuation by the words rules. Not a segmenter's words: jieba's "金融机构" and
  "美国空军" hid "金融金融机构" and "美国:美国空军" from a count of repeated words, and
  those headlines read as garbled.
- Content tokens: tokens with a letter or digit (not punctuation or symbols) that are neither
  English function words (`STOPWORDS`) nor a single Chinese character, which a headline
  legitimately reuses ("国务院批准中国银行"). Numbers are content: "8 8 8 8" is a stutter.
- An output *repeats a content token* when some content token occurs twice or more in it
  (n=1), and *repeats a bigram* when some pair of adjacent tokens, of any kind, occurs twice or
  more (n=2: catches "的的的的", "雅虎:雅虎:" and, in Chinese, any word of two characters or
  more said twice; a name said twice, as in "中国银行与中国移动", counts too).
- Shares are over all outputs; an empty output repeats nothing.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from functools import cache

from nlp.text.scripts import is_cjk_letter
from nlp.tokenizers.chars import CharTokenizer

_ENGLISH_STOPWORDS = (
    # English function words: articles, auxiliaries, pronouns, prepositions, conjunctions.
    "a an the and or but nor so yet if of to in on at by for with from as into onto over "
    "under about after before than then that this these those it its is are was were be been "
    "being am do does did has have had will would shall should can could may might must not "
    "no n't 's 'm 're 've 'll 'd i you he she we they me him her us them my your his our "
    "their what which who whom whose when where why how all any some up out off"
)
STOPWORDS: frozenset[str] = frozenset(_ENGLISH_STOPWORDS.split())


@cache
def _tokenizer() -> CharTokenizer:
    return CharTokenizer(lowercase=True)


def reader_tokens(text: str) -> list[str]:
    """The units a reader sees in `text`: Chinese characters one by one, other words whole."""
    return _tokenizer().tokenize(text)


def is_content(token: str) -> bool:
    """A token that carries meaning: has a letter or digit, and is neither a stopword nor a
    single Chinese character."""
    return (any(char.isalnum() for char in token) and token not in STOPWORDS
            and not is_cjk_letter(token))


def repeats_content_token(tokens: Sequence[str]) -> bool:
    """Some content token occurs at least twice (n=1)."""
    counts = Counter(token for token in tokens if is_content(token))
    return any(count > 1 for count in counts.values())


def repeats_bigram(tokens: Sequence[str]) -> bool:
    """Some pair of adjacent tokens occurs at least twice (n=2); overlapping pairs count
    ("的的的" holds ("的","的") twice)."""
    counts = Counter(itertools.pairwise(tokens))
    return any(count > 1 for count in counts.values())


def repetition_shares(outputs: Sequence[str]) -> dict[str, float]:
    """Shares of outputs repeating a content token, a bigram, and either of the two."""
    content = bigram = either = 0
    for output in outputs:
        tokens = reader_tokens(output)
        by_token, by_bigram = repeats_content_token(tokens), repeats_bigram(tokens)
        content += by_token
        bigram += by_bigram
        either += by_token or by_bigram
    total = max(1, len(outputs))
    return {
        "repeat_content_token_share": content / total,
        "repeat_bigram_share": bigram / total,
        "repeat_share": either / total,
    }
