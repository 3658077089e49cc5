"""`score_candidates` draws each post's distractors among replies as the model writes them,
so a lowercasing model is never asked to choose between "Yes" and "yes" (a forced tie)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pytest

from nlp.corpus.records import Pair
from nlp.generation.codec import TextCodec
from nlp.metrics.hits import HitsDraw
from nlp.util.config import ExperimentConfig

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


class NoRankers:
    """A bundle without a retrieval index or dual encoder."""

    has_index = False
    has_dual_encoder = False


@dataclass
class CodecOnly:
    """What `score_candidates` reads of a generator besides the scorer: its codec (a
    lowercasing one), its companions (none) and its other rankers (none)."""

    codec: TextCodec
    bundle: object = None
    companions: dict[str, Any] = field(default_factory=dict)
    candidates: NoRankers = field(default_factory=NoRankers)


def test_no_post_is_scored_against_its_own_reply_in_other_capitals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nlp.generation import reply_scores

    codec = TextCodec.fit(ExperimentConfig(), PAIRS)
    assert codec.config.tokenizer.lowercase
    assert codec.as_output("Yes") == codec.as_output("YES") == codec.as_output("yes")
    monkeypatch.setattr(reply_scores, "CompanionScorer", RecordingScorer)
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
    monkeypatch.setattr(reply_scores, "CompanionScorer", RecordingScorer)
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
