"""What chooses the reply is said as it is: a chat whose model sends retrieved replies only
(the tuned default with an index) does not claim to decode by beam search, and a decoder
setting that changes nothing says so; in the chat (both languages), `s2s chat` and `s2s bot`
at start, `s2s serve`'s model list and `nlp.api`."""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from pathlib import Path

import pytest

from nlp.api import Model
from nlp.chat.messages import CHINESE, ENGLISH, TABLES
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import ChatSettings, SettingsStore
from nlp.decoding import DecodeOptions
from nlp.generation.decode_settings import DecodeSettings
from nlp.generation.reply_choice import REPLY_MODES, ModelReads
from nlp.serving.http.models import ServedModel
from tests.fakes.fake_generators import fake_model

RETRIEVED_ONLY = DecodeOptions(retrieve=10, generated=False, rerank="retrieval")
SAID_RETRIEVED = (
    "Replies: one of the replies people wrote to the 10 training posts nearest your message, "
    "in the retrieval's order (the reply to the post most like your message first); the "
    "model does not generate."
)


def responder(options: DecodeOptions, languages: tuple[str, ...] = ("en",)) -> ChatResponder:
    model = dataclasses.replace(fake_model(), languages=languages)
    store = SettingsStore(":memory:", ChatSettings.from_options(options))
    return ChatResponder(model, store=store, base_options=options)


async def test_a_retrieving_chat_says_the_model_does_not_generate_and_its_decoder_settings_do_nothing() -> None:  # noqa: E501
    chat = responder(RETRIEVED_ONLY)
    settings = (await chat.respond("1", "/settings")).text
    beam = (await chat.respond("1", "/beam 3")).text
    length = (await chat.respond("1", "/length 12")).text
    await chat.aclose()
    assert settings.startswith(SAID_RETRIEVED) and "Decoding:" not in settings
    assert "no effect" in settings
    for answer in (beam, length):
        assert not answer.startswith("OK") and "have no effect" in answer, answer
    assert "beam size 3" in beam and "12 tokens" in length  # kept all the same


async def test_a_generating_chat_says_how_the_model_writes() -> None:
    chat = responder(DecodeOptions())
    settings = (await chat.respond("1", "/settings")).text
    beam = (await chat.respond("1", "/beam 3")).text
    await chat.aclose()
    assert settings.startswith("Replies: the model's own, by beam search, beam size 5, at most "
                               "30 tokens") and "no effect" not in settings
    assert beam.startswith("OK. Replies: the model's own, by beam search, beam size 3")


async def test_a_chinese_retrieving_chat_says_it_in_chinese() -> None:
    chat = responder(RETRIEVED_ONLY, ("zh",))
    settings = (await chat.respond("1", "/settings")).text
    beam = (await chat.respond("1", "/beam 3")).text
    await chat.aclose()
    assert settings.startswith(CHINESE.replies_text(RETRIEVED_ONLY))
    assert "模型自己不写回复" in settings and "不起作用" in settings
    assert "不起作用" in beam and not beam.startswith(CHINESE.changed.format(settings=""))


@pytest.mark.parametrize(
    ("options", "said"),
    [(DecodeOptions(retrieve=5), "the model's own (by beam search, beam size 5, at most 30 "
      "tokens) or one of the replies people wrote to the 5 training posts"),
     (DecodeOptions(generated=False), "none found or written"),
     (dataclasses.replace(RETRIEVED_ONLY, fallback_threshold=0.4), "below 0.4")],
)
def test_every_mode_is_said(options: DecodeOptions, said: str) -> None:
    assert said in ENGLISH.replies_text(options)


def test_retrieved_replies_only_under_a_threshold_say_the_fitting_ones_are_chosen_first() -> None:
    """With `--no-generated` a retrieved threshold still keeps the retrieved replies that fit
    where any does (`competing`); /settings and the decoding line said the ranking alone
    chose among all of them."""
    from nlp.generation.decode_args import describe_options
    from nlp.generation.reply_choice import RETRIEVED, reply_choice

    gated = dataclasses.replace(RETRIEVED_ONLY, retrieved_threshold=0.45)
    assert (reply_choice(gated).mode, reply_choice(gated).retrieved_threshold) == (RETRIEVED, 0.45)
    assert ENGLISH.replies_text(gated).startswith(SAID_RETRIEVED)
    assert "(a fit of at least 0.45), I choose among those only" in ENGLISH.replies_text(gated)
    assert "契合度至少 0.45" in CHINESE.replies_text(gated)
    assert "fit reaches 0.45 where any does" in describe_options(gated)
    for said in (ENGLISH.replies_text(RETRIEVED_ONLY), describe_options(RETRIEVED_ONLY)):
        assert "fit" not in said  # no threshold: the ranking alone
    nothing = dataclasses.replace(gated, retrieve=0)  # nothing retrieved: no fit to reach
    assert "fit" not in ENGLISH.replies_text(nothing) + describe_options(nothing)


def test_a_refining_model_writes_its_own_replies_even_without_generated_ones() -> None:
    text = ENGLISH.replies_text(RETRIEVED_ONLY, ModelReads(refines=True))
    assert "written reading a person's reply" in text and "does not generate" not in text


async def test_a_model_trained_on_specificity_says_how_specific_it_is_asked_to_be() -> None:
    """A model trained on specificity buckets (`nlp.control`) is told how specific to be:
    /settings and a settings change say it, in both languages; a plain model says nothing of
    it."""
    from nlp.util.config import DataConfig

    options = DecodeOptions(specificity=0.7)
    plain = fake_model()
    model = dataclasses.replace(plain, data=DataConfig(specificity_buckets=10))
    chat = ChatResponder(model, store=SettingsStore(":memory:", ChatSettings.from_options(options)),
                         base_options=options)
    settings = (await chat.respond("1", "/settings")).text
    beam = (await chat.respond("1", "/beam 3")).text
    await chat.aclose()
    assert "beam size 5, asked to be as specific as its training replies at the 70th " \
        "percentile" in settings
    assert "beam size 3, asked to be as specific" in beam
    assert "第 70 百分位" in CHINESE.replies_text(options, ModelReads(controls=True))
    assert "specific" not in ENGLISH.replies_text(options)


def test_a_table_that_does_not_say_every_mode_and_ranker_does_not_construct() -> None:
    for table in TABLES.values():
        assert set(table.replies) == set(REPLY_MODES)
        with pytest.raises(ValueError, match="replies"):
            dataclasses.replace(table, replies={"generated": table.replies["generated"]})
        with pytest.raises(ValueError, match="rankings"):
            dataclasses.replace(table, rankings={})


async def test_the_servers_model_list_says_what_chooses_the_reply() -> None:
    chat = responder(RETRIEVED_ONLY)
    served = ServedModel("chat", Path("chat"), "chat", None, chat, chat._generator)
    decoding = served.describe()["decoding"]
    await chat.aclose()
    assert decoding["replies"] == SAID_RETRIEVED


def test_the_api_says_what_chooses_the_reply_and_warns_of_a_setting_without_effect() -> None:
    tuned = DecodeSettings(RETRIEVED_ONLY, "tuned to retrieved replies")
    with Model(dataclasses.replace(fake_model(), decoding=tuned), max_wait=0.001) as model:
        assert model.replies() == SAID_RETRIEVED
        assert model.replies(generated=True).startswith("Replies: the model's own (by beam")
        conversation = model.conversation("a")
        with pytest.warns(UserWarning, match="no effect"):
            conversation.configure(beam_size=3)
        assert conversation.settings.beam_size == 3  # kept all the same
        assert conversation.replies.startswith(SAID_RETRIEVED)
    with Model(fake_model(), max_wait=0.001) as model, warnings.catch_warnings():
        warnings.simplefilter("error")
        model.conversation("b").configure(beam_size=3)  # no warning: it decodes


def test_s2s_chat_says_at_start_what_chooses_the_reply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nlp.chat.setup import add_responder_arguments, build_responder

    parser = argparse.ArgumentParser()
    add_responder_arguments(parser, state_name="chat.sqlite")
    model = dataclasses.replace(fake_model(), decoding=DecodeSettings(RETRIEVED_ONLY, "tuned"))
    args = parser.parse_args(["--model", "m", "--state", str(tmp_path / "s.db")])
    build_responder(args, lambda: model).store.close()
    assert SAID_RETRIEVED in capsys.readouterr().err


def test_s2s_chat_says_the_settings_its_terminal_chat_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The terminal's chat keeps `/beam 2` across sessions; the start-up line said a new
    chat's settings (beam 5), then the chat decoded with its own."""
    from nlp.chat.command import TERMINAL_CHAT
    from nlp.chat.settings import SettingsStore
    from nlp.chat.setup import add_responder_arguments, build_responder

    state = tmp_path / "s.db"
    store = SettingsStore(state)
    store.update(TERMINAL_CHAT, beam_size=2)
    store.close()
    parser = argparse.ArgumentParser()
    add_responder_arguments(parser, state_name="chat.sqlite")
    args = parser.parse_args(["--model", "m", "--state", str(state)])
    build_responder(args, lambda: fake_model(), TERMINAL_CHAT).store.close()
    assert "beam size 2" in capsys.readouterr().err
