"""Join word tokens back into natural text; shared by every word-level tokenizer.

Why rules and not `" ".join`: generated replies and headlines are shown to people, so
"hello , world !" must read "hello, world!", Chinese must have no spaces between characters,
and mixed text keeps one space between a Chinese character and a Latin word ("我爱 Python 编程").

The spacing decided here is the canonical form of the word tokenizers: for realistic text
already written that way, `detokenize(tokenize(text)) == clean_text(text)`. Text written
differently comes back canonical ("hello , world" -> "hello, world", "我爱Python" ->
"我爱 python").

Rules, for each pair of neighbouring tokens:
1. no space before a closing token (. , ; : ! ? ) ] } … ” ’ », runs of them such as "...",
   clitics such as "n't" and "'s", or a straight quote that closes an open one);
2. no space after an opening token (( [ { “ ‘ « ¿ ¡ $ £ € ¥ # @, or a straight quote that opens);
3. next to a CJK character or CJK punctuation: a space only between a Han/kana character and a
   Latin word, none otherwise ("2015年", "你好,世界", "我爱 python");
4. inside Chinese text (the last token with letters was Chinese), no space after punctuation
   ("你好,python": the comma was a full-width "，" before NFKC) but a point before a Latin word
   (English going on after a Chinese name: "I love 北京. It is"), nor between a number and
   anything but a Latin word ("2“整容客”", "3个 iphone");
5. none inside an emoji: before a joiner or modifier, after a joiner, between the two letters of
   a flag ("👍🏻", "🇨🇳"; the tokenizers cut them into their code points);
6. otherwise one space;
7. but a space wherever writing two tokens together would read back as other tokens
   ("." "." stays ". .", since ".." is one token).
So the canonical form is stable: `tokenize(detokenize(tokens)) == tokens` for any tokens the
word tokenizers produce (a property test checks this).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from nlp.text.scripts import (
    CJK_PUNCTUATION_CLASS,
    HAN_CLASS,
    OPENING_CHARS,
    STRAIGHT_QUOTES,
    is_cjk,
    is_cjk_letter,
    joins_emoji,
)
from nlp.tokenizers.base import is_latin_word

CLOSING_CHARS = frozenset(".,;:!?)]}…”’»")
# Penn-Treebank clitics, split off by the words tokenizer ("don't" -> "do n't").
CLITICS = frozenset(
    clitic.replace("'", apostrophe)
    for clitic in ("n't", "'s", "'m", "'re", "'ve", "'ll", "'d")
    for apostrophe in "'’"
)


def detokenize(tokens: Sequence[str], split: Callable[[str], list[str]]) -> str:
    """Join word tokens into natural text following the module's spacing rules.

    `split` is the tokenizer's own rule for cleaned text, with Han runs kept whole. Tokens are
    only written together when `split` cuts the joined text back into the same tokens, so the
    canonical text always reads back as the same tokens ("." "." stays ". ." and does not
    become the single token ".."). Spaces and Han/kana junctions are hard token boundaries, so
    only the stretch since the last one needs re-checking.
    """
    parts: list[str] = []
    quote_open = dict.fromkeys(STRAIGHT_QUOTES, False)
    previous = ""
    previous_opens = False
    last_word_cjk = False  # was the last token with letters Chinese/Japanese? (numbers: neutral)
    stretch: list[str] = []  # tokens written since the last hard boundary
    for token in tokens:
        if not token:
            continue
        closes = _is_closing(token)
        opens = token[0] in OPENING_CHARS and all(char == token[0] for char in token)
        if token in STRAIGHT_QUOTES:
            closes = quote_open[token]
            opens = not closes
            quote_open[token] = opens
        if previous:
            if _space_between(previous, token, previous_opens, closes, last_word_cjk):
                joined = False
            elif is_cjk_letter(previous[-1]) and is_cjk_letter(token[0]):
                joined, stretch = True, []
            else:
                joined = split("".join(stretch) + token) == [*stretch, token]
            if not joined:
                parts.append(" ")
                stretch = []
        parts.append(token)
        stretch.append(token)
        if any(char.isalpha() for char in token):
            last_word_cjk = is_cjk_letter(token[-1])
        previous, previous_opens = token, opens
    return "".join(parts)


def spaced_between(left: str, right: str, split: Callable[[str], list[str]]) -> bool:
    """Whether the canonical text writes a space between the written texts `left` and
    `right`: the rules above on the last token of one and the first of the other (what
    restoring a placeholder's value asks of its neighbours)."""
    ends, starts = split(left), split(right)
    return bool(ends and starts) and " " in detokenize([ends[-1], starts[0]], split)


_CHINESE_SIDE = re.compile(f"[{HAN_CLASS}{CJK_PUNCTUATION_CLASS}]")  # Han or CJK punctuation
_LATIN_EDGE = re.compile("[A-Za-z]")


def spaced_unless_chinese(left: str, right: str) -> bool:
    """Whether a space stays between the texts `left` and `right` when neither a Chinese
    character nor CJK punctuation meets anything but a Latin letter across it.

    The spacing of text whose tokenizer has no word rules (plain sentencepiece keeps the
    spaces it was given), as restoring a placeholder's value asks of its neighbours:
    canonical Chinese text spaces only Latin words, so "营收 2.4亿元" comes out as
    "营收2.4亿元" while "iPhone 发布" keeps its space.
    """
    last, first = left[-1], right[0]
    return not (
        (_CHINESE_SIDE.match(last) and not _LATIN_EDGE.match(first))
        or (_CHINESE_SIDE.match(first) and not _LATIN_EDGE.match(last))
    )


# A point ends an English sentence; "!" and "?" are what NFKC leaves of Chinese "！？" too
SENTENCE_ENDS = frozenset({".", "..."})


def _is_closing(token: str) -> bool:
    return token.lower() in CLITICS or all(char in CLOSING_CHARS for char in token)


def _space_between(
    left: str, right: str, left_opens: bool, right_closes: bool, last_word_cjk: bool
) -> bool:
    if right_closes or left_opens or joins_emoji(left, right):
        return False
    if is_cjk(left[-1]) or is_cjk(right[0]):
        return (is_cjk_letter(left[-1]) and is_latin_word(right)) or (
            is_latin_word(left) and is_cjk_letter(right[0])
        )
    if last_word_cjk and not is_latin_word(left):  # a number or symbol inside Chinese text
        # a point before a Latin word: English goes on after a Chinese name ("I love 北京.
        # It is"); other punctuation inside Chinese text ("你好,python", "你好!Python") none
        left_is_punctuation = not any(char.isalnum() for char in left)
        ends_sentence = left in SENTENCE_ENDS
        return (ends_sentence or not left_is_punctuation) and is_latin_word(right)
    return True
