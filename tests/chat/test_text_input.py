"""Input cleaning and reply trimming: the bad-input cases every front end must survive."""

from nlp.chat.text_input import (
    InputKind,
    classify,
    fit_reply,
    keep_tail,
    telegram_length,
)
from nlp.text.cleaning import clean_message


def test_control_and_invisible_characters_are_removed_without_gluing_words() -> None:
    assert clean_message("a\x00b\tc\r\n d\u202ee\u200b") == "a b c de"


def test_zero_width_joiner_survives_for_emoji_sequences() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean_message(f"  {family}  ") == family


def test_classify() -> None:
    assert classify(clean_message(" \n\t ")) is InputKind.EMPTY
    assert classify("😀🎉 !!") is InputKind.NO_WORDS
    assert classify("hello 😀") is InputKind.TEXT
    assert classify("你好 hello Привет 123") is InputKind.TEXT


def test_keep_tail_starts_at_a_word_boundary() -> None:
    text = " ".join(f"word{i}" for i in range(1000))
    tail = keep_tail(text, 100)
    assert len(tail) <= 100
    assert tail.startswith("word") and text.endswith(tail)
    assert keep_tail("short", 100) == "short"


def test_keep_tail_of_text_without_spaces() -> None:
    assert keep_tail("x" * 5000, 1000) == "x" * 1000


def test_fit_reply_respects_telegram_length_in_utf16_units() -> None:
    assert fit_reply("ok") == "ok"
    emoji_wall = "😀" * 3000  # 6000 UTF-16 units
    fitted = fit_reply(emoji_wall)
    assert telegram_length(fitted) <= 4096 and fitted.endswith("…")
    words = fit_reply("word " * 2000)
    assert telegram_length(words) <= 4096 and words.endswith("word…")
