"""Retrieved candidates (nlp/generation/candidates.py): BM25's and the dense index's taken
in turn, without duplicates, each with its training pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nlp.corpus.records import Pair
from nlp.generation.candidates import Candidates, interleaved, ranking_ids
from nlp.generation.codec import TextCodec
from nlp.retrieval import INDEX_DIR, Retrieved
from nlp.retrieval.dense import VECTORS_FILE, VectorIndex
from nlp.training.reply_index import build_index
from nlp.util.config import ExperimentConfig
from tests.fakes.fake_bundle import FakeBundle

PAIRS = [
    Pair("how are you today", "fine thanks", "chat.jsonl:1"),
    Pair("what is your name", "call me bot", "chat.jsonl:2"),
    Pair("where do you live", "in a computer", "chat.jsonl:3"),
    Pair("do you like tea", "yes with milk", "chat.jsonl:4"),
    Pair("good morning", "morning to you", "chat.jsonl:5"),
    Pair("are you a robot", "i am a program", "chat.jsonl:6"),
]


def hit(row: int, score: float = 1.0) -> Retrieved:
    return Retrieved(f"reply {row}", score, row, f"chat.jsonl:{row + 1}")


def test_interleaving_takes_each_in_turn_and_skips_rows_already_taken() -> None:
    lexical = [hit(1), hit(2), hit(3)]
    dense = [hit(2, 0.9), hit(5, 0.8), hit(6, 0.7)]
    merged = interleaved([lexical, dense], 4)
    assert [h.row for h in merged] == [1, 2, 5, 3]
    assert merged[1] == hit(2, 0.9)  # taken from the dense side, which reached it first
    assert [h.row for h in interleaved([lexical, dense], 10)] == [1, 2, 5, 3, 6]
    # one side running out: the other fills in
    assert [h.row for h in interleaved([[], dense], 2)] == [2, 5]
    assert [h.row for h in interleaved([lexical, []], 2)] == [1, 2]
    assert interleaved([lexical, dense], 0) == []


def candidates_of(tmp_path: Path, *, dense: bool) -> tuple[Candidates, object]:
    """Candidates over an index of `PAIRS` with a freshly initialised dual encoder (what it
    has learnt does not matter here, only that the dense side answers with its neighbours),
    and with its reply vectors unless not `dense`."""
    from nlp.ranking import DUAL_ENCODER_DIR, DualEncoder, DualEncoderConfig

    config = ExperimentConfig()
    codec = TextCodec.fit(config, PAIRS)
    index = build_index(codec, PAIRS)
    index.save(tmp_path / INDEX_DIR)
    encoder = DualEncoder(DualEncoderConfig(vocab_size=len(codec.vocab), embedding_dim=8,
                                            hidden=8))
    encoder.save(tmp_path / DUAL_ENCODER_DIR)
    parts = {INDEX_DIR: tmp_path / INDEX_DIR, DUAL_ENCODER_DIR: tmp_path / DUAL_ENCODER_DIR}
    if dense:
        replies = encoder.reply_vectors([ranking_ids(codec, r) for r in index.replies])
        VectorIndex.build(replies, threads=1).save(tmp_path / INDEX_DIR)
        parts[f"{INDEX_DIR}/{VECTORS_FILE}"] = tmp_path / INDEX_DIR / VECTORS_FILE
    bundle = FakeBundle(codec, config, parts)
    return Candidates(bundle), encoder  # type: ignore[arg-type]


def test_retrieval_merges_bm25_and_the_nearest_reply_vectors(tmp_path: Path) -> None:
    candidates, encoder = candidates_of(tmp_path, dense=True)
    codec = candidates.bundle.codec
    index = candidates.index
    text = "are you there today"
    k = 3
    (lexical,) = index.search([codec.text_tokens(text)], k)
    replies = encoder.reply_vectors(  # type: ignore[attr-defined]
        [ranking_ids(codec, r) for r in index.replies])
    nearest = nearest_rows(encoder, codec, text, replies, k)
    (found,) = candidates.retrieve([text], k)
    rows = [h.row for h in found]
    assert len(rows) == len(set(rows)) == k
    assert rows == [h.row for h in interleaved(
        [lexical, [Retrieved("", 0.0, row, "") for row in nearest]], k)]
    assert lexical[0].row in rows and nearest[0] in rows
    assert all(h.reply == PAIRS[h.row].target and h.pair == PAIRS[h.row].origin for h in found)
    # words no training post holds: BM25 finds nothing, the vectors still find replies, and
    # they join the candidates as retrieved replies with their training pair
    (unknown,) = candidates.retrieve(["zebra xylophone"], k)
    assert index.search([codec.text_tokens("zebra xylophone")], k) == [[]]
    assert [h.row for h in unknown] == nearest_rows(encoder, codec, "zebra xylophone", replies, k)
    generations = candidates.retrieved("zebra xylophone", unknown)
    assert [(g.provenance, g.pair) for g in generations] == \
        [("retrieved", PAIRS[h.row].origin) for h in unknown]
    assert candidates.retrieve([""], k) == [[]]  # no tokens: nothing either way


def nearest_rows(encoder: object, codec: TextCodec, text: str, replies: np.ndarray,
                 k: int) -> list[int]:
    """The rows of the `k` replies nearest `text`'s post vector, by exact search."""
    post = encoder.post_vectors([ranking_ids(codec, text)])[0]  # type: ignore[attr-defined]
    return np.argsort(-(replies @ post), kind="stable")[:k].tolist()


def test_a_bundle_without_reply_vectors_retrieves_with_bm25_alone(tmp_path: Path) -> None:
    candidates, _ = candidates_of(tmp_path, dense=False)
    codec = candidates.bundle.codec
    text = "are you there today"
    assert candidates.vectors is None
    assert candidates.retrieve([text], 3) == candidates.index.search([codec.text_tokens(text)], 3)


def test_retrieval_adds_the_posts_nearest_by_the_sentence_encoder(tmp_path: Path) -> None:
    """With the posts' sentence vectors in the bundle (`retrieval.post_vectors`), a message
    that shares no word with a training post that says the same still finds its reply, and
    BM25's and the encoder's hits are taken in turn."""
    from nlp.ranking.sentence_encoder import SentenceEncoder
    from nlp.retrieval.dense import POST_VECTORS, files

    config = ExperimentConfig()
    codec = TextCodec.fit(config, PAIRS)
    index = build_index(codec, PAIRS)
    index.save(tmp_path / INDEX_DIR)
    encoder = SentenceEncoder()
    posts = encoder.encode([pair.source for pair in PAIRS])
    VectorIndex.build(posts, threads=1).save(tmp_path / INDEX_DIR, POST_VECTORS)
    graph = files(POST_VECTORS)[0]
    candidates = Candidates(FakeBundle(codec, config, {  # type: ignore[arg-type]
        INDEX_DIR: tmp_path / INDEX_DIR, f"{INDEX_DIR}/{graph}": tmp_path / INDEX_DIR / graph}))
    message = "fancy some earl grey?"  # "do you like tea", in no word of it
    assert candidates.index.search([codec.text_tokens(message)], 2) == [[]]
    (found,) = candidates.retrieve([message], 2)
    nearest = np.argsort(-(posts @ encoder.encode([message])[0]))[:2].tolist()
    assert nearest[0] == 3 and [h.row for h in found] == nearest
    assert found[0].reply == "yes with milk" and found[0].post == "do you like tea"
    text = "are you there today"
    (lexical,) = candidates.index.search([codec.text_tokens(text)], 3)
    by_meaning = np.argsort(-(posts @ encoder.encode([text])[0]))[:3].tolist()
    (found,) = candidates.retrieve([text], 3)
    assert [h.row for h in found] == [h.row for h in interleaved(
        [lexical, [Retrieved("", 0.0, row, "") for row in by_meaning]], 3)]
