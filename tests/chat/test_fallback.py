"""No nonsense sent: below the calibrated threshold of fit, or with generated replies off and
nothing retrieved, the chat sends a sensible fallback line (provenance "fallback") through
the responder and through `nlp.chat.offline.bot_choices` alike; with the defaults, nothing
changes."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from nlp.chat.messages import CHINESE, ENGLISH
from nlp.chat.offline import bot_choices
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SettingsStore
from nlp.decoding import DecodeOptions
from nlp.generation.text_generator import Generation
from tests.fakes.fake_generators import (
    CALIBRATED_RANKER,
    ConfidentGenerator,
    ProvenanceGenerator,
    ScriptedGenerator,
    fake_model,
    reply_for,
)

FALLBACKS = {*ENGLISH.fallback_statement.splitlines(), *ENGLISH.fallback_question.splitlines()}


def threshold(value: float) -> DecodeOptions:
    """A fallback threshold on the ranker the fake's bundle holds a calibration of (a real
    generator refuses one on any other)."""
    return DecodeOptions(rerank=CALIBRATED_RANKER, fallback_threshold=value)


def responder(generator: ScriptedGenerator, options: DecodeOptions,
              languages: tuple[str, ...] = ("en",)) -> ChatResponder:
    model = dataclasses.replace(fake_model(generator), languages=languages)
    return ChatResponder(model, store=SettingsStore(":memory:"), base_options=options)


async def test_below_the_threshold_the_fallback_is_sent_and_explained() -> None:
    chat = responder(ConfidentGenerator(0.3), threshold(0.5))
    reply = await chat.respond("1", "the weather was strange today")
    assert reply.text in ENGLISH.fallback_statement.splitlines() and reply.provenance == "fallback"
    why = await chat.respond("1", "/why")
    assert why.text == ENGLISH.fallback and why.photo is None
    question = await chat.respond("1", "what do you think of it?")
    assert question.text in ENGLISH.fallback_question.splitlines()
    await chat.aclose()


async def test_a_candidate_that_reaches_the_threshold_is_sent() -> None:
    # the best (0.8) fits; with the threshold between the best and the next, only it competes
    chat = responder(ConfidentGenerator(0.8, step=0.5), threshold(0.5))
    reply = await chat.respond("1", "hello there")
    assert reply.text == reply_for("hello there") and reply.provenance == "generated"
    await chat.aclose()


async def test_the_defaults_never_fall_back() -> None:
    # ranked by a ranker without a calibration (no confidence), or with one
    chat = responder(ConfidentGenerator(0.01), DecodeOptions())
    assert (await chat.respond("1", "hello there")).text == reply_for("hello there")
    calibrated = responder(ConfidentGenerator(0.01), DecodeOptions(rerank=CALIBRATED_RANKER))
    assert (await calibrated.respond("1", "hello there")).text == reply_for("hello there")
    await calibrated.aclose()
    # no candidate at all: the apology, as before
    empty = responder(ScriptedGenerator(candidates=lambda message: []), DecodeOptions())
    assert (await empty.respond("1", "hello there")).text == ENGLISH.no_idea
    await chat.aclose()
    await empty.aclose()


async def test_without_a_threshold_a_candidate_without_confidence_is_sent() -> None:
    """The tuned chat's default, retrieved replies only and no threshold, with a ranker the
    bundle holds no calibration of: its candidates have no confidence and are sent (the
    fallback is for a message nothing was retrieved for)."""
    options = DecodeOptions(generated=False, retrieve=3, rerank="retrieval")
    generator = ConfidentGenerator(0.9)
    assert all(math.isnan(c.confidence) for c in generator.generate(["hello"], options)[0])
    chat = responder(generator, options)
    assert (await chat.respond("1", "hello there")).text == reply_for("hello there")
    await chat.aclose()


async def test_with_generated_replies_off_nothing_retrieved_is_a_fallback() -> None:
    empty = ScriptedGenerator(candidates=lambda message: [])
    chat = responder(empty, DecodeOptions(generated=False, retrieve=3))
    reply = await chat.respond("1", "hello there")
    assert reply.text in FALLBACKS and reply.provenance == "fallback"
    assert empty.calls[-1][1].generated is False  # the generator is told to leave them out
    await chat.aclose()


async def test_a_chat_does_not_hear_the_same_fallback_twice_running_and_replays_alike() -> None:
    options = threshold(0.9)
    first, again = (responder(ConfidentGenerator(0.1), options) for _ in range(2))
    said = [(await first.respond("7", "i went out")).text for _ in range(4)]
    assert all(a != b for a, b in itertools.pairwise(said))
    assert [(await again.respond("7", "i went out")).text for _ in range(4)] == said
    await first.aclose()
    await again.aclose()


async def test_a_chinese_chat_falls_back_in_chinese() -> None:
    chat = responder(ConfidentGenerator(0.1), threshold(0.5), ("zh",))
    reply = await chat.respond("1", "你今天吃饭了吗")
    assert reply.text in CHINESE.fallback_question.splitlines() and reply.provenance == "fallback"
    await chat.aclose()


def test_bot_choices_send_the_fallback_below_the_threshold_and_the_candidate_above() -> None:
    posts = ["the weather was strange today", "你去哪里了？"]
    low = bot_choices(ConfidentGenerator(0.2), posts, threshold(0.5))
    assert [reply.provenance for reply in low] == ["fallback", "fallback"]
    assert low[0].text in ENGLISH.fallback_statement.splitlines()
    assert low[1].text in CHINESE.fallback_question.splitlines()  # the post's own language
    high = bot_choices(ProvenanceGenerator("retrieved"), posts, DecodeOptions())
    assert [reply.provenance for reply in high] == ["retrieved", "retrieved"]
    fits = bot_choices(ConfidentGenerator(0.7), posts, threshold(0.5))
    assert [reply.text for reply in fits] == [reply_for(post) for post in posts]


def test_a_statement_that_opens_like_a_question_gets_a_statement_s_line() -> None:
    """Wishes, commands and statements holding a question word are answered as statements
    (`nlp.chat.question` has the rules; tests/chat/test_question.py the cases)."""
    for message in ("Have a nice day", "Do it now."):
        assert ENGLISH.fallback_reply(message, "1", 0) in ENGLISH.fallback_statement.splitlines()
    for message in ("没什么", "我不知道他在说什么"):
        assert CHINESE.fallback_reply(message, "1", 0) in CHINESE.fallback_statement.splitlines()
    assert ENGLISH.fallback_reply("how are you", "1", 0) in ENGLISH.fallback_question.splitlines()


def test_bot_choices_apologise_in_the_post_s_language() -> None:
    """With no usable candidate the offline bot apologises as the chat would: in Chinese to
    a Chinese post (it used to be English whatever the post)."""
    empty = ScriptedGenerator(candidates=lambda message: [])
    sent = bot_choices(empty, ["今天天气怎么样", "how is the weather"], DecodeOptions())
    assert [reply.text for reply in sent] == [CHINESE.no_idea, ENGLISH.no_idea]
    assert {reply.provenance for reply in sent} == {"apology"}


async def test_a_setting_the_calibration_does_not_hold_for_is_refused_and_the_chat_goes_on(
) -> None:
    """With a fallback threshold, /beam 3 (an n-best of 3) or /greedy would decode pools the
    calibration was not fitted on, and every later message of the chat would fail; they are
    refused when set, in the chat's words with the reason, and the chat keeps its settings
    and its replies. /beam 6 keeps the fitted pool (the n-best stays 5) and is taken."""
    chat = responder(ConfidentGenerator(0.8, step=0.5), threshold(0.5))
    before = chat.store.get("1")
    for command in ("/beam 3", "/greedy"):
        refused = await chat.respond("1", command)
        assert refused.text.startswith("I kept the settings as they were")
        assert "fallback_threshold" in refused.text
        assert chat.store.get("1") == before
    reply = await chat.respond("1", "hello there")
    assert reply.text == reply_for("hello there") and reply.provenance == "generated"
    taken = await chat.respond("1", "/beam 6")
    assert not taken.text.startswith("I kept") and chat.store.get("1").beam_size == 6
    await chat.aclose()


async def test_settings_stored_under_another_model_give_way_to_the_defaults() -> None:
    """A chat's `/beam 3`, stored under a model without a fallback threshold, then `/reload`
    onto one whose calibration holds for the default beam only: every message of that chat
    failed ("something went wrong") until it changed its settings back. Its settings give
    way to the defaults, and it is answered."""

    chat = responder(ConfidentGenerator(0.8, step=0.5), threshold(0.5))
    chat.store.update("1", beam_size=3)  # stored before the reload
    reply = await chat.respond("1", "hello there")
    assert reply.text.endswith(reply_for("hello there")) and reply.provenance == "generated"
    assert chat.store.get("1") == chat.store.defaults
    await chat.aclose()


async def test_a_chat_is_told_once_that_its_settings_gave_way_to_a_reloaded_model() -> None:
    """The stored settings of a chat the reloaded model cannot decode with were dropped in
    silence: the chat that had asked for /beam 3 got beam 5's replies and no word why."""
    calibrated = ConfidentGenerator(0.8, step=0.5)
    chat = ChatResponder(fake_model(ScriptedGenerator()), store=SettingsStore(":memory:"),
                         loader=lambda: fake_model(calibrated),
                         options_for=lambda model: threshold(0.5))
    await chat.respond("1", "/beam 3")
    assert "Reloaded" in (await chat.respond("2", "/reload", is_admin=True)).text
    told = await chat.respond("1", "hello there")
    notice, reply = told.text.split("\n\n")
    assert ENGLISH.gave_way_text(DecodeOptions(beam_size=3)) == notice
    assert "beam size 3" in notice and reply == reply_for("hello there")
    assert (await chat.respond("1", "hello again")).text == reply_for("hello again")
    assert (await chat.respond("2", "hello there")).text == reply_for("hello there")
    await chat.aclose()


def test_a_fitting_retrieved_reply_short_of_confidence_leaves_the_model_s_confident_one() -> None:
    """With the gate and a fallback threshold both on, the gate dropped the model's own
    candidates first (a retrieved reply fitted), then the confidence dropped the retrieved
    one: the fallback went out though the model's reply reached the threshold."""
    from nlp.chat.rerank import ReplyRanker
    from nlp.chat.responder import choose_reply
    from nlp.generation.text_generator import Generation

    def candidate(text: str, provenance: str, confidence: float, fit: float) -> Generation:
        return Generation(text, -1.0, text.split(), [], np.zeros((0, 0), np.float32),
                          provenance=provenance, confidence=confidence, fit=fit)  # type: ignore[arg-type]

    own = candidate("I like jazz a lot.", "generated", 0.9, math.nan)
    retrieved = candidate("Yes, I play the piano.", "retrieved", 0.2, 0.6)
    chosen = choose_reply(ReplyRanker(), "c", [own, retrieved], "do you like music?",
                          threshold=0.5, fallback="Tell me more.", retrieved_threshold=0.5)
    assert chosen is not None and chosen[1].provenance == "generated"
    confident = dataclasses.replace(retrieved, confidence=0.8)
    chosen = choose_reply(ReplyRanker(), "c", [own, confident], "do you like music?",
                          threshold=0.5, fallback="Tell me more.", retrieved_threshold=0.5)
    assert chosen is not None and chosen[1].provenance == "retrieved"


async def test_why_gives_a_reply_s_calibrated_confidence() -> None:
    """The confidence that decides under a fallback threshold was never shown by /why."""
    chat = responder(ConfidentGenerator(0.7), threshold(0.5))
    await chat.respond("1", "the weather was strange today")
    assert "calibrated, is 0.70" in (await chat.respond("1", "/why")).text
    await chat.aclose()


def test_bot_choices_read_the_message_not_the_turns_joined_before_it() -> None:
    """A model with earlier turns reads them joined before the message; the offline bot gave
    the joined text to the choice (its echo penalty counted the earlier turns' words) and to
    the fallback and apology, where the chat gives the message alone."""
    empty = ScriptedGenerator(candidates=lambda message: [])
    sent = bot_choices(empty, ["今天天气怎么样 __eot__ how is the weather"], DecodeOptions())
    assert [reply.text for reply in sent] == [ENGLISH.no_idea]


def test_bot_choices_read_the_model_s_own_turn_separator() -> None:
    """The tuner and chat_quality called the offline bot without a separator: a model with
    its own read the whole joined context as the message."""
    from types import SimpleNamespace

    empty = ScriptedGenerator(candidates=lambda message: [])
    empty.bundle = SimpleNamespace(  # type: ignore[attr-defined]
        config=SimpleNamespace(data=SimpleNamespace(turn_separator=" || ")))
    sent = bot_choices(empty, ["今天天气怎么样 || how is the weather"], DecodeOptions())
    assert [reply.text for reply in sent] == [ENGLISH.no_idea]


async def test_a_chat_s_own_settings_that_serve_answer_every_message_of_it() -> None:
    """Checked again at every message (a /reload may have made them unusable), a chat's
    settings that the model serves are kept: each message is answered with them."""
    chat = responder(ConfidentGenerator(0.8, step=0.5), threshold(0.5))
    await chat.respond("1", "/beam 6")
    for message in ("hello there", "and again", "once more"):
        assert (await chat.respond("1", message)).provenance == "generated"
    assert chat.chat_options("1").beam_size == 6 and chat.store.get("1").beam_size == 6
    await chat.aclose()


async def test_settings_say_what_a_chat_is_answered_with_after_its_own_gave_way() -> None:
    """After a reload made a chat's stored settings unusable, /settings still showed them
    (beam size 3) while its messages were answered with the defaults (beam size 5)."""
    chat = responder(ConfidentGenerator(0.8, step=0.5), threshold(0.5))
    chat.store.update("1", beam_size=3)  # stored before the reload
    said = (await chat.respond("1", "/settings")).text.split("\n\n")[-1]
    assert "beam size 5" in said and "beam size 3" not in said
    await chat.aclose()
