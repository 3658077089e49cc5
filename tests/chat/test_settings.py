"""Per-chat settings: validation, decode options, and persistence across restarts."""

from pathlib import Path

import pytest

from nlp.chat.messages import ENGLISH
from nlp.chat.settings import ChatSettings, SettingsError, SettingsStore
from nlp.decoding import DecodeOptions


def test_decode_options_ask_for_an_nbest_list_where_the_strategy_allows() -> None:
    base = DecodeOptions(no_repeat_ngram=3)
    beam = ChatSettings(strategy="beam", beam_size=8).decode_options(base)
    assert (beam.strategy, beam.beam_size, beam.n_best, beam.no_repeat_ngram) == ("beam", 8, 5, 3)
    assert ChatSettings(strategy="beam", beam_size=2).decode_options(base).n_best == 2
    assert ChatSettings(strategy="greedy").decode_options(base).n_best == 1
    sample = ChatSettings(strategy="sample", temperature=0.7, max_length=12).decode_options(base)
    assert (sample.n_best, sample.temperature, sample.max_length) == (5, 0.7, 12)
    diverse_base = DecodeOptions(strategy="diverse_beam", beam_size=6, beam_groups=3)
    diverse = ChatSettings(strategy="diverse_beam", beam_size=8).decode_options(diverse_base)
    assert (diverse.beam_size, diverse.beam_groups, diverse.n_best) == (6, 3, 5)
    assert "diverse beam" in ENGLISH.replies_text(diverse)


def test_a_model_tuned_to_sampling_keeps_its_number_of_draws() -> None:
    """Single samples stay single (re-ranking draws by score prefers the shortest), and a
    sample-and-rerank model keeps its n-best size."""
    single = DecodeOptions(strategy="sample", temperature=0.8, top_p=0.9)
    settings = ChatSettings.from_options(single)
    assert settings.decode_options(single).n_best == 1
    rerank = DecodeOptions(strategy="sample", top_p=0.9, n_best=8)
    assert ChatSettings.from_options(rerank).decode_options(rerank).n_best == 8


def test_a_short_length_limit_clamps_the_base_options_instead_of_failing() -> None:
    # /length 2 with a server-wide no_repeat_ngram=3 and min_length=4 must still decode.
    base = DecodeOptions(no_repeat_ngram=3, min_length=4)
    options = ChatSettings(max_length=2).decode_options(base)
    assert (options.max_length, options.no_repeat_ngram, options.min_length) == (2, 2, 2)


@pytest.mark.parametrize(
    "changes", [{"beam_size": 0}, {"beam_size": 99}, {"temperature": 0.0}, {"max_length": 0}]
)
def test_out_of_range_settings_are_refused_with_a_readable_message(changes: dict) -> None:
    with pytest.raises(SettingsError) as refused:
        ChatSettings().replace(**changes)
    assert refused.value.field in changes
    assert "must be between" in ENGLISH.refused_setting(refused.value)


def test_settings_survive_reopening_the_store(tmp_path: Path) -> None:
    path = tmp_path / "state" / "bot.sqlite"
    store = SettingsStore(path)
    store.update("42", strategy="sample", temperature=0.5)
    salt = store.secret("log_salt")
    store.close()
    reopened = SettingsStore(path)
    assert reopened.get("42") == ChatSettings(strategy="sample", temperature=0.5)
    assert reopened.get("7") == ChatSettings()
    assert reopened.secret("log_salt") == salt
    reopened.close()


def test_a_chat_keeps_what_it_set_and_follows_the_defaults_in_the_rest(tmp_path: Path) -> None:
    """`/length 20` stored strategy, beam and temperature too, as they were: after a retune
    or a /reload to sampling defaults the chat stayed on the old beam for good, and nothing
    led back to the defaults. Only what the chat set is kept now; `/settings default`
    forgets it."""
    import asyncio

    from nlp.chat.responder import ChatResponder
    from nlp.decoding import DecodeOptions
    from tests.fakes.fake_generators import fake_model

    path = tmp_path / "bot.sqlite"
    store = SettingsStore(path)
    store.update("alice", max_length=20)
    store.close()
    sampling = ChatSettings(strategy="sample", temperature=0.7)
    reopened = SettingsStore(path, sampling)
    assert reopened.get("alice") == ChatSettings(strategy="sample", temperature=0.7,
                                                 max_length=20)
    reopened.close()

    async def back_to_defaults() -> str:
        chat = ChatResponder(fake_model(), store=SettingsStore(":memory:"),
                             base_options=DecodeOptions())
        await chat.respond("1", "/beam 3")
        assert chat.store.get("1").beam_size == 3
        said = (await chat.respond("1", "/settings default")).text
        assert chat.store.get("1") == chat.store.defaults
        await chat.aclose()
        return said

    assert "beam size 5" in asyncio.run(back_to_defaults())


def stored(tmp_path: Path, rows: dict[str, str], defaults: ChatSettings) -> SettingsStore:
    """A store over a state file whose rows hold `rows` as written (an older version's)."""
    import sqlite3

    path = tmp_path / "bot.sqlite"
    SettingsStore(path).close()
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO chat_settings (chat, settings) VALUES (?, ?)", rows.items())
    db.close()
    return SettingsStore(path, defaults)


def test_unreadable_stored_settings_fall_back_to_defaults(tmp_path: Path) -> None:
    defaults = ChatSettings(beam_size=3)
    store = stored(tmp_path, {"broken": "{not json", "list": "[1]", "wide": '{"beam_size": 500}',
                              "newer": '{"beam_size": 4, "future": 1}'}, defaults)
    assert store.get("broken") == store.get("list") == store.get("wide") == defaults
    assert store.get("newer").beam_size == 4
    store.close()


def test_a_stored_value_out_of_range_does_not_refuse_a_change_of_another(tmp_path: Path) -> None:
    """A row holding beam 500 (from when the range was wider) is read as the defaults, yet
    `/length 20` in that chat was refused for the beam size: the change re-read the row."""
    store = stored(tmp_path, {"old": '{"beam_size": 500}'}, ChatSettings())
    assert store.update("old", max_length=20) == ChatSettings(max_length=20)
    store.close()


def test_the_owner_s_settings_are_not_clipped_to_what_users_may_set() -> None:
    """`s2s chat --beam 32 --max-length 300` printed beam 32 and decoded with 16 and 200:
    the ranges bound what a user sets (`/beam 32` is refused), not the owner's defaults."""
    from nlp.decoding import DecodeOptions

    owner = ChatSettings.from_options(DecodeOptions(beam_size=32, max_length=300))
    options = owner.decode_options(DecodeOptions(beam_size=32, max_length=300))
    assert (options.beam_size, options.max_length) == (32, 300)
    with pytest.raises(SettingsError):
        owner.replace(beam_size=32)


def test_a_refused_setting_tells_a_chat_no_server_path() -> None:
    """/beam 3 on a bundle whose calibration holds for the default beam only was refused
    with the bundle's directory and "run `s2s tune-decoding`": a Telegram stranger's reply."""
    import asyncio
    import dataclasses
    from pathlib import Path

    from nlp.chat.responder import ChatResponder
    from nlp.decoding import DecodeOptions
    from nlp.decoding.options import OptionError
    from tests.fakes.fake_generators import ScriptedGenerator, fake_model

    directory = Path("/srv/models/chat-en/model")

    class Calibrated(ScriptedGenerator):
        def check(self, options: DecodeOptions) -> None:
            if options.beam_size != 5:
                raise OptionError(f"fallback_threshold holds for beam 5 alone and {directory} "
                                  "has no calibration of it", "run `s2s tune-decoding` first")

    model = dataclasses.replace(fake_model(Calibrated()), directory=directory)

    async def refused() -> str:
        chat = ChatResponder(model, store=SettingsStore(":memory:"), base_options=DecodeOptions())
        said = (await chat.respond("1", "/beam 3")).text
        await chat.aclose()
        return said

    said = asyncio.run(refused())
    assert "beam 5 alone" in said and "/srv" not in said and "s2s" not in said


def test_the_remedy_of_a_refused_setting_is_told_to_the_owner_alone() -> None:
    """An error's remedy (the command the machine's owner would run) was cut from its text
    by a pattern, for everyone alike: the owner, who can run it, never read it either. It
    is now the error's own field: the owner (an admin in a private chat, the terminal) reads
    it; others, and everyone in a group where an admin asked, do not."""
    import asyncio
    import dataclasses
    from pathlib import Path

    from nlp.chat.responder import ChatResponder
    from nlp.decoding import DecodeOptions
    from nlp.decoding.options import OptionError
    from tests.fakes.fake_generators import ScriptedGenerator, fake_model

    directory = Path("/srv/models/chat-en/model")
    remedy = f"build one with `s2s index --model {directory} --corpus TRAINING-CORPUS`"

    class Unindexed(ScriptedGenerator):
        def check(self, options: DecodeOptions) -> None:
            if options.beam_size != 5:
                raise OptionError(f"{directory}: no retrieval index in the bundle", remedy)

    model = dataclasses.replace(fake_model(Unindexed()), directory=directory)

    async def refused() -> tuple[str, str, str]:
        chat = ChatResponder(model, store=SettingsStore(":memory:"), base_options=DecodeOptions())
        owner = (await chat.respond("1", "/beam 3", is_admin=True)).text
        stranger = (await chat.respond("2", "/beam 3")).text
        # an admin in a group: everyone in it reads the reply
        group = (await chat.respond("-3", "/beam 3", is_admin=True, private=False)).text
        await chat.aclose()
        return owner, stranger, group

    owner, stranger, group = asyncio.run(refused())
    assert remedy in owner
    for public in (stranger, group):
        assert public.endswith("the model: no retrieval index in the bundle")
        assert "s2s" not in public and "/srv" not in public
