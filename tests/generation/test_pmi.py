"""The model's own replies ordered by PMI with the message (`nlp.generation.pmi`): the score
by hand, the marginal over fixed training posts, and the order through the generator and
what the bot sends."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from nlp.chat.offline import bot_choices
from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.decoding.options import OptionError
from nlp.generation.generator import Generator
from nlp.generation.mmi import CompanionScorer
from nlp.generation.pmi import MarginalScorer, marginal_posts, pmi_scores


class ScriptedScorer:
    """log p(t | post) of every target token: a table by (post, reply), counting rows and
    calls."""

    def __init__(self, table: dict[tuple[str, str], list[float]]) -> None:
        self.table = table
        self.rows = 0
        self.calls: list[int] = []

    def token_log_probs(self, pairs: Sequence[Pair]) -> list[np.ndarray]:
        self.rows += len(pairs)
        self.calls.append(len(pairs))
        return [np.array(self.table[(p.source, p.target)]) for p in pairs]


def test_the_score_per_token_by_hand() -> None:
    # reply 1: log p(T|S) = -2 over 2 tokens, log p(T) = -3: (-2 + 0.5 * 3) / 2 = -0.25
    # reply 2: log p(T|S) = -1 over 1 token, log p(T) = -0.5: (-1 + 0.25) / 1 = -0.75
    scores = pmi_scores([np.array([-1.5, -0.5]), np.array([-1.0])], [-3.0, -0.5], 0.5)
    assert scores == pytest.approx([-0.25, -0.75])
    assert pmi_scores([np.array([-1.5, -0.5])], [-3.0], 0.0) == pytest.approx([-1.0])


def test_the_marginal_is_the_log_mean_probability_over_the_posts_and_is_kept() -> None:
    scorer = ScriptedScorer({("a", "yes"): [math.log(0.5)], ("b", "yes"): [math.log(0.1)],
                             ("a", "the red one"): [math.log(0.02)],
                             ("b", "the red one"): [math.log(0.0002)]})
    marginal = MarginalScorer(scorer, ["a", "b"])
    got = marginal.log_marginals(["yes", "the red one", "yes"])
    assert got == pytest.approx([math.log(0.3), math.log(0.0101), math.log(0.3)])
    assert scorer.rows == 4  # each reply once against each post
    assert marginal.log_marginals(["yes"]) == pytest.approx([math.log(0.3)])
    assert scorer.rows == 4  # kept


def test_the_posts_are_drawn_once_and_alike() -> None:
    posts = [f"post {i}" for i in range(100)] + ["post 1", " "]
    drawn = marginal_posts(posts, 16)
    assert drawn == marginal_posts(list(reversed(posts)), 16)
    assert len(set(drawn)) == 16 and " " not in drawn
    assert sorted(marginal_posts(["x", "y"], 16)) == ["x", "y"]
    with pytest.raises(ValueError, match="training posts"):
        marginal_posts(["", " "])


def test_a_generic_reply_loses_to_one_written_for_the_message() -> None:
    """The generic reply is the more probable one for the message, but as probable for any
    post; the specific one is less probable yet far more so for this message than for others."""
    table = {("is it red?", "yes"): [-0.4], ("is it red?", "the red one"): [-0.8, -0.6],
             ("a", "yes"): [-0.4], ("b", "yes"): [-0.4],
             ("a", "the red one"): [-4.0, -3.0], ("b", "the red one"): [-5.0, -3.0]}
    scorer = ScriptedScorer(table)
    marginal = MarginalScorer(scorer, ["a", "b"]).log_marginals(["yes", "the red one"])
    forward = [np.array(table[("is it red?", r)]) for r in ("yes", "the red one")]
    plain, pmi = pmi_scores(forward, marginal, 0.0), pmi_scores(forward, marginal, 1.0)
    assert plain[0] > plain[1] and pmi[1] > pmi[0]


def test_the_weight_is_a_checked_option() -> None:
    with pytest.raises(OptionError, match="pmi_weight"):
        DecodeOptions(pmi_weight=-1.0)


def test_the_generator_orders_the_models_replies_by_pmi_and_the_bot_sends_the_first(
    tiny_bundle: Path,
) -> None:
    generator = Generator.from_bundle(tiny_bundle)
    options = DecodeOptions(beam_size=5, n_best=5, pmi_weight=1.0)
    message = "do you like music?"
    ranked = generator.generate([message], options)[0]
    assert len(ranked) == 5
    # recomputed here from the model's own teacher-forced scores and its index's posts
    scorer = CompanionScorer(generator.bundle)
    posts = marginal_posts(generator.candidates.index.posts or [])
    texts = [g.text for g in ranked]
    forward = scorer.token_log_probs([Pair(message, t) for t in texts])
    rows = scorer.token_log_probs([Pair(p, t) for t in texts for p in posts])
    k = len(posts)
    marginals = [float(np.log(np.mean(np.exp([np.sum(r) for r in rows[i * k:(i + 1) * k]]))))
                 for i in range(len(texts))]
    expected = pmi_scores(forward, marginals, 1.0)
    assert [g.score for g in ranked] == pytest.approx(expected, abs=1e-4)
    assert expected == sorted(expected, reverse=True)
    # the gate sends the model's own reply (no retrieved one reaches fit 1): the PMI-best
    gated = DecodeOptions(beam_size=5, n_best=5, pmi_weight=1.0, retrieve=10,
                          rerank="retrieval", retrieved_threshold=1.0)
    said = bot_choices(generator, [message], gated)[0]
    assert said.provenance == "generated" and said.text == texts[0]


def test_the_settings_say_when_the_model_s_replies_are_ordered_by_pmi() -> None:
    from nlp.chat.messages import CHINESE, ENGLISH

    options = DecodeOptions(beam_size=10, n_best=10, pmi_weight=0.5)
    assert "PMI, weight 0.5" in ENGLISH.replies_text(options)
    assert "PMI，权重 0.5" in CHINESE.replies_text(options)
    assert "PMI" not in ENGLISH.replies_text(DecodeOptions())
