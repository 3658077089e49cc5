"""Retrieved or generated: a retrieved reply is sent where its fit (the calibrated
probability that it makes sense, from how well its post matches the message) reaches
`retrieved_threshold`, the model's own reply elsewhere; through the responder (the bot,
`s2s chat`, `s2s serve` and the API all answer through it) and through
`nlp.chat.offline.bot_choices` (what tuning and the benchmarks replay)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from nlp.chat.offline import bot_choices
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SettingsStore
from nlp.decoding import DecodeOptions
from nlp.generation.retrieved_fit import (
    DEFAULT_FIT,
    RatedGate,
    gate_for,
    message_language,
    retrieved_fit,
)
from nlp.metrics.calibration import Calibration, fit_calibration
from nlp.retrieval import ReplyIndex
from tests.fakes.fake_generators import MixedGenerator, fake_model, retrieved_for


def responder(generator: MixedGenerator, options: DecodeOptions) -> ChatResponder:
    return ChatResponder(fake_model(generator), store=SettingsStore(":memory:"),
                         base_options=options)


@pytest.mark.parametrize(("fit", "expected"), [(0.7, "retrieved"), (0.3, "generated")])
async def test_the_threshold_decides_between_retrieved_and_generated(
    fit: float, expected: str
) -> None:
    chat = responder(MixedGenerator(fit), DecodeOptions(retrieved_threshold=0.5))
    reply = await chat.respond("1", "do you have a favorite player?")
    assert reply.provenance == expected
    if expected == "retrieved":
        assert reply.text == retrieved_for("do you have a favorite player?")
        assert reply.pair == "chat.jsonl:7"
    else:
        assert reply.text == "i don't know ."
    await chat.aclose()


@pytest.mark.parametrize(("fit", "expected"), [(0.7, "retrieved"), (0.3, "generated"),
                                               (math.nan, "generated")])
def test_offline_replays_the_same_choice(fit: float, expected: str) -> None:
    said = bot_choices(MixedGenerator(fit), ["hello there"], DecodeOptions(retrieved_threshold=0.5))
    assert [r.provenance for r in said] == [expected]


async def test_without_a_threshold_the_ranking_alone_decides() -> None:
    chat = responder(MixedGenerator(0.01), DecodeOptions())
    assert (await chat.respond("1", "hello there")).provenance == "retrieved"
    await chat.aclose()


def test_the_fit_is_monotone_in_the_similarity_with_hand_computed_values() -> None:
    """fit = E_r / (E_r + E_g), E_r = P(sensible) x (1 + P(specific | sensible)) / 2."""
    gate = RatedGate(Calibration(slope=4.0, intercept=-2.0), specific_if_sensible=0.6,
                     generated_ssa=0.2)
    # cosine 0.5: P(sensible) = sigmoid(0) = 0.5, E_r = 0.5 x 1.6 / 2 = 0.4, fit = 0.4 / 0.6
    assert retrieved_fit(0.5, gate) == pytest.approx(2 / 3)
    high = 0.8 / (1 + math.exp(-2))  # cosine 1: sigmoid(2) x 0.8
    assert retrieved_fit(1.0, gate) == pytest.approx(high / (high + 0.2))
    low = 0.8 / (1 + math.exp(2))
    assert retrieved_fit(0.0, gate) == pytest.approx(low / (low + 0.2))
    values = [retrieved_fit(s, gate) for s in np.linspace(0, 1, 11)]
    assert values == sorted(values) and len(set(values)) == 11
    assert math.isnan(retrieved_fit(0.9, None))  # no gate: nothing passes a threshold


def test_the_shipped_gates_send_a_retrieved_reply_where_it_rated_better() -> None:
    """At 0.5 the retrieved reply's expected rating equals the model's: in English (whose
    model's replies rated low) from a weak match on, in Chinese only from a closer one."""
    def crossing(gate: RatedGate) -> float:
        return next(s for s in np.linspace(0, 1, 101) if gate.fit(s) >= 0.5)

    assert crossing(DEFAULT_FIT["en"]) < crossing(DEFAULT_FIT["zh"])
    assert DEFAULT_FIT["zh"].to_json() == RatedGate.from_json(
        DEFAULT_FIT["zh"].to_json()).to_json()


def test_a_tiny_rated_pool_calibrates_the_fit() -> None:
    """Replies to posts that matched the message well were rated sensible, weak matches not:
    the fitted probability rises with the similarity, and lies near each group's rate."""
    similarity = [0.1, 0.15, 0.2, 0.25, 0.3, 0.7, 0.75, 0.8, 0.85, 0.9]
    sensible = [0, 0, 0, 1, 0, 1, 1, 0, 1, 1]
    calibration = fit_calibration(similarity, sensible)
    assert calibration.slope > 0 and calibration.pairs == 10
    low, high = (float(calibration.probability(s)) for s in (0.2, 0.8))
    assert 0.05 < low < 0.4 < 0.6 < high < 0.95
    with pytest.raises(ValueError, match="positives and negatives"):
        fit_calibration([0.1, 0.2], [1, 1])


def test_the_similarity_is_a_tf_idf_cosine_over_the_indexed_posts() -> None:
    index = ReplyIndex.build(
        [["hello", "there"], ["do", "you", "like", "football"], ["do", "you", "cook"]],
        ["hi !", "yes , a lot .", "sometimes ."], ["c:1", "c:2", "c:3"],
    )
    # idf = ln(1 + 3 / df): "do" and "you" are in two posts, "football" in one
    common, rare = math.log1p(3 / 2), math.log1p(3 / 1)
    assert index.post_similarity(["football"], ["do", "you", "like", "football"]) == (
        pytest.approx(rare / math.sqrt(2 * common**2 + 2 * rare**2)))
    assert index.post_similarity(["hello", "there"], ["hello", "there"]) == pytest.approx(1.0)
    assert index.post_similarity(["sushi"], ["do", "you", "cook"]) == 0.0
    assert index.post_similarity([], ["hello"]) == 0.0


def test_the_bundles_calibration_wins_over_the_default_per_language() -> None:
    own = RatedGate(Calibration(slope=1.0, intercept=0.0, pairs=3), 0.5, 0.3)
    details = {"retrieved_fit": {"zh": own.to_json()}}
    assert message_language("你喜欢足球吗") == "zh" and message_language("hello") == "en"
    assert gate_for("你喜欢足球吗", details) == own
    assert gate_for("hello", details) == DEFAULT_FIT["en"]  # no English one: the default's
    assert gate_for("你喜欢足球吗") == DEFAULT_FIT["zh"] != own


def test_settings_do_not_say_a_ranker_of_posts_orders_the_model_s_own_replies() -> None:
    """`s2s chat --retrieve 0` on a default bundle said its replies were ranked "by a
    pretrained sentence encoder", which never scores the model's own: the decoder's order
    stands, and is said."""
    from nlp.chat.messages import ENGLISH

    said = ENGLISH.replies_text(DecodeOptions(retrieve=0, rerank="sentence-encoder",
                                              retrieved_threshold=0.5))
    assert "sentence encoder" not in said and "the model's own" in said


def test_settings_say_what_chooses_the_reply_under_the_gate() -> None:
    from nlp.chat.messages import CHINESE, ENGLISH
    from nlp.generation.reply_choice import GATED, reply_choice

    options = DecodeOptions(retrieve=10, rerank="retrieval", retrieved_threshold=0.45)
    choice = reply_choice(options)
    assert choice.mode == GATED and choice.decodes and choice.retrieved_threshold == 0.45
    english = ENGLISH.settings_text(options)
    assert "at least 0.45" in english and "beam search" in english and "no effect" not in english
    assert "0.45" in CHINESE.settings_text(options)
    assert reply_choice(DecodeOptions(retrieve=10)).mode != GATED  # no threshold: either


async def test_why_names_the_training_pair_its_post_and_the_fit() -> None:
    chat = responder(MixedGenerator(0.72), DecodeOptions(retrieved_threshold=0.5))
    await chat.respond("1", "hello there")
    why = await chat.respond("1", "/why")
    assert "chat.jsonl:7" in why.text and '"a post"' in why.text and "0.72" in why.text
    assert "sent from 0.50" in why.text
    await chat.aclose()
    # the threshold the chat's reply was sent under, not a fixed 0.5; none without the gate
    chat = responder(MixedGenerator(0.72), DecodeOptions(retrieved_threshold=0.7))
    await chat.respond("1", "hello there")
    assert "sent from 0.70" in (await chat.respond("1", "/why")).text
    await chat.aclose()
    chat = responder(MixedGenerator(0.72), DecodeOptions(retrieved_threshold=0.0))
    await chat.respond("1", "hello there")
    assert "sent from" not in (await chat.respond("1", "/why")).text
    await chat.aclose()


def test_a_gate_names_its_signal_and_one_stored_before_the_choice_read_tf_idf() -> None:
    from nlp.generation.retrieved_fit import SENTENCE_ENCODER, TF_IDF

    assert {gate.signal for gate in DEFAULT_FIT.values()} == {SENTENCE_ENCODER}
    assert RatedGate.from_json(DEFAULT_FIT["en"].to_json()) == DEFAULT_FIT["en"]
    older = {k: v for k, v in DEFAULT_FIT["en"].to_json().items() if k != "signal"}
    assert RatedGate.from_json(older).signal == TF_IDF
    with pytest.raises(ValueError, match="signal must be one of"):
        RatedGate(Calibration(slope=1.0, intercept=0.0), 0.5, 0.3, signal="bm25")


@pytest.mark.parametrize("signal", ["sentence-encoder", "tf-idf"])
def test_a_retrieved_reply_s_fit_reads_the_similarity_its_gate_calibrates(
    tmp_path: Path, signal: str
) -> None:
    """The encoder's cosine of the message and each post (a stand-in encoder whose vectors
    are set by hand), or the index's tf-idf cosine, through the gate's calibration."""
    from nlp.generation.decode_settings import DecodeSettings
    from nlp.generation.retrieved_fit import RETRIEVED_FIT
    from tests.generation.test_candidates import candidates_of
    from tests.generation.test_rankers import AxisEncoder

    candidates, _ = candidates_of(tmp_path, dense=False)
    gate = RatedGate(Calibration(slope=4.0, intercept=-2.0), 0.6, 0.2, signal=signal)
    candidates.bundle.decoding = DecodeSettings(  # type: ignore[misc]
        DecodeOptions(), "test", {RETRIEVED_FIT: {"en": gate.to_json()}})
    text = "are you there today"
    hits = candidates.index.search([candidates.query_tokens(text)], 3)[0]
    assert hits
    encoder = AxisEncoder({text: (1.0, 0.0), **{hit.post: (0.6, 0.8) for hit in hits}})
    candidates._sentence_encoder = encoder  # type: ignore[assignment]
    retrieved = candidates.retrieved(text, hits)
    if signal == "sentence-encoder":
        expected = [gate.fit(0.6)] * len(retrieved)  # cosine (1, 0) . (0.6, 0.8)
        assert encoder.batches == [[text, *(g.post for g in retrieved)]]  # one batch
    else:
        query = candidates.query_tokens(text)
        expected = [gate.fit(candidates.index.post_similarity(
            query, candidates.query_tokens(g.post))) for g in retrieved]
        assert encoder.batches == []
    assert [g.fit for g in retrieved] == pytest.approx(expected)
    # an index built before posts were kept: no post to match, no fit (the message's cosine
    # with "" let every hit of some messages through and none of others)
    postless = [dataclasses.replace(hit, post="") for hit in hits]
    candidates._sentence_encoder = AxisEncoder({text: (1.0, 0.0), "": (1.0, 0.0)})  # type: ignore[assignment]
    assert all(math.isnan(g.fit) for g in candidates.retrieved(text, postless))


def test_competing_keeps_the_fitting_retrieved_replies_else_the_model_s_own() -> None:
    from nlp.generation.retrieved_fit import competing, fitting
    from nlp.generation.text_generator import Generation

    def reply(text: str, provenance: str, fit: float = math.nan) -> Generation:
        return Generation(text, 0.0, text.split(), [], np.zeros((0, 0), np.float32),
                          provenance=provenance, fit=fit)  # type: ignore[arg-type]

    fits, weak, blank = (reply("yes , a lot .", "retrieved", 0.7),
                         reply("sometimes .", "retrieved", 0.2),
                         reply("\u200b \x00", "retrieved", 0.9))  # nothing left to send
    own = reply("i don't know .", "generated")
    assert fitting([fits, weak, blank, own], 0.5) == [fits]
    assert competing([fits, weak, blank, own], 0.5) == [fits]
    assert competing([weak, blank, own], 0.5) == [own]
    assert competing([weak, blank], 0.5) == [weak]  # no reply of the model's: what is left
    assert competing([fits, weak, blank, own], 0.0) == [fits, weak, own]  # no gate



def test_what_the_gate_lets_through_comes_first_each_part_in_its_order() -> None:
    """A single output (a heatmap, `evaluate --metric bleu`) is a list's first candidate:
    under the rankers of posts, it was a retrieved reply the gate turned away, which the
    chat never sends."""
    from nlp.generation.retrieved_fit import gate_first
    from nlp.generation.text_generator import Generation

    def reply(text: str, provenance: str, fit: float = math.nan) -> Generation:
        return Generation(text, 0.0, text.split(), [], np.zeros((0, 0), np.float32),
                          provenance=provenance, fit=fit)  # type: ignore[arg-type]

    weak, fits = reply("sometimes .", "retrieved", 0.2), reply("yes , twice .", "retrieved", 0.8)
    own, blank = reply("i like it .", "generated"), reply("\u200b", "generated")
    assert gate_first([weak, blank, own], 0.5) == [own, weak, blank]
    assert gate_first([weak, own, fits], 0.5) == [fits, weak, own]
    assert gate_first([blank, weak, own], 0.0) == [weak, own, blank]  # no gate: the ranking's
    assert gate_first([blank], 0.5) == [blank]  # nothing to send: as ranked


def test_every_n_best_list_puts_what_the_gate_lets_through_first(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """`generate`'s first candidate is what the chat chooses among, whatever the ranker: the
    retrieval ranker scores every retrieved reply above the model's own, even one the gate
    turns away."""
    import shutil

    from nlp.generation.bundle import store_decoding
    from nlp.generation.decode_settings import DecodeSettings
    from nlp.generation.generator import Generator, generate_all
    from nlp.generation.retrieved_fit import RETRIEVED_FIT, TF_IDF, competing

    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "model"))
    gate = RatedGate(Calibration(slope=20.0, intercept=-15.0), 0.5, 0.3, signal=TF_IDF)
    options = DecodeOptions(retrieve=10, rerank="retrieval", retrieved_threshold=0.5)
    store_decoding(copy, DecodeSettings(options, "test", {RETRIEVED_FIT: {"en": gate.to_json()}}))
    generator = Generator.from_bundle(copy)
    written = generator._written  # the one-epoch model's own replies are empty: give it words

    def wordy(*args: object) -> object:
        return dataclasses.replace(written(*args), text="i like it .")  # type: ignore[arg-type]

    generator._written = wordy  # type: ignore[method-assign,assignment]
    posts = ["Hi, how are you?", "how are things at work", "what did you do at the weekend"]
    inputs, pools = generator.pools(posts, options)
    ranked = generator.rankers.rank(posts, inputs, pools, options)
    turned_away = [n_best[0].provenance == "retrieved" and n_best[0].fit < 0.5
                   for n_best in ranked]
    assert any(turned_away)  # the ranking alone would put a reply the gate refuses first
    sent = generator.generate(posts, options)
    for n_best, away in zip(sent, turned_away, strict=True):
        assert n_best[0] is competing(n_best, 0.5)[0]
        assert n_best[0].provenance == ("generated" if away else "retrieved")
    assert generate_all(generator, posts, options, 8) == [n_best[0].text for n_best in sent]


@pytest.mark.parametrize(("changes", "decides"), [
    ({}, True), ({"rerank": "sentence-encoder"}, True), ({"rerank": "dual-encoder+bm25"}, False),
    ({"rerank": "dual-encoder"}, False), ({"rerank": "likelihood"}, False),
    ({"rerank": "none"}, False), ({"fallback_threshold": 0.3}, False),
    ({"retrieved_threshold": 0.0}, False), ({"retrieve": 0}, False),
])
def test_the_gate_decides_before_decoding_only_where_leaving_the_model_out_changes_nothing(
    changes: dict[str, object], decides: bool
) -> None:
    """Only the rankers that read the posts put every retrieved reply above the model's and
    score each by itself; BM25's share in the fused ranker is divided by the list's best,
    and a fallback threshold reads a confidence of the whole list."""
    from nlp.generation.retrieved_fit import decides_before_decoding

    options = dataclasses.replace(
        DecodeOptions(retrieve=10, rerank="retrieval", retrieved_threshold=0.5), **changes)
    assert decides_before_decoding(options) is decides


async def test_warming_up_decodes_every_batch_though_the_gate_would_leave_the_decoder_out(
) -> None:
    """A warm-up message may find a fitting retrieved reply; the decoder must still compile."""
    generator = MixedGenerator(0.9)
    options = DecodeOptions(retrieve=10, rerank="retrieval", retrieved_threshold=0.5)
    chat = responder(generator, options)
    generator.calls.clear()
    chat.warm_up()
    sent = chat.store.defaults.decode_options(options)
    assert sent.retrieved_threshold == 0.5 and generator.calls
    assert all(called == dataclasses.replace(sent, retrieved_threshold=0.0)
               for _, called in generator.calls)
    await chat.aclose()


def test_the_decoder_writes_only_for_messages_no_retrieved_reply_fits(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """The model's replies never compete where a retrieved one fits, so the generator leaves
    them out there, and what the chat sends is the same as when every message is decoded;
    the tuner's pools (`only_competing` off) keep every candidate."""
    import shutil

    from nlp.chat.rerank import ReplyRanker
    from nlp.chat.responder import choose_reply
    from nlp.generation.bundle import store_decoding
    from nlp.generation.decode_settings import DecodeSettings
    from nlp.generation.generator import Generator
    from nlp.generation.retrieved_fit import RETRIEVED_FIT, TF_IDF, fitting

    copy = Path(shutil.copytree(tiny_bundle, tmp_path / "model"))
    # a tf-idf gate that lets through a post with the message's words alone (cosine near 1)
    gate = RatedGate(Calibration(slope=20.0, intercept=-15.0), 0.5, 0.3, signal=TF_IDF)
    options = DecodeOptions(retrieve=10, rerank="retrieval", retrieved_threshold=0.5)
    store_decoding(copy, DecodeSettings(options, "test", {RETRIEVED_FIT: {"en": gate.to_json()}}))
    generator = Generator.from_bundle(copy)
    posts = ["Hi, how are you?", "xyzzy plugh", "Good morning, everyone!", "how are things at work"]
    decoded: list[int] = []
    decode = generator.decoder.decode

    def counting(sources: list[list[int]], *args: object, **kwargs: object) -> object:
        decoded.append(len(sources))
        return decode(sources, *args, **kwargs)  # type: ignore[arg-type]

    generator.decoder.decode = counting  # type: ignore[method-assign,assignment]
    sent = generator.generate(posts, options)
    inputs, pools = generator.pools(posts, options)
    every = generator.rankers.rank(posts, inputs, pools, options)
    fit = [bool(fitting(pool, 0.5)) for pool in every]
    assert fit.count(True) >= 2 and fit.count(False) >= 1  # both kinds of message
    assert decoded == [fit.count(False), len(posts)]
    calls = generator.clock.calls()["decode"]  # a batch whose every message fits: no decoding
    generator.generate([post for post, fits in zip(posts, fit, strict=True) if fits], options)
    assert len(decoded) == 2 and generator.clock.calls()["decode"] == calls
    for post, lazy, full, fits in zip(posts, sent, every, fit, strict=True):
        own = [g for g in lazy if g.provenance != "retrieved"]
        assert bool(own) != fits
        assert any(g.provenance != "retrieved" for g in full)
        lazy_said, full_said = (
            None if chosen is None else (chosen[0], chosen[1].provenance)
            for pool in (lazy, full)
            for chosen in [choose_reply(ReplyRanker(), "c", pool, post, retrieved_threshold=0.5)])
        assert lazy_said == full_said
        if fits:  # (the one-epoch model's own reply may be empty: then nothing is sent)
            assert lazy_said is not None and lazy_said[1] == "retrieved"


def test_the_index_is_searched_for_messages_with_tokens_and_each_message_read_once(
    tiny_bundle: Path,
) -> None:
    """A message without tokens gets no candidates, so the index is not searched for it,
    and the retrieved replies reuse the message as the codec read it for the decoder."""
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(tiny_bundle)
    searched: list[list[str]] = []
    retrieve = generator.candidates.retrieve

    def recording(texts: list[str], k: int) -> object:
        searched.append(list(texts))
        return retrieve(texts, k)

    reads: list[str] = []
    source = generator.codec.source

    def counting(text: str) -> object:
        reads.append(text)
        return source(text)

    generator.candidates.retrieve = recording  # type: ignore[method-assign,assignment]
    generator.codec.source = counting  # type: ignore[method-assign,assignment]
    posts = ["Hi, how are you?", "", "Good morning, everyone!"]
    _, pools = generator.pools(posts, DecodeOptions(retrieve=5, rerank="retrieval"))
    assert searched == [[posts[0], posts[2]]]
    assert pools[1] == [] and any(g.provenance == "retrieved" for g in pools[0])
    assert len(reads) == len(posts)


SURFACES = ("bot", "s2s chat", "s2s serve", "api")


async def sent_through(
    surface: str, fit: float, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The reply a bundle tuned to the gate (threshold 0.5), whose best retrieved reply fits
    `fit`, sends to `message` through `surface`, each built by its own command's code around
    the loaded model: `s2s bot`'s and `s2s chat`'s responder from their parsed flags (the
    bot on real python-telegram-bot against the fake Bot API; the terminal's line with the
    source it notes), `s2s serve`'s model loader and app behind its gate (JSON over ASGI),
    and `nlp.api`'s reply."""
    import io

    import httpx

    from nlp.api import Model
    from nlp.chat import command
    from nlp.chat.setup import build_responder
    from nlp.generation.decode_settings import DecodeSettings
    from nlp.serving.http import models
    from nlp.serving.http.api import gated_app
    from nlp.serving.http.config import ServeConfig
    from nlp.serving.http.metrics import ServeMetrics
    from s2s.cli import build_parser

    loaded = dataclasses.replace(
        fake_model(MixedGenerator(fit)),
        decoding=DecodeSettings(DecodeOptions(retrieved_threshold=0.5), "tests"),
    )

    def responder(command_name: str) -> ChatResponder:
        args = build_parser().parse_args([command_name, "--model", "bundle", "--state", ":memory:"])
        return build_responder(args, lambda: loaded)

    if surface == "bot":
        from tests.fakes.fake_telegram import bot_on_fake_telegram

        async with bot_on_fake_telegram(responder("bot")) as server:
            server.push_message(601, message)
            (sent,) = await server.wait_for_replies(1)
        return sent.text or ""
    if surface == "s2s chat":
        out = io.StringIO()
        await asyncio.to_thread(command.chat_loop, responder("chat"),
                                io.StringIO(message + "\n"), out, why_dir=tmp_path)
        return out.getvalue()
    if surface == "s2s serve":
        monkeypatch.setattr(models, "load_model", lambda *args, **kwargs: loaded)
        config = ServeConfig(rate_burst=100)
        served = models.load_served_model(models.parse_model_spec("chat=bundle"), config)
        app = gated_app({"chat": served}, config, ServeMetrics())
        transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.post("/v1/models/chat/chat", json={"message": message})
        await served.responder.aclose()
        body = answer.json()
        return f"{body['reply']} ({body['provenance']})"

    def api() -> str:
        with Model(loaded, max_wait=0.001) as model:
            reply = model.conversation("c").reply(message)
        return f"{reply.text} ({reply.provenance})"

    return await asyncio.to_thread(api)


@pytest.mark.parametrize("surface", SURFACES)
async def test_every_surface_sends_the_retrieved_reply_above_the_threshold_and_the_model_s_below(
    surface: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle's gate, not the surface, decides: above the threshold the retrieved reply
    (its training pair named where the surface names sources), below it the decoder's."""
    message = "do you have a favorite player?"
    above = await sent_through(surface, 0.7, message, tmp_path, monkeypatch)
    below = await sent_through(surface, 0.3, message, tmp_path, monkeypatch)
    assert retrieved_for(message) in above and "i don't know ." not in above
    assert "i don't know ." in below and retrieved_for(message) not in below
    if surface == "s2s chat":
        assert "(retrieved: training pair chat.jsonl:7)" in above
    if surface in ("s2s serve", "api"):
        assert above.endswith("(retrieved)") and below.endswith("(generated)")
