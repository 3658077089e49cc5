"""The one definition of "the same words" (the chat's repeat penalties, retrieval's repeats)."""

from __future__ import annotations

from nlp.text.normalize import words_only


def test_punctuation_case_and_spacing_do_not_count() -> None:
    assert words_only("I see.") == words_only("i  see !") == "i see"
    assert words_only("OK , that's all of them .") == "ok that s all of them"
    assert words_only("...!?") == ""


def test_chinese_characters_are_words() -> None:
    assert words_only("好的，谢谢！") == "好的 谢谢"
