"""The message of a post with earlier turns, and replies that only repeat a turn."""

from __future__ import annotations

from nlp.retrieval import message_tokens, repeats_a_turn
from nlp.retrieval.turns import turns_of, words_key
from nlp.text.normalize import last_turn_text, separator_count, split_turns

SEP = " __eot__ "


def test_the_message_is_what_follows_the_last_separator() -> None:
    tokens = ["how", "was", "it", "?", "__eot__", "good", ".", "__EOT__", "and", "you", "?"]
    assert message_tokens(tokens, SEP) == ["and", "you", "?"]
    assert message_tokens(["just", "one"], SEP) == ["just", "one"]
    assert message_tokens(tokens, "  ") == tokens  # a blank separator marks nothing
    assert turns_of(tokens, SEP) == [["how", "was", "it", "?"], ["good", "."], ["and", "you", "?"]]


def test_a_reply_repeating_a_turn_in_other_punctuation_or_case_is_a_repeat() -> None:
    post = ["a", "playpen", "!", "__eot__", "ok", ",", "that's", "all", "of", "them", "."]
    assert words_key(["OK", ",", "that's", "all", "of", "them.No"]) != words_key(post)
    assert repeats_a_turn(["OK", "that's", "all", "of", "them", "!"], post, SEP)
    assert repeats_a_turn(["A", "playpen"], post, SEP)  # an earlier turn, said again
    assert not repeats_a_turn(["all", "of", "them", "?"], post, SEP)  # taking words up is fine
    assert not repeats_a_turn(["!"], post, SEP)  # no words: repeats nothing


def test_last_turn_text_is_the_message_a_context_joined_source_answers() -> None:
    assert last_turn_text("a b __eot__ c d __eot__ e f", SEP) == "e f"
    assert last_turn_text("just one", SEP) == "just one"
    assert last_turn_text("a __eot__ b", "  ") == "a __eot__ b"  # a blank separator marks nothing
    # in any case, as the tokens' split (`message_tokens`) matches it
    assert last_turn_text("a __EOT__ b", SEP) == "b"
    assert message_tokens(["a", "__EOT__", "b"], SEP) == ["b"]
    assert split_turns("a b __eot__ c d __EOT__ e f", SEP) == ["a b", "c d", "e f"]
    assert split_turns(" just one ", SEP) == [" just one "]  # as given, as `last_turn_text`


def test_last_turn_text_parts_the_turns_separator_count_counts() -> None:
    """One rule for where a turn ends: a marker in full width or with a format character the
    codec removes is a separator to both (the message used to be the whole text, though one
    separator was counted)."""
    for text in ("a ＿＿eot＿＿ b", "a ＿＿ｅｏｔ＿＿ b", "a __e\u200bot__ b", "a __EOT__ b"):
        assert separator_count(text, SEP) == 1
        assert last_turn_text(text, SEP) == "b"
    assert last_turn_text("ｑ１ ＿＿eot＿＿ ｑ２", SEP) == "q2"  # read as the codec reads it
