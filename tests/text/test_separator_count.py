"""How many turns a source joined: the marker counted as `without_separator` finds it."""

from __future__ import annotations

from nlp.corpus.records import Pair
from nlp.text.normalize import separator_count, without_separator
from nlp.training.corpus_io import earlier_turns
from nlp.util.config import ExperimentConfig

SEP = ExperimentConfig().data.turn_separator


def test_the_marker_is_counted_in_any_case_and_in_any_width() -> None:
    assert separator_count("a __eot__ b __EOT__ c", SEP) == 2
    assert separator_count("a ＿＿ｅｏｔ＿＿ b", SEP) == 1  # full width, NFKC'd as the codec does
    assert separator_count("a __e\u200bot__ b", SEP) == 1  # a format char the codec removes
    assert separator_count("just one turn", SEP) == 0
    assert separator_count("a __eot__ b", "   ") == 0  # a blank separator marks nothing
    for text in ("a __EOT__ b", "a ＿＿ｅｏｔ＿＿ b", "a __e\u200bot__ b"):  # the rule's other user
        assert "eot" not in without_separator(text, SEP).lower()


def test_earlier_turns_counts_a_separator_in_another_case() -> None:
    pairs = [Pair("hi", "hello"), Pair("one __EOT__ two __eot__ three", "four")]
    assert earlier_turns(pairs, SEP) == 2
    assert earlier_turns([], SEP) == 0
