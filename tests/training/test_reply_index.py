"""What `s2s train --task chat` adds to a chat bundle for choosing replies: the retrieval index
of its training pairs and the dual encoder; retrieve-and-refine end to end; conversation logs
kept out of the index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nlp.chat.conversation_log import ConversationLog
from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.generation.bundle import load_bundle, read_metadata
from nlp.generation.codec import TextCodec
from nlp.retrieval import INDEX_DIR, ReplyIndex
from nlp.training.corpus_io import CorpusSpec
from nlp.training.reply_index import build_index, draft_replies, with_drafts
from nlp.training.run import RunOptions, train
from nlp.util.config import ExperimentConfig
from tests.conftest import REPO, tiny_overrides

pytestmark = pytest.mark.slow

CORPUS = REPO / "corpora" / "dialogue-en.jsonl"


def indexed(bundle: Path) -> list[dict]:
    lines = (bundle / INDEX_DIR / "replies.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line) for line in lines]


def corpus_pairs() -> list[Pair]:
    lines = CORPUS.read_text("utf-8").splitlines()
    return [Pair(r["source"], r["target"], f"{CORPUS}:{n}")
            for n, r in enumerate(map(json.loads, lines), 1)]


def test_the_chat_bundle_holds_its_index_and_ranker_with_checksums(tiny_bundle: Path) -> None:
    files = read_metadata(tiny_bundle)["files"]
    assert any(name.startswith(f"{INDEX_DIR}/") for name in files)
    assert any(name.startswith("dual_encoder/") for name in files)
    records = indexed(tiny_bundle)
    # every training pair (the run's validation pairs are not training pairs), named by file
    # name and line, never by the path of the machine that trained it
    assert 0 < len(records) < len(corpus_pairs())
    assert all(r["pair"].startswith("dialogue-en.jsonl:") for r in records)
    targets = {p.target for p in corpus_pairs()}
    assert {r["reply"] for r in records} <= targets
    # a changed index file is caught like any other bundle file
    replies = tiny_bundle / INDEX_DIR / "replies.jsonl"
    original = replies.read_bytes()
    try:
        replies.write_bytes(original.replace(b"?", b"!", 1))
        with pytest.raises(ValueError, match="corrupt"):
            read_metadata(tiny_bundle)
    finally:
        replies.write_bytes(original)


def test_the_ranker_starts_from_the_chat_model_s_embeddings(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default (`retrieval.dual_encoder_embeddings="model"`) the dual encoder's post and
    reply tables start as the chat model's encoder and decoder tables, at their width."""
    import nlp.ranking
    from nlp.generation.bundle import load_bundle
    from nlp.ranking import DualEncoder
    from nlp.training.reply_index import chat_model_tables, store_rankers

    bundle = load_bundle(tiny_bundle)
    saved = DualEncoder.load(tiny_bundle / "dual_encoder").config
    assert saved.embeddings_from == "chat model"
    assert saved.embedding_dim == bundle.config.model.embedding_dim
    started: list[object] = []

    def spy(*args: object, **kwargs: Any) -> object:
        started.append(kwargs.get("embeddings"))
        raise RuntimeError("enough")

    monkeypatch.setattr(nlp.ranking, "train_dual_encoder", spy)
    with pytest.raises(RuntimeError, match="enough"):
        store_rankers(tiny_bundle, None, corpus_pairs(), [], 0.01, kind="bag", seed=1,
                      verbose=0)
    posts, replies = chat_model_tables(bundle.model)
    given = started[0]
    assert isinstance(given, tuple)
    np.testing.assert_array_equal(given[0], posts)
    np.testing.assert_array_equal(given[1], replies)
    np.testing.assert_array_equal(posts, bundle.model.source_embedding.embeddings.numpy())


def test_the_bundle_retrieves_by_meaning_with_its_reply_vectors(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """With `retrieval.dense_index=true` the indexed replies' dual-encoder vectors are stored
    beside the index, checksummed, and retrieval finds replies with them where BM25 finds
    none: a message of words no training post holds. By default (off: rated less sensible
    on validation) `s2s train` stores none and finds none there."""
    import shutil

    from nlp.generation.generator import Generator
    from nlp.retrieval.dense import VECTORS_FILE
    from nlp.training.reply_index import store_reply_vectors

    assert not ExperimentConfig.load(tiny_bundle / "config.json").retrieval.dense_index
    assert not any(VECTORS_FILE in name for name in read_metadata(tiny_bundle)["files"])
    message = "zebra xylophone"
    options = DecodeOptions(strategy="greedy", retrieve=3, rerank="dual-encoder")
    copy = tmp_path / "model"
    shutil.copytree(tiny_bundle, copy)
    plain = Generator.from_bundle(copy)
    assert plain.candidates.index.search([plain.codec.text_tokens(message)], 3) == [[]]
    (candidates,) = plain.generate([message], options)
    assert [c.provenance for c in candidates] == ["generated"]

    store_reply_vectors(copy, plain.codec, build=True, verbose=0)
    assert f"{INDEX_DIR}/{VECTORS_FILE}" in read_metadata(copy)["files"]
    (candidates,) = Generator.from_bundle(copy).generate([message], options)
    retrieved = [c for c in candidates if c.provenance == "retrieved"]
    assert len(retrieved) == 3
    assert {c.text for c in retrieved} <= {r["reply"] for r in indexed(tiny_bundle)}
    assert all(c.pair.startswith("dialogue-en.jsonl:") for c in retrieved)

    store_reply_vectors(copy, plain.codec, build=False, verbose=0)
    assert not any(VECTORS_FILE in name for name in read_metadata(copy)["files"])
    (candidates,) = Generator.from_bundle(copy).generate([message], options)
    assert [c.provenance for c in candidates] == ["generated"]


def test_the_index_and_the_validation_file_are_disjoint(tiny_bundle: Path, tmp_path: Path) -> None:
    """A validation post must not retrieve its own reference (`s2s tune-decoding` tunes on
    that file): neither the index `s2s train` builds nor the one `s2s index` rebuilds from
    the whole training corpus holds a pair of the run's validation file."""
    import shutil

    from nlp.training.corpus_io import load_pairs
    from nlp.training.reply_index import index_bundle
    from nlp.training.run import VALID_FILE

    config = ExperimentConfig.load(tiny_bundle / "config.json")
    by_name = {Path(p.origin).name: (p.source, p.target)
               for p in load_pairs(CorpusSpec((CORPUS,)), config.data)}
    held = {(p.source, p.target)
            for p in load_pairs(CorpusSpec((tiny_bundle.parent / VALID_FILE,), "jsonl"))}
    assert held

    def indexed_pairs(bundle: Path) -> set[tuple[str, str]]:
        return {by_name[r["pair"]] for r in indexed(bundle)}

    assert indexed_pairs(tiny_bundle) and not indexed_pairs(tiny_bundle) & held
    copy = tmp_path / "model"
    shutil.copytree(tiny_bundle, copy)
    count = index_bundle(copy, CorpusSpec((CORPUS,)), minutes=0, verbose=0)
    assert not indexed_pairs(copy) & held
    assert indexed_pairs(copy) == set(by_name.values()) - held and count == len(indexed(copy))


def test_retrieved_replies_join_the_candidates_with_their_pair(tiny_bundle: Path) -> None:
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(tiny_bundle)
    record = indexed(tiny_bundle)[5]
    post = next(p.source for p in corpus_pairs() if p.target == record["reply"])
    for rerank in ("none", "likelihood", "dual-encoder", "dual-encoder+bm25"):
        options = DecodeOptions(strategy="sample", n_best=2, seed=1, retrieve=3, rerank=rerank)
        (candidates,) = generator.generate([post], options)
        kinds = [c.provenance for c in candidates]
        assert kinds.count("generated") == 2 and kinds.count("retrieved") == 3
        scores = [c.score for c in candidates]
        assert scores == sorted(scores, reverse=True)
        retrieved = [c for c in candidates if c.provenance == "retrieved"]
        assert record["reply"] in {c.text for c in retrieved}  # its own post is the nearest
        assert all(c.pair.startswith("dialogue-en.jsonl:") for c in retrieved)
    # per-token likelihood is the teacher-forced log-probability per reply token
    (ranked,) = generator.generate([post], DecodeOptions(
        strategy="greedy", retrieve=2, rerank="likelihood"))
    first = ranked[0]
    expected = generator.candidates.forward.token_log_probs([Pair(post, first.text)])[0]
    assert first.score == pytest.approx(float(expected.mean()), rel=1e-5)


def test_generated_and_retrieved_replies_are_ranked_on_one_scale(tiny_bundle: Path) -> None:
    """rerank none with retrieved replies: every candidate's score is its teacher-forced
    log-probability, never the decoder's length-penalised score beside a retrieved reply's
    raw sum."""
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(tiny_bundle)
    post = corpus_pairs()[7].source
    options = DecodeOptions(beam_size=3, n_best=3, retrieve=2, rerank="none",
                            length_penalty=1.0)
    (candidates,) = generator.generate([post], options)
    assert {c.provenance for c in candidates} == {"generated", "retrieved"}
    forced = generator.candidates.forward.token_log_probs([Pair(post, c.text) for c in candidates])
    assert [c.score for c in candidates] == pytest.approx(
        [float(row.sum()) for row in forced], rel=1e-5)


def test_the_fused_ranker_orders_by_cosine_plus_weighted_scaled_bm25(tiny_bundle: Path) -> None:
    """dual-encoder+bm25 ranks a message's candidates by the dual encoder's cosine plus the
    weight times each one's BM25 score over the best one's, computed here from the two
    parts; a large weight puts the candidate sharing most of the message's words first."""
    import numpy as np

    from nlp.generation.candidates import token_ranking_ids
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(tiny_bundle)
    codec = generator.codec
    post = corpus_pairs()[3].source
    for weight in (0.0, 0.5, 100.0):
        options = DecodeOptions(strategy="sample", n_best=3, seed=2, retrieve=4,
                                rerank="dual-encoder+bm25", bm25_weight=weight)
        (candidates,) = generator.generate([post], options)
        replies = [codec.text_tokens(c.text) for c in candidates]
        (cosines,) = generator.candidates.dual_encoder.scores(
            [token_ranking_ids(codec, codec.text_tokens(post))],
            [[token_ranking_ids(codec, tokens) for tokens in replies]])
        bm25 = generator.candidates.index.candidate_scores(codec.text_tokens(post), replies)
        expected = np.asarray(cosines) + weight * bm25 / bm25.max()
        assert list(np.argsort(-expected, kind="stable")) == list(range(len(candidates)))
        if weight == 100.0:
            assert bm25[0] == bm25.max() > 0


def test_the_retrieval_ranker_orders_by_fit_and_puts_the_decoder_s_replies_last(
    tiny_bundle: Path, tmp_path: Path,
) -> None:
    """rerank=retrieval: the replies BM25 found, in the order of their fits (the gate's
    reading of how well the post each answered matches the message), each scored by its
    log-probability under the softmax of the fits' log-odds, the generated ones after every
    retrieved one; an index saved without its posts' texts is refused with what to run."""
    import shutil

    from nlp.generation.bundle import store_part
    from nlp.generation.generator import Generator
    from nlp.generation.rankers import retrieval_values

    generator = Generator.from_bundle(tiny_bundle)
    record = indexed(tiny_bundle)[5]
    post = record["post"]
    (found,) = generator.candidates.index.search([generator.codec.text_tokens(post)], 4)
    options = DecodeOptions(strategy="sample", n_best=2, seed=3, retrieve=4, rerank="retrieval")
    (candidates,) = generator.generate([post], options)
    assert [c.provenance for c in candidates] == ["retrieved"] * len(found) + ["generated"] * 2
    assert {(c.text, c.post) for c in candidates[:len(found)]} == {
        (hit.reply, hit.post) for hit in found}
    retrieved, written = candidates[:len(found)], candidates[len(found):]
    fits = [c.fit for c in retrieved]
    assert fits == sorted(fits, reverse=True) and all(0 < fit < 1 for fit in fits)
    # the post itself says what the message says: its reply fits best
    assert (retrieved[0].post, retrieved[0].text) == (post, record["reply"])
    values = retrieval_values(candidates)
    expected = values - values.max() - np.log(np.exp(values - values.max()).sum())
    assert [c.score for c in retrieved] == pytest.approx(expected[:len(found)].tolist(), rel=1e-5)
    # the decoder's best one nat below the least fitting retrieved reply, the other below it
    assert written[0].score == pytest.approx(expected[-1], rel=1e-5)
    assert written[0].score < retrieved[-1].score and written[1].score <= written[0].score
    assert all(np.isnan(c.confidence) for c in candidates)  # it has no calibration

    older = tmp_path / "older"
    shutil.copytree(tiny_bundle, older)
    index = ReplyIndex.load(older / INDEX_DIR)
    index.posts = None  # as an index saved before the posts were kept
    store_part(older, INDEX_DIR, index.save)
    assert "post" not in indexed(older)[0]
    with pytest.raises(ValueError, match=r"rerank=retrieval (.|\n)* `s2s index"):
        Generator.from_bundle(older).generate([post], options)


def test_generated_replies_off_leaves_the_retrieved_ones_with_their_confidence(
    tiny_bundle: Path,
) -> None:
    """`generated=False`: a plain model's candidates are the retrieved replies only; each
    candidate carries its ranker's calibrated probability (the bundle's calibration of its
    score, `nlp.generation.confidence`: tests/generation/test_confidence.py for every
    ranker), and a threshold on an uncalibrated ranker is refused."""
    import dataclasses

    import numpy as np

    from nlp.decoding.options import OptionError
    from nlp.generation.confidence import RankerCalibration, fit_fields
    from nlp.generation.decode_settings import CALIBRATION, DecodeSettings
    from nlp.generation.generator import Generator
    from nlp.metrics.calibration import Calibration

    generator = Generator.from_bundle(tiny_bundle)
    post = corpus_pairs()[7].source
    for rerank in ("likelihood", "dual-encoder"):
        options = DecodeOptions(strategy="sample", n_best=3, seed=1, retrieve=3, rerank=rerank,
                                generated=False)
        (candidates,) = generator.generate([post], options)
        assert [c.provenance for c in candidates] == ["retrieved"] * 3
        assert all(np.isnan(c.confidence) for c in candidates)  # no calibration yet
        with pytest.raises(OptionError, match="calibrat"):
            generator.generate([post], dataclasses.replace(options, fallback_threshold=0.5))
    (mixed,) = generator.generate([post], DecodeOptions(
        strategy="sample", n_best=3, seed=1, retrieve=3, rerank="likelihood"))
    assert sorted(c.provenance for c in mixed).count("generated") == 3

    options = DecodeOptions(strategy="greedy", retrieve=2, rerank="likelihood",
                            fallback_threshold=0.5)
    calibration = Calibration(slope=2.0, intercept=1.0)
    stored = RankerCalibration("likelihood", calibration, fit_fields(options, decodes=True))
    settings = DecodeSettings(DecodeOptions(), "tuned",
                              {CALIBRATION: {"likelihood": stored.to_json()}})
    generator.candidates.bundle = dataclasses.replace(generator.bundle, decoding=settings)
    (ranked,) = generator.generate([post], options)
    assert [c.confidence for c in ranked] == pytest.approx(
        [float(calibration.probability([c.score])[0]) for c in ranked])
    # ranked by confidence among the replies with something to send; an empty one goes last
    sendable = [c for c in ranked if c.text.strip()]
    assert ranked[:len(sendable)] == sendable
    assert sendable[0].confidence >= sendable[-1].confidence


def refine_pairs(index: ReplyIndex, codec: TextCodec, pairs: list[Pair], data: Any,
                 **search: Any) -> list[Pair]:
    return with_drafts(pairs, draft_replies(index, codec, pairs, data, **search), data)


def test_refine_pairs_never_draft_from_their_own_pair() -> None:
    config = ExperimentConfig()
    pairs = [Pair("how are you", "fine thanks", "c:1"), Pair("how are you", "great", "c:2"),
             Pair("how old are you", "twenty", "c:3"), Pair("what is this", "a test", "c:4")]
    codec = TextCodec.untrained(config, pairs)
    index = build_index(codec, pairs)
    refined = refine_pairs(index, codec, pairs, config.data, skip_same_post=True)
    separator = config.data.refine_separator
    # the two "how are you" pairs share a post: neither drafts from the other, nor itself
    assert refined[0].source == "how are you" + separator + "twenty"
    assert refined[1].source == "how are you" + separator + "twenty"
    assert refined[2].source.startswith("how old are you" + separator)
    assert refined[2].source.split(separator)[1] in {"fine thanks", "great"}
    assert refined[3].source == "what is this" + separator.rstrip()  # nothing matches
    assert [p.target for p in refined] == [p.target for p in pairs]


def test_a_post_without_a_word_is_never_found() -> None:
    """A training post of marks alone ("!!!", ":)") answered the turns before it: BM25
    found it for any message ending in the same marks ("HELLO!!!" got a reply about melted
    crayons). It stays a row, so rows and pairs keep aligned, and matches nothing."""
    config = ExperimentConfig()
    pairs = [Pair("!!!", "then i melted crayons", "c:1"), Pair("hello there", "hi", "c:2"),
             Pair(":) :)", "what a day", "c:3"), Pair("how are you", "fine", "c:4"),
             Pair("hello !!! 2", "two", "c:5")]
    codec = TextCodec.untrained(config, pairs)
    index = build_index(codec, pairs)
    assert len(index) == len(pairs)
    (found,) = index.search([codec.text_tokens("HELLO!!! :)")], 5)
    assert [hit.reply for hit in found] == ["two", "hi"]
    assert [hit.pair for hit in found] == ["c:5", "c:2"]


def test_alpha_blending_gives_a_seeded_share_of_training_pairs_their_own_reply() -> None:
    """Roller et al. 2020: part of the training pairs read the gold reply as the draft, so
    the model learns that a draft can be used; held-out pairs never do."""
    config = ExperimentConfig().with_overrides(["data.refine_gold_share=0.5"])
    pairs = [Pair(f"post number {i}", f"reply number {i}", f"c:{i}") for i in range(400)]
    codec = TextCodec.untrained(config, pairs)
    index = build_index(codec, pairs)
    separator = config.data.refine_separator

    def gold(refined: list[Pair]) -> list[bool]:
        return [p.source.split(separator)[1] == p.target for p in refined]

    trained = refine_pairs(index, codec, pairs, config.data, skip_same_post=True, gold_seed=3)
    share = sum(gold(trained)) / len(pairs)
    assert 0.4 < share < 0.6
    assert gold(trained) == gold(refine_pairs(index, codec, pairs, config.data,
                                              skip_same_post=True, gold_seed=3))
    held = refine_pairs(index, codec, pairs, config.data, skip_same_post=True)
    assert not any(gold(held))
    with pytest.raises(ValueError, match="refine_gold_share"):
        ExperimentConfig().with_overrides(["data.refine_gold_share=1.5"])


def test_retrieve_and_refine_trains_and_decodes_end_to_end(tmp_path: Path) -> None:
    from nlp.generation.generator import Generator

    config = ExperimentConfig().with_overrides(tiny_overrides(**{
        "data.retrieve_refine": "true", "retrieval.dual_encoder_minutes": 0}))
    train(config, CorpusSpec((CORPUS,)), RunOptions(tmp_path, verbose=0))
    bundle = load_bundle(tmp_path / "model")
    assert bundle.part(INDEX_DIR) is not None and bundle.part("dual_encoder") is None
    generator = Generator.from_bundle(tmp_path / "model")
    post = corpus_pairs()[0].source
    (n_best,) = generator.generate([post], DecodeOptions(strategy="greedy"))
    (reply,) = n_best
    assert reply.provenance == "refined" and reply.pair.startswith("dialogue-en.jsonl:")
    # the encoder read the message, the separator and the draft
    draft = ReplyIndex.load(tmp_path / "model" / INDEX_DIR).search(
        [bundle.codec.text_tokens(post)], 1)[0][0]
    assert reply.pair == draft.pair
    separator = config.data.refine_separator.strip()
    assert separator in reply.source_tokens
    assert reply.source_tokens[reply.source_tokens.index(separator) + 1:] == \
        bundle.codec.text_tokens(draft.reply)
    # the retrieved replies' fit reads the message, not the message and its draft
    from nlp.generation.decode_settings import DecodeSettings
    from nlp.generation.retrieved_fit import RETRIEVED_FIT, RatedGate
    from nlp.metrics.calibration import Calibration

    gate = RatedGate(Calibration(slope=4.0, intercept=-2.0), 0.6, 0.2, signal="tf-idf")
    object.__setattr__(generator.bundle, "decoding", DecodeSettings(
        DecodeOptions(), "test", {RETRIEVED_FIT: {"en": gate.to_json()}}))
    (pool,) = generator.generate([post], DecodeOptions(strategy="greedy", retrieve=5))
    retrieved = [g for g in pool if g.provenance == "retrieved"]
    assert retrieved and all(separator in g.source_tokens for g in retrieved)
    candidates, query = generator.candidates, generator.candidates.query_tokens(post)
    assert [g.fit for g in retrieved] == pytest.approx([gate.fit(candidates.index.post_similarity(
        query, candidates.query_tokens(g.post))) for g in retrieved])


@pytest.mark.slow
def test_a_resumed_refine_run_reads_its_drafts_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--resume` of a retrieve-and-refine run trains on the drafts of the run's start, kept in
    its run directory, without searching the index again."""
    from nlp.training import run
    from s2s.cli import main

    read: list[tuple[list[str], list[str]]] = []
    real_prepare = run.prepare_examples

    def prepare(config, train_pairs, valid_pairs, *rest, **options):  # type: ignore[no-untyped-def]
        read.append(([p.source for p in train_pairs], [p.source for p in valid_pairs]))
        return real_prepare(config, train_pairs, valid_pairs, *rest, **options)

    def never(*args: object, **kwargs: object) -> list[str]:
        raise AssertionError("a resumed run searched for its drafts again")

    monkeypatch.setattr(run, "prepare_examples", prepare)
    config = ExperimentConfig().with_overrides(tiny_overrides(**{
        "data.retrieve_refine": "true", "data.refine_gold_share": 0.3,
        "retrieval.dual_encoder_minutes": 0}))
    train(config, CorpusSpec((CORPUS,)), RunOptions(tmp_path, verbose=0))
    monkeypatch.setattr(run, "draft_replies", never)
    assert main(["train", "--corpus", str(CORPUS), "--out", str(tmp_path), "--quiet",
                 "--resume", "--epochs", "2"]) == 0
    assert len(read) == 2 and read[1] == read[0]
    assert any(config.data.refine_separator.strip() in source for source in read[0][0])


def test_conversation_logs_stay_out_of_the_index_unless_asked(tmp_path: Path) -> None:
    log_file = tmp_path / "bot-log.jsonl"
    log = ConversationLog(log_file, salt="s")
    said = ["my secret phone number is five five five", "call me at home tonight please"]
    log.user("1", "hello bot")
    log.bot("1", "hello")
    for text in said:
        log.user("1", text)
    log.close()
    for index_logs, expect in ((False, False), (True, True)):
        out = tmp_path / f"run-{index_logs}"
        config = ExperimentConfig().with_overrides(tiny_overrides(**{
            "retrieval.dual_encoder_minutes": 0, "retrieval.index_logs": str(index_logs),
            "train.valid_fraction": 0.1}))
        train(config, CorpusSpec((CORPUS, log_file)), RunOptions(out, verbose=0))
        replies = {r["reply"] for r in indexed(out / "model")}
        assert bool(replies & set(said)) is expect
        assert len(replies) > 100


def test_ranking_messages_together_equals_ranking_each_alone(tiny_bundle: Path) -> None:
    """The micro-batcher decodes several chats' messages in one call, so their candidates are
    scored together (one teacher-forced call, one dual-encoder call, BM25 per message): each
    message's ranked replies and scores must be what it gets alone."""
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(tiny_bundle)
    posts = [pair.source for pair in corpus_pairs()[:40:13]]
    for rerank in ("likelihood", "dual-encoder", "dual-encoder+bm25"):
        options = DecodeOptions(beam_size=3, n_best=3, retrieve=4, rerank=rerank)
        together = generator.generate(posts, options)
        for post, ranked in zip(posts, together, strict=True):
            (alone,) = generator.generate([post], options)
            assert [c.text for c in ranked] == [c.text for c in alone], rerank
            assert [c.score for c in ranked] == pytest.approx(
                [c.score for c in alone], rel=1e-4, abs=1e-5), rerank


def _hard_case() -> tuple[TextCodec, list[Pair]]:
    """Three conversations and a lone pair: row 5 repeats row 0's post, row 6 has row 0's
    reply, row 7's reply is row 5's."""
    config = ExperimentConfig()
    pairs = [
        Pair("how are you", "fine thanks", "c:1", "g1"),
        Pair("fine thanks", "good to hear", "c:2", "g1"),
        Pair("good to hear", "bye now", "c:3", "g1"),
        Pair("how old are you", "twenty", "c:4", "g2"),
        Pair("are you there", "yes i am", "c:5", "g2"),
        Pair("how are you", "great", "c:6", "g3"),
        Pair("what now", "fine thanks", "c:7", "g3"),
        Pair("how are you doing", "great", "c:8", ""),
    ]
    return TextCodec.untrained(config, pairs), pairs


def test_hard_negatives_are_bm25_s_matches_then_the_nearest_turns_of_the_conversation() -> None:
    from nlp.training.reply_index import find_hard_negatives

    codec, pairs = _hard_case()
    index = build_index(codec, pairs)
    tokens = [codec.text_tokens(pair.source) for pair in pairs]
    offer = find_hard_negatives(index, tokens, pairs, depth=5)
    first, second, third, _, _, repeat, other, lone = offer(range(len(pairs)))
    # "how are you": BM25's posts sharing its words, best first (not row 5, the same post),
    # then its conversation's turns, nearest first
    matches = [hit.row for hit in index.search([tokens[0]], 5, skip_same_post=True)[0]]
    assert sorted(matches) == [3, 4, 7] and first == [*matches, 1, 2]
    assert second == [0, 2] and third == [1, 0]  # neighbours at equal distance: row order
    # row 7's reply is row 5's own ("great"): no negative for it; row 6 shares no word
    assert repeat == [3, 4, 6] and other == [5]
    assert sorted(lone) == [0, 3, 4] and 5 not in lone  # row 5 is its reply again
    # `depth` caps each source
    assert find_hard_negatives(index, tokens, pairs, depth=1)([0]) == [[matches[0], 1]]
    # BM25 is searched for at most `searched` new rows a call; the rest get their
    # conversation's replies until a later call searches for them
    thrifty = find_hard_negatives(index, tokens, pairs, searched=1)
    assert thrifty([0, 5]) == [first, [6]]
    assert thrifty([0, 5]) == [first, repeat]
    with pytest.raises(ValueError, match="the same pairs"):
        find_hard_negatives(index, tokens[:-1], pairs[:-1])


def test_the_ranker_reads_the_context_turns_the_chat_model_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With `data.context_turns`, a training post is the earlier turns and the message,
    joined as the chat model's source is (and as the chat passes it at reply time), so the
    ranker's post vector depends on the earlier turns."""

    import nlp.ranking
    from nlp.generation.candidates import ranking_ids
    from nlp.training.reply_index import train_ranker

    config, pairs, codec = _dialogue_codec(
        tmp_path,
        "the cat sleeps __eou__ where ? __eou__ on the mat __eou__ good __eou__\n"
        "the dog barks __eou__ where ? __eou__ in the yard __eou__ loud __eou__\n")
    seen: dict[str, list[list[int]]] = {}
    train = nlp.ranking.train_dual_encoder

    def spy(posts: list[list[int]], *args: object, **kwargs: object) -> object:
        seen["posts"] = posts
        return train(posts, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(nlp.ranking, "train_dual_encoder", spy)
    encoder = train_ranker(codec, pairs, [], 0.01, kind="recurrent", seed=1, verbose=0,
                           index=build_index(codec, pairs))
    # "where ?" answered "on the mat" after the cat, "in the yard" after the dog
    cat, dog = (pairs.index(next(p for p in pairs if p.target == reply))
                for reply in ("on the mat", "in the yard"))
    separator = config.data.turn_separator
    assert pairs[cat].source == separator.join(["the cat sleeps", "where ?"])
    assert seen["posts"][cat] == ranking_ids(codec, pairs[cat].source)
    assert codec.vocab.encode(["cat"])[0] in seen["posts"][cat]
    vectors = encoder.post_vectors([seen["posts"][cat], seen["posts"][dog]])  # type: ignore[attr-defined]
    assert not np.allclose(vectors[0], vectors[1], atol=1e-4)


def test_hard_negatives_are_offered_only_when_the_setting_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`retrieval.dual_encoder_hard_negatives` (0 by default: in-batch negatives only) is
    what reaches the dual encoder's training: its config and the offer of BM25's matches;
    the ranker's own config and `train_ranker` default to the same (one default)."""
    from collections import Counter

    import nlp.ranking
    from nlp.ranking import DualEncoderConfig
    from nlp.training.reply_index import train_ranker

    default = ExperimentConfig().retrieval.dual_encoder_hard_negatives
    assert default == 0 and DualEncoderConfig().hard_negatives == default
    pairs = [Pair(f"tell me about {w}", f"{w} is nice") for w in ("tea", "rain", "snow", "sun")]
    config = ExperimentConfig()
    codec = TextCodec.untrained(config, pairs)
    codec.fit_vocabulary(Counter(t for p in pairs for t in codec.text_tokens(p.source + " "
                                                                              + p.target)))
    calls: list[tuple[int, bool]] = []

    def spy(posts: object, replies: object, config: Any, *args: object, **kwargs: Any) -> object:
        calls.append((config.hard_negatives, kwargs.get("hard") is not None))
        raise RuntimeError("enough")

    monkeypatch.setattr(nlp.ranking, "train_dual_encoder", spy)
    asked: list[dict[str, Any]] = [{}, {"hard_negatives": 0}, {"hard_negatives": 2}]
    for count in asked:
        with pytest.raises(RuntimeError, match="enough"):
            train_ranker(codec, pairs, [], 0.01, kind="bag", seed=1, verbose=0,
                         index=build_index(codec, pairs), **count)
    assert calls == [(default, False), (0, False), (2, True)]


def test_the_index_matches_the_message_and_no_candidate_repeats_a_turn(tmp_path: Path) -> None:
    """With earlier turns joined into posts, BM25 indexes and searches the message alone
    (the turns before it are the ranker's), a retrieved reply that only says again what a
    turn of the conversation said is not a candidate, and one that is goes out as the model
    writes text (DailyDialog's replies are spaced "it is hungry ."; people saw that)."""
    config, pairs, codec = _dialogue_codec(
        tmp_path,
        "the cat sleeps __eou__ where ? __eou__ on the mat __eou__ good __eou__\n"
        "the dog barks __eou__ why ? __eou__ it is hungry __eou__ feed it __eou__\n")
    index = build_index(codec, pairs)
    tokens = codec.text_tokens
    # "where ?" is the message of one pair and an earlier turn of the next ("on the mat" ->
    # "good"): only the first is found
    (found,) = index.search([tokens("where")], 3)
    assert [hit.reply for hit in found] == ["on the mat"]
    from nlp.generation.candidates import Candidates
    from nlp.retrieval import Retrieved

    separator = config.data.turn_separator
    post = separator.join(["the dog barks", "why ?"])
    hits = [Retrieved(reply, 1.0, row, f"d:{row}") for row, reply in
            enumerate(["Why?", "The dog barks!", "it is hungry ."])]

    from tests.fakes.fake_bundle import FakeBundle

    candidates = Candidates(FakeBundle(codec, config))  # type: ignore[arg-type]
    candidates._index = index  # the fit reads how well each hit's post matches the message
    # sent as the model writes text, not in the corpus's spacing ("it is hungry .")
    assert [g.text for g in candidates.retrieved(post, hits)] == ["It is hungry."]
    assert candidates.query_tokens(post) == tokens("why ?")


def _dialogue_codec(
    tmp_path: Path, dialogues: str
) -> tuple[ExperimentConfig, list[Pair], TextCodec]:
    """DailyDialog-format `dialogues` read with two context turns, and a codec fit on them."""
    from collections import Counter

    from nlp.training.corpus_io import load_pairs

    path = tmp_path / "dialogues.txt"
    path.write_text(dialogues, "utf-8")
    config = ExperimentConfig().with_overrides(["data.context_turns=2"])
    pairs = load_pairs(CorpusSpec((path,), "dailydialog"), config.data)
    codec = TextCodec.untrained(config, pairs)
    codec.fit_vocabulary(Counter(t for p in pairs for t in codec.text_tokens(p.source + " "
                                                                              + p.target)))
    return config, pairs, codec


def test_the_posts_sentence_vectors_are_built_when_asked_and_taken_out_when_not(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """`s2s index --post-vectors` (or `retrieval.post_vectors=true`): the index's posts'
    sentence vectors beside it, checksummed, one a pair, found by meaning (a message of
    words no training post holds still retrieves); by default none, and `--no-post-vectors`
    takes out the ones there."""
    import shutil

    from nlp.generation.generator import Generator
    from nlp.retrieval.dense import POST_VECTORS, VectorIndex
    from nlp.retrieval.dense import files as vector_files
    from nlp.training.reply_index import store_post_vectors
    from s2s.cli import main

    names = {f"{INDEX_DIR}/{name}" for name in vector_files(POST_VECTORS)[:2]}
    assert not ExperimentConfig.load(tiny_bundle / "config.json").retrieval.post_vectors
    assert not names & set(read_metadata(tiny_bundle)["files"])
    copy = tmp_path / "model"
    shutil.copytree(tiny_bundle, copy)
    index = ["index", "--model", str(copy), "--corpus", str(CORPUS), "--dual-encoder-minutes",
             "0", "--quiet"]
    assert main([*index, "--post-vectors"]) == 0
    assert names <= set(read_metadata(copy)["files"])
    records = indexed(copy)
    assert VectorIndex.load(copy / INDEX_DIR, rows=len(records), stem=POST_VECTORS)
    generator = Generator.from_bundle(copy)
    message = "zebra xylophone"
    assert generator.candidates.index.search([generator.codec.text_tokens(message)], 3) == [[]]
    (found,) = generator.candidates.retrieve([message], 3)
    assert len(found) == 3 and {h.reply for h in found} <= {r["reply"] for r in records}
    store_post_vectors(copy, 8, verbose=0)  # fewer dimensions than the 512 it reads
    vectors = VectorIndex.load(copy / INDEX_DIR, rows=len(records), stem=POST_VECTORS)
    assert vectors.projection is not None and vectors.projection.components.shape == (512, 8)
    assert main([*index, "--no-post-vectors"]) == 0
    assert not names & set(read_metadata(copy)["files"])
    assert Generator.from_bundle(copy).candidates.retrieve([message], 3) == [[]]


def test_a_resumed_run_keeps_what_was_added_to_its_bundle(tmp_path: Path) -> None:
    """`--resume` (the README's longer training) rebuilt the index from the training pairs,
    undoing an `s2s index` of another corpus, and a better epoch's bundle dropped the tuned
    decoding: both stay now."""
    from nlp.generation.bundle import store_decoding
    from nlp.generation.decode_settings import DecodeSettings
    from s2s.cli import main

    config = ExperimentConfig().with_overrides(tiny_overrides(**{
        "retrieval.dual_encoder_minutes": 0}))
    train(config, CorpusSpec((CORPUS,)), RunOptions(tmp_path, verbose=0))
    some = tmp_path / "some.jsonl"
    some.write_text("".join(CORPUS.read_text("utf-8").splitlines(keepends=True)[:12]), "utf-8")
    assert main(["index", "--model", str(tmp_path / "model"), "--corpus", str(some),
                 "--dual-encoder-minutes", "0", "--quiet"]) == 0
    kept = len(indexed(tmp_path / "model"))
    assert 0 < kept <= 12
    tuned = load_bundle(tmp_path / "model").decoding
    assert tuned is not None
    store_decoding(tmp_path / "model", DecodeSettings(tuned.options, "tuned by a test"))
    assert main(["train", "--corpus", str(CORPUS), "--out", str(tmp_path), "--quiet",
                 "--resume", "--epochs", "3"]) == 0
    assert len(indexed(tmp_path / "model")) == kept
    decoding = load_bundle(tmp_path / "model").decoding
    assert decoding is not None and decoding.origin == "tuned by a test"


def test_a_resume_that_stops_still_leaves_its_bundle_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parts set aside came back only after training ended well: a resume stopped after a
    better epoch (Ctrl-C, a NaN) left a bundle of the model alone, without its index."""
    from nlp.training import run
    from s2s.cli import main

    config = ExperimentConfig().with_overrides(tiny_overrides(**{
        "retrieval.dual_encoder_minutes": 0}))
    train(config, CorpusSpec((CORPUS,)), RunOptions(tmp_path, verbose=0))
    kept = len(indexed(tmp_path / "model"))
    real_fit = run._fit

    def stopped(*args: Any, **kwargs: Any) -> Any:
        real_fit(*args, **kwargs)  # better epochs saved
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "_fit", stopped)
    assert main(["train", "--corpus", str(CORPUS), "--out", str(tmp_path), "--quiet",
                 "--resume", "--epochs", "3"]) != 0  # the command reports the interruption
    assert len(indexed(tmp_path / "model")) == kept
