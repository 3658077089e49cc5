"""`nlp.api` without a trained model: the scripted and echoing generators of tests/fakes,
errors that need no TensorFlow, and the training config the command line builds."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import subprocess
import sys
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nlp.api import (
    BundleNotFoundError,
    ChecksumError,
    ConfigError,
    DecodeOptions,
    Model,
    OptionError,
    TaskError,
    training_config,
)
from nlp.generation.loading import LoadedModel
from nlp.training import command as training_command
from nlp.util.config import DataConfig
from s2s.cli import build_parser
from s2s.cli import main as s2s_main
from tests.conftest import REPO
from tests.fakes.fake_generators import (
    FakeGenerator,
    OverlapProbe,
    ScriptedGenerator,
    fake_model,
    reply_for,
)


def chat_model(probe: OverlapProbe | None = None, **kwargs: object) -> Model:
    loaded = fake_model(context_turns=1)
    if probe is not None:
        loaded = dataclasses.replace(loaded, generator=probe)
    return Model(loaded, max_wait=0.001, **kwargs)  # type: ignore[arg-type]


def test_a_conversation_replies_keeps_context_and_its_own_settings() -> None:
    with chat_model() as model:
        alice, bob = model.conversation("alice"), model.conversation("bob")
        assert alice.reply("hello").text == reply_for("hello")
        assert alice.history == [reply_for("hello")]  # the model reads one turn back
        assert bob.history == []
        assert "beam size 2" in alice.reply("/beam 2").text  # the bot's commands
        assert alice.settings.beam_size == 2 and bob.settings.beam_size == 5
        assert bob.configure(strategy="greedy").strategy == "greedy"
        with pytest.raises(OptionError, match="beam_size"):
            bob.configure(beam_size=0)
        with pytest.raises(OptionError, match="unknown chat setting 'beam'"):
            bob.configure(beam=3)
        alice.reset()
        assert alice.history == [] and alice.settings.beam_size == 2  # /reset keeps settings
        alice.forget()
        assert alice.settings.beam_size == 5


def test_calls_from_threads_and_asyncio_never_overlap_in_the_model() -> None:
    probe = OverlapProbe(ScriptedGenerator())
    with chat_model(probe, shared_reply_memory=False) as model:
        def talk(name: str) -> list[str]:
            conversation = model.conversation(name)
            return [conversation.reply(f"{name} says {i}").text for i in range(3)]

        def look(i: int) -> str:
            return model.attention(f"look {i}").text

        with ThreadPoolExecutor(6) as pool:
            talks = pool.map(talk, [f"c{i}" for i in range(4)])
            looks = pool.map(look, range(4))
            replies, outputs = list(talks), list(looks)

        async def together() -> list[str]:
            conversations = [model.conversation(f"a{i}") for i in range(4)]
            answers = await asyncio.gather(*(c.areply("hi there") for c in conversations))
            return [answer.text for answer in answers]

        assert asyncio.run(together()) == [reply_for("hi there")] * 4
    assert replies == [[reply_for(f"c{n} says {i}") for i in range(3)] for n in range(4)]
    assert outputs == [reply_for(f"look {i}") for i in range(4)]
    assert probe.calls >= 8 and probe.most == 1


def test_shared_reply_memory_is_the_bots_and_can_be_turned_off() -> None:
    """The bot penalises a reply it sent often lately in any chat, so a reply depends on the
    others' (and on their order); without that memory each conversation stands alone."""
    for shared, expected in ((True, {reply_for("hi"), "i see ."}), (False, {reply_for("hi")})):
        with chat_model(shared_reply_memory=shared) as model:
            replies = {model.conversation(f"c{i}").reply("hi").text for i in range(4)}
        assert replies == expected


def test_headlines_keep_bad_articles_in_place_and_merge_overrides_as_flags_do() -> None:
    loaded = LoadedModel(FakeGenerator(words=3), DataConfig(task="headline"))
    with Model(loaded, overrides={"beam_size": 4, "n_best": 1}) as model:
        results = model.headlines(["one two three four", "", "five six"], n_best=2)
        assert [r.headline for r in results] == ["one two three", "", "five six"]
        assert results[1].error == "empty article" and results[1].score == float("-inf")
        assert [c.text for c in results[0].n_best] == ["one two three", "one two"]
        assert model.options(strategy="greedy").n_best == 1  # as --greedy: n_best follows
        assert model.describe(beam_size=2).startswith("beam 2")
        with pytest.raises(OptionError, match="unknown decoding option 'beam'"):
            model.headlines(["x"], beam=3)
        with pytest.raises(OptionError, match=r"beam_size must be an integer in \[1, \d+\], got 0"):
            model.headlines(["x"], beam_size=0)
        with pytest.raises(TaskError, match="a headline model writes no replies"):
            model.conversation()
        with pytest.raises(TypeError, match="not one string"):
            model.headlines("one article")
        assert asyncio.run(model.aheadlines(["a b c d"])) == model.headlines(["a b c d"])
    with pytest.raises(RuntimeError, match="closed"):
        model.headlines(["x"])


def test_a_model_shuts_its_thread_down_when_closed_or_collected() -> None:
    before = threading.active_count()
    model = chat_model()
    assert threading.active_count() == before + 1
    model.close()
    model.close()  # twice is harmless
    assert threading.active_count() == before

    collected = chat_model()  # never closed: its thread stops when nothing holds it
    assert threading.active_count() == before + 1
    held = weakref.ref(collected)
    del collected
    gc.collect()
    assert held() is None
    for _ in range(100):  # the loop thread ends once the finalizer has stopped it
        if threading.active_count() == before:
            break
        time.sleep(0.01)
    assert threading.active_count() == before


def test_a_program_that_never_closes_its_model_still_exits() -> None:
    """The model's thread must not keep the interpreter from exiting (it is a daemon, and
    the finalizer stops it at exit)."""
    program = (
        "from nlp.api import Model\n"
        "from tests.fakes.fake_generators import fake_model\n"
        "model = Model(fake_model(context_turns=1), max_wait=0.001)\n"
        "print(model.conversation('a').reply('hello').text)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == reply_for("hello") + "\n", done.stderr


def test_conversation_locks_are_dropped_once_no_message_waits_for_them() -> None:
    """A service that opens a conversation per user must not keep a lock per name forever."""
    with chat_model() as model:
        for i in range(20):
            model.conversation(f"user-{i}").reply("hello")
        assert model._chat_locks == {}


def test_a_missing_bundle_is_a_typed_error_with_the_message_the_cli_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(BundleNotFoundError) as raised:
        Model.load(missing)
    assert str(raised.value) == f"{missing}: no such model directory"
    assert s2s_main(["headlines", "--model", str(missing), "-", "--quiet"]) == 1
    assert f"error: {raised.value}" in capsys.readouterr().err


def test_a_checksum_mismatch_is_a_typed_error_before_tensorflow_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text("{}\n")
    meta = {"format": 1, "files": {"config.json": "0" * 64}}
    (bundle / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ChecksumError, match=r"config\.json: corrupt"):
        Model.load(bundle)
    assert s2s_main(["chat", "--model", str(bundle), "--state", str(tmp_path / "s")]) == 1
    assert "config.json: corrupt (sha256 differs from metadata.json)" in capsys.readouterr().err


def test_training_config_is_the_one_s2s_train_builds(tmp_path: Path) -> None:
    argv = ["train", "--task", "headline", "--corpus", "c.jsonl", "--out", str(tmp_path),
            "--set", "model.units=32", "--set", "train.patience=2", "--epochs", "3"]
    expected = training_command.experiment_config(build_parser().parse_args(argv))
    assert training_config(
        "headline", ["model.units=32", "train.patience=2", "train.epochs=3"]
    ) == expected
    config_file = tmp_path / "base.json"
    expected.save(config_file)
    assert training_config(config_file=config_file) == expected
    with pytest.raises(ConfigError, match=r"unknown setting 'model\.unitz'"):
        training_config("chat", ["model.unitz=3"])
    # a file and a task: the preset went silently on top of the file, which s2s train refuses
    with pytest.raises(ConfigError, match="give one"):
        training_config("chat", config_file=config_file)


def test_a_closed_models_conversations_say_the_model_is_closed() -> None:
    """After `close()`, a conversation's settings, history and the rest raised anyio's "This
    portal is not running"; each says what `reply` says."""
    model = chat_model()
    conversation = model.conversation("alice")
    model.close()
    uses = [lambda: conversation.settings, lambda: conversation.configure(beam_size=2),
            lambda: conversation.replies, lambda: conversation.history, conversation.forget,
            lambda: conversation.reply("hi")]
    for use in uses:
        with pytest.raises(RuntimeError, match="the model is closed"):
            use()


def test_load_and_call_overrides_resolve_as_the_decoding_flags_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bundle's settings, then `Model.load(decoding=...)`, then a call's overrides, with
    a re-ranking picked in either taking its tuned weights (`layered_options`, as
    `--rerank` does): a per-call `rerank` dropped the load's overrides, and a load's
    `rerank` went without the tuned weights."""
    from nlp.api import model as api_model
    from nlp.generation.decode_settings import RERANK_WEIGHTS, DecodeSettings

    tuned = DecodeSettings(DecodeOptions(beam_size=5, n_best=5), "tuned", {RERANK_WEIGHTS: {
        "mmi-bidi": {"mmi_lambda": 8.0, "mmi_gamma": 0},
        "mmi-antilm": {"mmi_lambda": 0.25, "mmi_gamma": 2},
    }})
    loaded = dataclasses.replace(fake_model(), decoding=tuned)
    monkeypatch.setattr(api_model, "load_model", lambda *args, **kwargs: loaded)
    with Model.load("bundle", decoding={"beam_size": 3, "no_repeat_ngram": 2}) as model:
        call = model.options(rerank="mmi-bidi")
        assert (call.beam_size, call.no_repeat_ngram) == (3, 2)
        assert (call.rerank, call.mmi_lambda, call.mmi_per_token) == ("mmi-bidi", 8.0, True)
        assert model.options(rerank="mmi-bidi", mmi_lambda=2.0).mmi_lambda == 2.0
    with Model.load("bundle", decoding={"rerank": "mmi-antilm"}) as model:
        loaded_options = model.decoding
        assert (loaded_options.mmi_lambda, loaded_options.mmi_gamma) == (0.25, 2)
        assert model.options(n_best=2).mmi_lambda == 0.25
