import pytest

from nlp.evaluation.chat_metrics import chat_metrics, distinct_n, is_echo, top_reply_share


def test_distinct_n_counts_unique_ngrams_over_all_replies() -> None:
    replies = ["i am fine", "i am ok"]
    assert distinct_n(replies, 1, "word") == pytest.approx(4 / 6)
    assert distinct_n(replies, 2, "word") == pytest.approx(3 / 4)
    assert distinct_n(["你好", "你好"], 1, "char") == pytest.approx(2 / 4)
    assert distinct_n([], 1, "word") == 0.0


def test_top_reply_share_and_echo() -> None:
    replies = ["ok"] * 6 + ["a", "b", "c", "d", "e", "f"]
    assert top_reply_share(replies, 1) == pytest.approx(0.5)
    assert top_reply_share(replies, 5) == pytest.approx(10 / 12)
    assert is_echo("how are you today", "how are you", "word")
    assert not is_echo("how are you today", "fine thanks", "word")
    assert is_echo("今天天气很好", "天气很好", "char")


def test_chat_metrics_picks_units_per_language() -> None:
    report = chat_metrics(["你好吗", "吃了吗"], ["我很好", "吃了"])
    assert report["unit"] == "char"
    assert report["echo_share"] == pytest.approx(0.5)
    assert report["empty_share"] == 0.0
