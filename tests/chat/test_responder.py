"""The chat responder: commands, context, settings, bad input and failures, no network."""

import dataclasses
from pathlib import Path

import pytest

from nlp.chat.batcher import BatchLimits
from nlp.chat.messages import CHINESE, ENGLISH
from nlp.chat.responder import ChatResponder, ResponderLimits
from nlp.chat.settings import ChatSettings, SettingsStore
from nlp.chat.text_input import telegram_length
from nlp.decoding import DecodeOptions
from nlp.decoding.row_buckets import warm_up_batch_sizes
from nlp.generation.loading import LoadedModel
from tests.fakes.fake_generators import (
    ProvenanceGenerator,
    ScriptedGenerator,
    fake_model,
    reply_for,
)


def make(
    generator: ScriptedGenerator | None = None, *, turns: int = 0, **kwargs: object
) -> ChatResponder:
    return ChatResponder(
        fake_model(generator or ScriptedGenerator(), context_turns=turns),
        store=SettingsStore(":memory:"),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_a_message_gets_the_best_candidate() -> None:
    responder = make()
    assert (await responder.respond("1", "hello there")).text == reply_for("hello there")
    await responder.aclose()


async def test_context_turns_feed_previous_turns_to_the_model() -> None:
    generator = ScriptedGenerator()
    responder = make(generator, turns=2)
    await responder.respond("1", "first")
    await responder.respond("1", "second")
    await responder.respond("2", "elsewhere")
    inputs = [texts[0] for texts, _ in generator.calls]
    assert inputs == ["first", f"first __eot__ {reply_for('first')} __eot__ second", "elsewhere"]
    await responder.respond("1", "/reset")
    await responder.respond("1", "fresh")
    assert generator.calls[-1][0] == ["fresh"]
    await responder.aclose()


async def test_the_chats_limit_bounds_every_memory_of_a_conversation() -> None:
    # the context and the ranker kept a fixed 10,000 chats: `s2s serve --max-conversations`
    # above it dropped live conversations' context, below it kept more than asked
    responder = make(turns=2, limits=ResponderLimits(max_chats=2))
    await responder.respond("old", "first")
    assert responder.context.previous("old")
    fresh = responder.ranker.penalty("new", reply_for("first"), "first")
    for chat in ("a", "b"):
        await responder.respond(chat, "hello")
    assert responder.context.previous("old") == []
    assert responder.ranker.penalty("old", reply_for("first"), "first") == fresh
    await responder.aclose()


async def test_context_turns_flag_overrides_the_model_config() -> None:
    generator = ScriptedGenerator()
    responder = make(generator, turns=4, context_turns=0)
    await responder.respond("1", "first")
    await responder.respond("1", "second")
    assert generator.calls[-1][0] == ["second"]
    await responder.aclose()


async def test_decoding_commands_change_the_options_of_later_calls() -> None:
    generator = ScriptedGenerator()
    responder = make(generator)
    assert "beam size 3" in (await responder.respond("1", "/beam 3")).text
    await responder.respond("1", "a")
    assert (generator.calls[-1][1].beam_size, generator.calls[-1][1].n_best) == (3, 3)
    assert "greedy" in (await responder.respond("1", "/greedy")).text
    await responder.respond("1", "b")
    assert (generator.calls[-1][1].strategy, generator.calls[-1][1].n_best) == ("greedy", 1)
    assert "temperature 0.7" in (await responder.respond("1", "/sample 0.7")).text
    assert "20 tokens" in (await responder.respond("1", "/length 20")).text
    await responder.respond("1", "c")
    options = generator.calls[-1][1]
    assert (options.strategy, options.temperature, options.max_length) == ("sample", 0.7, 20)
    assert "sampling, temperature 0.7" in (await responder.respond("1", "/settings")).text
    assert "beam search" in (await responder.respond("2", "/settings")).text  # per chat
    await responder.aclose()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/beam", "Usage: /beam N"),
        ("/beam five", "Usage: /beam N"),
        ("/beam 99", "between 1 and 16"),
        ("/sample hot", "Usage: /sample T"),
        ("/sample 0", "between 0.05 and 5"),
        ("/length -3", "between 1 and 200"),
        ("/length 1 2", "Usage: /length N"),
        ("/frobnicate", "I don't know the command /frobnicate"),
    ],
)
async def test_bad_command_arguments_get_a_usage_hint(command: str, expected: str) -> None:
    responder = make()
    assert expected in (await responder.respond("1", command)).text
    await responder.aclose()


async def test_start_and_help() -> None:
    responder = make()
    assert "/beam N" in (await responder.respond("1", "/help")).text
    assert (await responder.respond("1", "/start")).text.startswith("Hello!")
    assert "/beam N" in (await responder.respond("1", "/HELP@Some_Bot")).text
    await responder.aclose()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ENGLISH.empty),
        ("  \n\t ", ENGLISH.empty),
        ("\x00\x07", ENGLISH.empty),
        ("😀🎉👍", ENGLISH.no_words),
        ("?!...", ENGLISH.no_words),
    ],
)
async def test_unreadable_input_is_answered_without_the_model(text: str, expected: str) -> None:
    generator = ScriptedGenerator()
    responder = make(generator)
    assert (await responder.respond("1", text)).text == expected
    assert generator.calls == []
    await responder.aclose()


@pytest.mark.parametrize(
    ("languages", "text", "expected"),
    [
        (("en",), "你好，最近怎么样？", ENGLISH.foreign_script.format(languages="English")),
        (("en",), "привет, как дела?", ENGLISH.foreign_script.format(languages="English")),
        (("zh",), "how are you?", CHINESE.foreign_script.format(languages="中文")),
        (("zh", "en"), "привет", CHINESE.foreign_script.format(languages="中文和英文")),
    ],
)
async def test_a_message_in_a_script_the_model_does_not_read_is_answered_without_it(
    languages: tuple[str, ...], text: str, expected: str
) -> None:
    generator = ScriptedGenerator()
    responder = ChatResponder(dataclasses.replace(fake_model(generator), languages=languages),
                              store=SettingsStore(":memory:"))
    assert (await responder.respond("1", text)).text == expected
    assert generator.calls == []
    await responder.aclose()


@pytest.mark.parametrize(
    ("languages", "text"),
    [(("en",), "ok 你好"), (("en",), "café?"), (("en",), "42"), (("zh",), "你好 ok"),
     ((), "你好"), (("ru",), "hello"),
     # full-width and styled Latin letters, which the codec reads as plain ones, were refused
     # as a foreign script (a Chinese keyboard's full-width mode)
     (("en",), "Ｈｅｌｌｏ ｔｈｅｒｅ"), (("zh", "en"), "ｏｋ"), (("en",), "𝐡𝐞𝐥𝐥𝐨 𝐟𝐫𝐢𝐞𝐧𝐝")],
)
async def test_a_message_with_letters_the_model_reads_goes_to_it(
    languages: tuple[str, ...], text: str
) -> None:
    from nlp.text.normalize import normalize_text

    responder = ChatResponder(dataclasses.replace(fake_model(), languages=languages),
                              store=SettingsStore(":memory:"))
    # the model is given the text as its codec reads it
    assert (await responder.respond("1", text)).text == reply_for(normalize_text(text))
    await responder.aclose()


async def test_long_mixed_script_input_with_control_characters_is_cleaned_and_cut() -> None:
    generator = ScriptedGenerator()
    responder = make(generator, limits=ResponderLimits(max_input_chars=500))
    text = ("héllo\x00 你好 мир 😀 " * 400)[:4096]
    reply = await responder.respond("1", text)
    (sent,), _ = generator.calls[0]
    assert len(sent) <= 500 and "\x00" not in sent and "你好" in sent
    assert reply.text == reply_for(sent)
    await responder.aclose()


async def test_replies_never_exceed_the_telegram_limit() -> None:
    responder = make(ScriptedGenerator(candidates=lambda m: ["blah " * 3000]))
    assert telegram_length((await responder.respond("1", "talk a lot")).text) <= 4096
    await responder.aclose()


async def test_a_failing_model_gets_an_apology_and_the_next_message_works() -> None:
    calls = 0

    class Flaky(ScriptedGenerator):
        def generate(self, texts, options, seeds=None):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("out of memory")
            return super().generate(texts, options)

    responder = make(Flaky())
    assert (await responder.respond("1", "hi")).text == ENGLISH.failure
    assert (await responder.respond("1", "hi again")).text == reply_for("hi again")
    await responder.aclose()


async def test_no_usable_candidate_gets_a_clear_reply() -> None:
    responder = make(ScriptedGenerator(candidates=lambda m: ["", "  "]))
    assert (await responder.respond("1", "hm")).text == ENGLISH.no_idea
    await responder.aclose()


async def test_the_same_message_twice_does_not_get_the_same_reply_twice() -> None:
    responder = make()
    first = await responder.respond("1", "how are you")
    second = await responder.respond("1", "how are you")
    assert first.text != second.text
    await responder.aclose()


async def test_why_draws_the_attention_of_the_last_reply() -> None:
    responder = make()
    assert "no reply of mine" in (await responder.respond("1", "/why")).text
    await responder.respond("1", "explain yourself")
    why = await responder.respond("1", "/why")
    assert why.photo is not None and why.photo.startswith(b"\x89PNG")
    assert reply_for("explain yourself") in why.text
    await responder.respond("1", "/reset")
    assert (await responder.respond("1", "/why")).photo is None
    await responder.aclose()


async def test_reload_is_for_admins_and_swaps_the_model() -> None:
    new = ScriptedGenerator(candidates=lambda m: ["from the new model"])
    responder = make(loader=lambda: fake_model(new))
    assert "only the bot's admins" in (await responder.respond("1", "/reload")).text
    assert "Reloaded" in (await responder.respond("1", "/reload", is_admin=True)).text
    assert (await responder.respond("1", "hi")).text == "from the new model"
    await responder.aclose()


async def test_a_failed_reload_keeps_the_current_model() -> None:
    def broken() -> LoadedModel:
        raise FileNotFoundError("no bundle")

    responder = make(loader=broken)
    assert "Reloading failed" in (await responder.respond("1", "/reload", is_admin=True)).text
    assert (await responder.respond("1", "hi")).text == reply_for("hi")
    await responder.aclose()


async def test_ratings_without_logging_are_acknowledged(tmp_path: Path) -> None:
    responder = make()
    assert "logging is off" in (await responder.respond("1", "/good")).text
    await responder.aclose()


async def test_replies_say_where_they_came_from() -> None:
    generator = ProvenanceGenerator("retrieved")
    retrieved = make(generator)
    reply = await retrieved.respond("1", "hello there")
    assert (reply.provenance, reply.pair) == ("retrieved", "chat.jsonl:42")
    why = await retrieved.respond("1", "/why")
    # no decoder wrote it: it says so and names the training pair, and the picture is the
    # model's attention while it reads the reply (teacher-forced), and says that too
    assert why.photo is not None and generator.attended == [reply.text]
    assert "I did not write this reply" in why.text and "chat.jsonl:42" in why.text
    assert "teacher-forced" in why.text
    # the reply quoted: "...(teacher-forced): Hi I did not write this reply" ran it into the
    # note when it had no full stop of its own
    assert f'"{reply.text}"' in why.text
    await retrieved.aclose()

    refined = make(ProvenanceGenerator("refined"))
    await refined.respond("1", "hello there")
    why = await refined.respond("1", "/why")
    assert why.photo is not None and "chat.jsonl:42" in why.text
    await refined.aclose()

    plain = make()
    reply = await plain.respond("1", "hello there")
    assert reply.provenance == "generated" and reply.pair == ""
    why = await plain.respond("1", "/why")
    assert "training post" not in why.text
    assert why.text.startswith(f'What I looked at while writing "{reply.text}".')
    await plain.aclose()


async def test_the_warm_up_decodes_every_batch_size_the_batcher_can_start_a_bucket_with() -> None:
    """A server offered 20 messages a second right after its start spent its first 20 seconds
    compiling the fused pick for batch after batch of a new size while its queue grew; the
    warm-up now decodes those sizes, with the chat's default options, before anyone writes."""
    generator = ScriptedGenerator()
    sample = DecodeOptions(strategy="sample", n_best=8, top_p=0.9)
    responder = ChatResponder(
        fake_model(generator),
        store=SettingsStore(":memory:", ChatSettings.from_options(sample)),
        base_options=sample,
        batching=BatchLimits(max_batch=16),
    )
    responder.warm_up()
    await responder.aclose()
    assert [len(texts) for texts, _ in generator.calls] == list(warm_up_batch_sizes(16, 8))
    assert [len(texts) for texts, _ in generator.calls] == [1, 2, 3, 4, 6, 8, 12, 16]
    assert all(options.strategy == "sample" and options.n_best == 8
               for _, options in generator.calls)


async def test_reload_decodes_as_the_reloaded_bundles_settings_say() -> None:
    """A bundle tuned anew (`s2s tune-decoding`) and reloaded decodes with its own settings
    under the caller's flags (`options_for`), and /settings says so; a chat's own settings
    stay its own."""
    new = ScriptedGenerator(candidates=lambda m: ["from the new model"])
    responder = make(loader=lambda: fake_model(new), base_options=DecodeOptions(beam_size=5),
                     options_for=lambda model: DecodeOptions(strategy="greedy"))
    await responder.respond("2", "/beam 3")
    assert "Reloaded" in (await responder.respond("1", "/reload", is_admin=True)).text
    assert (await responder.respond("1", "hi")).text == "from the new model"
    assert new.calls[-1][1].strategy == "greedy"
    assert "greedy" in (await responder.respond("1", "/settings")).text
    await responder.respond("2", "hi")
    assert (new.calls[-1][1].strategy, new.calls[-1][1].beam_size) == ("beam", 3)
    await responder.aclose()
