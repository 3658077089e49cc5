"""Which characters belong to the scripts written without spaces: defined once, here.

Every part of the project that asks "is this Chinese?" (tokenizers, detokenisation, the
placeholders, corpus format detection and vocabulary estimates, ROUGE's choice of units, the
LCCC reader's space removal) uses these classes, so they can never disagree about a character.
Each class is a character-class body for use inside `[...]` in a regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Han ideographs (CJK unified, extension A, compatibility, supplementary planes): the runs that a
# Chinese word segmenter splits, and what makes a text Chinese.
HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# Scripts written without spaces between words: Han plus kana and bopomofo.
CJK_LETTER_CLASS = HAN_CLASS + "\u3040-\u30ff\u31f0-\u31ff\u3100-\u312f\u31a0-\u31bf"
# CJK punctuation and full-width forms.
CJK_PUNCTUATION_CLASS = "\u2e80-\u2fdf\u3000-\u303f\u3190-\u319f\ufe30-\ufe4f\uff00-\uffef"
# CJK letters plus CJK punctuation: no spaces around any of these.
CJK_CLASS = CJK_LETTER_CLASS + CJK_PUNCTUATION_CLASS
# Hangul (jamo, compatibility jamo, syllables). Korean puts spaces between words, so it is not
# in the classes above (the tokenizers keep its spaces), but each syllable is a unit of meaning.
HANGUL_CLASS = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"
# Latin letters (ASCII, Latin-1, Extended-A and -B): what English is written in.
LATIN_CLASS = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
# Letters that metrics count one by one (ROUGE's and the chat metrics' "char" unit): CJK letters
# and Hangul. A word of ASCII-only units would drop them all and score such text 0.
CHARACTER_UNIT_CLASS = CJK_LETTER_CLASS + HANGUL_CLASS
# Symbols that open a stretch of text: the detokenizer writes no space after them, and a sign
# after one starts a number ("($-5"). Straight quotes open or close by their count.
OPENING_CHARS = frozenset("([{“‘«¿¡$£€¥#@")
STRAIGHT_QUOTES = frozenset("\"'")
# A sign belongs to the number when it starts a word: at the start, after a space, an opening
# symbol or quote ("$-5", "(-5)") or a CJK character ("气温-5度"); "3-1" and "COVID-19" have none.
_SIGN_AFTER = re.escape("".join(sorted(OPENING_CHARS | STRAIGHT_QUOTES))) + CJK_CLASS
NUMBER_SIGN_PATTERN = f"(?:(?<![^\\s{_SIGN_AFTER}])[-+](?=\\d))"
# What joins the characters around it into one emoji: the zero-width joiner of sequences such as
# families, variation selectors, the keycap mark, skin tones and the tags of subdivision flags.
EMOJI_JOINING_CLASS = "\u200d\ufe00-\ufe0f\u20e3\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f"
# Regional indicator letters: two of them make one flag ("🇨" "🇳" -> 🇨🇳).
REGIONAL_INDICATOR_CLASS = "\U0001f1e6-\U0001f1ff"

_HAN_RE = re.compile(f"[{HAN_CLASS}]")
_CJK_RE = re.compile(f"[{CJK_CLASS}]")
_CJK_LETTER_RE = re.compile(f"[{CJK_LETTER_CLASS}]")
# One character-unit letter, or one run of other letters and digits (a word).
_EMOJI_JOINING_RE = re.compile(f"[{EMOJI_JOINING_CLASS}]")
_REGIONAL_INDICATOR_RE = re.compile(f"[{REGIONAL_INDICATOR_CLASS}]")
_UNIT_RE = re.compile(f"(?P<char>[{CHARACTER_UNIT_CLASS}])|[^\\W_{CHARACTER_UNIT_CLASS}]+")


def has_han(text: str) -> bool:
    """True when the text contains a Han ideograph anywhere."""
    return _HAN_RE.search(text) is not None


def is_cjk(char: str) -> bool:
    """True for a character written without spaces around it (Han, kana, CJK punctuation)."""
    return _CJK_RE.match(char) is not None


def is_cjk_letter(char: str) -> bool:
    """True for a Han, kana or bopomofo character (not CJK punctuation)."""
    return _CJK_LETTER_RE.match(char) is not None


def is_emoji_joining(char: str) -> bool:
    """Whether `char` joins the characters around it into one emoji (`EMOJI_JOINING_CLASS`)."""
    return _EMOJI_JOINING_RE.match(char) is not None


def joins_emoji(left: str, right: str) -> bool:
    """True where the last character of `left` and the first of `right` belong to one emoji
    (a joiner or modifier between them, or two regional indicators of a flag): a space there
    would show the emoji's parts ("👍 🏻", "🇨 🇳") instead of the emoji."""
    return (
        is_emoji_joining(right[0])
        or left[-1] == "\u200d"
        or (
            _REGIONAL_INDICATOR_RE.match(left[-1]) is not None
            and _REGIONAL_INDICATOR_RE.match(right[0]) is not None
        )
    )


def character_unit_share(texts: Iterable[str]) -> float:
    """The share of the texts' units that are character-unit letters (Han, kana, Hangul),
    counting each such letter as one unit and each run of other letters or digits as one
    word (0.0 for texts with neither).

    Why units and not characters: a Chinese headline with a brand name ("苹果发布iPhone")
    is four Han units and one word, not four letters against six.
    """
    characters = words = 0
    for text in texts:
        for found in _UNIT_RE.finditer(text):
            if found["char"] is None:
                words += 1
            else:
                characters += 1
    return characters / (characters + words) if characters + words else 0.0


# The languages a model may read (`nlp.generation.loading.vocabulary_languages` counts its
# vocabulary's tokens by these) and the script each is written in.
LANGUAGE_SCRIPTS: dict[str, str] = {"zh": HAN_CLASS, "en": LATIN_CLASS}
_LANGUAGE_RES = {
    language: re.compile(f"[{letters}]") for language, letters in LANGUAGE_SCRIPTS.items()
}


def script_languages(text: str) -> frozenset[str]:
    """The languages of `LANGUAGE_SCRIPTS` whose letters occur in the text ("zh" for any Han
    ideograph, "en" for any Latin letter); empty for text in other scripts or no letters."""
    return frozenset(
        language for language, pattern in _LANGUAGE_RES.items() if pattern.search(text)
    )
