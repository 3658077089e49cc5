"""The chat's own words in the chat's language: `nlp.chat.messages` and the responder's use
of it (the bot's, through Telegram's language_code, are in tests/bot/test_e2e.py)."""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Mapping

import pytest

from nlp.chat.messages import CHINESE, ENGLISH, TABLES, chat_messages
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import BEAM_RANGE, LENGTH_RANGE, ChatSettings, SettingsStore
from nlp.decoding import DecodeOptions
from nlp.text.scripts import has_han
from tests.fakes.fake_generators import ScriptedGenerator, fake_model

# Three Latin words in a row: an English sentence, not a command or a model's name.
ENGLISH_WORDS = re.compile(r"[A-Za-z']+ [A-Za-z']+ [A-Za-z']+")
# Every command and kind of input whose answer is the chat's own words.
OWN_WORDS = ["", "   ", "😀🎉👍", "/start", "/help", "/settings", "/beam 99", "/beam x",
             "/beam 3", "/greedy", "/sample 9", "/sample x", "/sample 0.8", "/length 0",
             "/length x", "/length 20", "/why", "/good", "/bad", "/reload", "/reset",
             "/nonsense", "how are you?"]


def chinese(text: str) -> bool:
    return has_han(text) and not ENGLISH_WORDS.search(text)


def responder_for(languages: tuple[str, ...], generator: ScriptedGenerator | None = None
                  ) -> ChatResponder:
    model = dataclasses.replace(fake_model(generator), languages=languages)
    return ChatResponder(model, store=SettingsStore(":memory:", ChatSettings()))


async def test_a_chinese_models_chat_speaks_chinese() -> None:
    responder = responder_for(("zh",))
    answers = {line: (await responder.respond("c", line, is_admin=True)).text
               for line in OWN_WORDS}
    await responder.aclose()
    assert {line: text for line, text in answers.items() if not chinese(text)} == {}
    assert f"{BEAM_RANGE[0]}-{BEAM_RANGE[1]}" in answers["/help"]  # the ranges it accepts


async def test_a_chinese_models_apologies_are_chinese_too() -> None:
    def broken(message: str) -> list[str]:
        raise RuntimeError("the model fell over")

    failing = responder_for(("zh",), ScriptedGenerator(candidates=broken))
    speechless = responder_for(("zh",), ScriptedGenerator(candidates=lambda m: ["  "]))
    failed = (await failing.respond("c", "你好")).text
    nothing = (await speechless.respond("c", "你好")).text
    for responder in (failing, speechless):
        await responder.aclose()
    assert chinese(failed) and chinese(nothing) and failed != nothing


async def test_an_english_models_chat_speaks_english_and_the_users_language_decides_only_for_a_model_of_both() -> None:  # noqa: E501
    english = responder_for(("en",))
    both = responder_for(("zh", "en"))
    said = (await english.respond("c", "/help", language="zh-hans")).text
    for_zh = (await both.respond("a", "/help", language="zh-hans")).text
    for_en = (await both.respond("b", "/help", language="en")).text
    remembered = (await both.respond("a", "/settings")).text  # the chat's language is kept
    for responder in (english, both):
        await responder.aclose()
    assert said == ENGLISH.help_text() and for_en == ENGLISH.help_text()
    assert for_zh == CHINESE.help_text() and chinese(remembered)


@pytest.mark.parametrize(
    ("model", "user", "table"),
    [(("zh",), "en", CHINESE), (("en",), "zh-hans", ENGLISH), ((), "zh-CN", CHINESE),
     (("zh", "en"), "zh_TW", CHINESE), (("zh", "en"), "fr", ENGLISH), ((), None, ENGLISH),
     (("ru",), "zh", CHINESE), (("zh", "en"), None, CHINESE), (("en", "zh"), None, ENGLISH)],
)
def test_which_table_a_chat_gets(model: tuple[str, ...], user: str | None, table: object) -> None:
    assert chat_messages(model, user) is table


def test_every_table_fills_the_same_blanks_as_english() -> None:
    """A translation that loses a `{field}` would lose what it says (or raise on format)."""
    def blanks(text: str | Mapping[str, str]) -> set[str] | dict[str, set[str]]:
        if not isinstance(text, str):  # a sentence per mode or ranker
            return {key: blanks(value) for key, value in text.items()}  # type: ignore[misc]
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    for table in TABLES.values():
        for item in dataclasses.fields(table):
            english, other = getattr(ENGLISH, item.name), getattr(table, item.name)
            assert blanks(other) == blanks(english), (table.language, item.name)
        assert str(LENGTH_RANGE[1]) in table.help_text()
        assert table.replies_text(DecodeOptions(strategy="sample", temperature=0.8))


@pytest.mark.parametrize("words", [ENGLISH, CHINESE])
def test_why_says_a_retrieved_reply_under_the_gate_was_sent_below_it(words) -> None:
    """A retrieved reply sent below the threshold (retrieved replies only, or the model
    wrote nothing usable) is not said to have been sent because it reached it."""
    import numpy as np

    from nlp.generation.text_generator import Generation

    def retrieved(fit: float) -> Generation:
        return Generation("sure .", 0.0, ["sure", "."], ["hi"], np.zeros((2, 1)),
                          provenance="retrieved", pair="dd.jsonl:3", post="hi", fit=fit)

    options = DecodeOptions(retrieved_threshold=0.5)
    above = words.provenance(retrieved(0.7), options)
    below = words.provenance(retrieved(0.3), options)
    gate, under = (text.format(threshold=0.5).strip()
                   for text in (words.fit_gate, words.fit_under_gate))
    assert above.endswith(gate) and under not in above
    assert below.endswith(under)
