"""`score_candidates` draws each post's distractors among replies as the model writes them,
so a lowercasing model is never asked to choose between "Yes" and "yes" (a forced tie)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from nlp.corpus.records import Pair
from nlp.generation.codec import TextCodec
from nlp.metrics.hits import HitsDraw
from nlp.util.config import ExperimentConfig
from tests.fakes.fake_bundle import FakeBundle

REPLIES = ["Yes", "yes", "no", "YES", "sure", "fine", "maybe", "later", "No", "never"]
PAIRS = [Pair(f"question {i}", reply) for i, reply in enumerate(REPLIES)]


class RecordingScorer:
    """Stands in for `CompanionScorer`: records the pairs it is asked to score and gives
    every target token the log-probability -1."""

    seen: ClassVar[list[Pair]] = []

    def __init__(self, bundle: object) -> None:
        pass

    def token_log_probs(self, pairs: Sequence[Pair]) -> list[np.ndarray]:
        RecordingScorer.seen += pairs
        return [np.full(2, -1.0) for _ in pairs]


@dataclass
class RecordingCompanion:
    """Stands in for a companion (an LM or reverse model): records the pairs it scores."""

    seen: list[Pair] = field(default_factory=list)

    def token_log_probs(self, pairs: Sequence[Pair]) -> list[np.ndarray]:
        self.seen += pairs
        return [np.full(2, -1.0) for _ in pairs]


@dataclass
class CodecOnly:
    """What `score_candidates` reads of a generator: its codec (a lowercasing one), its
    companions (none) and its `Candidates` over the bundle's parts (the model's scorer is
    `RecordingScorer`, patched in)."""

    codec: TextCodec
    bundle: FakeBundle | None = None
    companions: dict[str, Any] = field(default_factory=dict)
    candidates: Any = None

    def __post_init__(self) -> None:
        from nlp.generation.candidates import Candidates

        if self.bundle is None:
            self.bundle = FakeBundle(self.codec, self.codec.config)
        self.candidates = Candidates(self.bundle)  # type: ignore[arg-type]


def test_no_post_is_scored_against_its_own_reply_in_other_capitals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nlp.generation import reply_scores

    codec = TextCodec.fit(ExperimentConfig(), PAIRS)
    assert codec.config.tokenizer.lowercase
    assert codec.as_output("Yes") == codec.as_output("YES") == codec.as_output("yes")
    monkeypatch.setattr("nlp.generation.candidates.CompanionScorer", RecordingScorer)
    k = 5
    for seed in range(20):
        RecordingScorer.seen = []
        scored = reply_scores.score_candidates(
            CodecOnly(codec), PAIRS, HitsDraw(k=k, seed=seed), 64  # type: ignore[arg-type]
        )
        assert (scored.posts, scored.k) == (len(PAIRS), k)
        for post in range(len(PAIRS)):
            candidates = RecordingScorer.seen[post * k : (post + 1) * k]
            assert {c.source for c in candidates} == {PAIRS[post].source}
            assert candidates[0].target == PAIRS[post].target  # the true reply first
            forms = [c.target.lower() for c in candidates]
            assert len(set(forms)) == k, (seed, post, [c.target for c in candidates])


def test_a_deadline_keeps_the_posts_scored_by_then_as_a_smaller_draw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past its deadline scoring stops after the model call under way; the posts kept are
    those a draw with that smaller limit picks, each against the same distractors."""
    from nlp.generation import reply_scores

    codec = TextCodec.fit(ExperimentConfig(), PAIRS)
    monkeypatch.setattr("nlp.generation.candidates.CompanionScorer", RecordingScorer)
    k, per_call = 4, 2  # batch size 1: max(1, 8 // 4) posts a call
    draw = HitsDraw(k=k, seed=3, limit=len(PAIRS))  # a sample: every post, in drawn order
    RecordingScorer.seen = []
    whole = reply_scores.score_candidates(
        CodecOnly(codec), PAIRS, draw, 1  # type: ignore[arg-type]
    )
    everything = list(RecordingScorer.seen)
    calls = iter(range(1, 100))  # the clock after each call: 1, 2, ...
    RecordingScorer.seen = []
    cut = reply_scores.score_candidates(
        CodecOnly(codec), PAIRS, draw, 1,  # type: ignore[arg-type]
        deadline=1.5, clock=lambda: float(next(calls)),
    )
    assert whole.posts == len(PAIRS)
    assert cut.posts == 2 * per_call  # the clock reads 1, then 2 > 1.5: two calls
    assert RecordingScorer.seen == everything[: cut.posts * k]
    smaller = HitsDraw(k=k, seed=3, limit=cut.posts).rows([p.group for p in PAIRS])
    assert [c.source for c in RecordingScorer.seen[::k]] == [PAIRS[r].source for r in smaller]
    assert np.array_equal(cut.sums, whole.sums[: cut.posts * k])


def test_a_refine_model_is_scored_on_the_input_it_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A retrieve-and-refine model was trained on `post __ret__ draft`: Hits and reply scores
    teacher-force that input (its draft found as generation finds it), never the bare post;
    the companions, trained on bare posts, still read the bare post."""
    from nlp.generation import reply_scores
    from nlp.retrieval import INDEX_DIR
    from nlp.retrieval.refine import refined_source
    from nlp.training.reply_index import build_index

    config = ExperimentConfig().with_overrides(["data.retrieve_refine=true"])
    codec = TextCodec.fit(config, PAIRS)
    index = build_index(codec, [Pair(f"question {i} again", f"draft {i}") for i in range(10)])
    index.save(tmp_path / INDEX_DIR)
    lm = RecordingCompanion()
    generator = CodecOnly(codec, FakeBundle(codec, config, {INDEX_DIR: tmp_path / INDEX_DIR}),
                          companions={"lm": lm})
    monkeypatch.setattr("nlp.generation.candidates.CompanionScorer", RecordingScorer)

    def read(post: str) -> str:
        (hit,) = index.search([codec.text_tokens(post)], 1)[0]
        return refined_source(post, hit.reply, config.data.refine_separator)

    assert read("question 3") == "question 3" + config.data.refine_separator + "draft 3"
    k = 3
    RecordingScorer.seen = []
    scored = reply_scores.score_candidates(
        generator, PAIRS, HitsDraw(k=k, seed=1), 64  # type: ignore[arg-type]
    )
    assert scored.posts == len(PAIRS) and "bm25" in scored.others
    assert {c.source for c in RecordingScorer.seen} == {read(p.source) for p in PAIRS}
    assert {c.source for c in lm.seen} == {p.source for p in PAIRS}  # the bare posts
    RecordingScorer.seen, lm.seen = [], []
    reply_scores.score_replies(generator, "question 3", ["yes", "no"])  # type: ignore[arg-type]
    assert RecordingScorer.seen == [Pair(read("question 3"), "yes"), Pair(read("question 3"), "no")]
    assert lm.seen == [Pair("question 3", "yes"), Pair("question 3", "no")]
