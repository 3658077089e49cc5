"""Re-ranking the n-best list against echoes, repeats and over-used generic replies."""

import dataclasses

import numpy as np

from nlp.chat.rerank import ReplyRanker
from nlp.generation.text_generator import Generation


def candidates(*texts: str) -> list[Generation]:
    return [
        Generation(t, -1.0 - 0.5 * i, t.split(), [], np.zeros((0, 0)))
        for i, t in enumerate(texts)
    ]


def test_an_echo_of_the_message_loses_to_a_real_reply() -> None:
    ranker = ReplyRanker()
    best = ranker.choose("c", candidates("how are you ?", "i am fine ."), "How are you?")
    assert best.text == "i am fine ."


def test_a_chinese_near_parrot_is_an_echo_too() -> None:
    """Split on spaces, "我喜欢看电影" was one word that "你喜欢看电影吗" did not hold: the
    echo penalty never fired on Chinese. Counted by character, it does."""
    ranker = ReplyRanker()
    assert ranker.penalty("c", "我喜欢看电影", "你喜欢看电影吗") > 0
    assert ranker.penalty("c", "是的，周末常去", "你喜欢看电影吗") == 0
    best = ranker.choose("c", candidates("我喜欢看电影", "是的，周末常去"), "你喜欢看电影吗")
    assert best.text == "是的，周末常去"


def test_a_person_s_retrieved_answer_taking_up_the_message_s_words_is_no_echo() -> None:
    """The echo penalty is the decoder's: a retrieved reply that takes up the message's
    words answers it, and keeps its lead over a lower-scored one."""
    ranker = ReplyRanker()
    message = "Really? Is he married?"
    assert ranker.penalty("c", "Yes , he's married .", message) > 0
    assert ranker.penalty("c", "Yes , he's married .", message, written=False) == 0
    retrieved = [dataclasses.replace(c, provenance="retrieved")
                 for c in candidates("Yes , he's married .", "He isn't a member of the club .")]
    assert ranker.choose("c", retrieved, message).text == "Yes , he's married ."
    generated = candidates("Yes , he's married .", "He isn't a member of the club .")
    assert ranker.choose("c", generated, message).text == "He isn't a member of the club ."


def test_the_previous_reply_is_not_repeated() -> None:
    ranker = ReplyRanker()
    ranker.remember("c", "i am fine .")
    assert ranker.choose("c", candidates("I am fine!", "not bad ."), "and you").text == "not bad ."
    assert ranker.choose("d", candidates("I am fine!", "not bad ."), "and you").text == "I am fine!"


def test_a_generic_line_said_everywhere_is_penalised_more_and_more() -> None:
    ranker = ReplyRanker()
    penalties = []
    for chat in range(50):
        penalties.append(ranker.penalty("new", "i don't know .", "question"))
        ranker.remember(str(chat), "i don't know .")
    assert penalties[0] == 0 and penalties[1] < penalties[10] < penalties[49]
    best = ranker.choose("new", candidates("i don't know .", "ask me later ."), "question")
    assert best.text == "ask me later ."


def test_when_every_candidate_is_bad_the_best_scored_still_wins() -> None:
    ranker = ReplyRanker()
    assert ranker.choose("c", candidates("hello", "hello !"), "hello").text == "hello"


def test_empty_replies_rank_last() -> None:
    ranker = ReplyRanker()
    assert ranker.choose("c", candidates("...", "fine"), "hi").text == "fine"
