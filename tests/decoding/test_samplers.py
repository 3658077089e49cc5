"""The sampler's filters against a plain NumPy statement of them (sort the row, keep the top
k, keep the smallest prefix whose mass reaches p, invert the kept mass's cumulative
distribution in vocabulary order), on peaked rows whose nucleus holds a few tokens and flat
ones whose nucleus holds most of the row; the pick fused by XLA, unfused, and inside a
graph compiled whole by XLA (the decoder's `--xla`)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from nlp.decoding.options import DecodeOptions
from nlp.decoding.params import DecodeParams
from nlp.decoding.samplers import RandomSampler

VOCAB = 2000
STEP = 2


def reference_pick(log_probs: np.ndarray, draws: np.ndarray, top_k: int, top_p: float,
                   temperature: float) -> list[int]:
    """Top-k and nucleus filtering as the papers state them, one row at a time."""
    picks = []
    for row, draw in zip(log_probs.astype(np.float64) / temperature, draws, strict=True):
        order = np.argsort(-row, kind="stable")
        probs = np.exp(row - row.max())
        probs /= probs.sum()
        keep = np.ones(len(row), bool)
        if top_k:
            keep &= row >= row[order[min(top_k, len(row)) - 1]]
        if top_p < 1.0:
            mass_before = np.concatenate([[0.0], np.cumsum(probs[order])[:-1]])
            floor = row[order[np.sum(mass_before < top_p) - 1]]
            keep &= row >= floor
        kept = np.where(keep, probs, 0.0)
        cumulative = np.cumsum(kept / kept.sum())
        picks.append(int(min(np.searchsorted(cumulative, draw, side="right"),
                             np.flatnonzero(kept)[-1])))
    return picks


def rows(peakedness: float, count: int = 48, seed: int = 0) -> np.ndarray:
    """Log-probabilities: larger `peakedness`, fewer tokens in a nucleus."""
    logits = np.random.default_rng(seed).normal(size=(count, VOCAB)) * peakedness
    return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)


@pytest.mark.parametrize(("xla_clusters", "jit_compile"),
                         [(True, False), (False, False), (True, True)])
@pytest.mark.parametrize(
    ("peakedness", "top_k", "top_p", "temperature"),
    [
        (4.0, 0, 0.9, 1.0),  # peaked: a nucleus of a few tokens
        (1.5, 0, 0.9, 0.8),  # wider
        (0.5, 0, 0.9, 1.0),  # flat: the nucleus holds most of the row
        (2.0, 10, 1.0, 1.0),  # top-k alone
        (2.0, 1500, 1.0, 1.0),  # a top-k of most of the row
        (1.0, 100, 0.5, 1.3),  # both filters
        (1.0, 0, 1.0, 1.0),  # no filter
        (2.0, 5000, 0.999, 1.0),  # a top-k past the row's width keeps it all
    ],
)
def test_picks_equal_the_reference_filters(
    peakedness: float, top_k: int, top_p: float, temperature: float, xla_clusters: bool,
    jit_compile: bool,
) -> None:
    log_probs = rows(peakedness)
    draws = np.random.default_rng(1).random((len(log_probs), 4), dtype=np.float32)
    options = DecodeOptions(strategy="sample", top_k=top_k, top_p=top_p,
                            temperature=temperature)
    params = DecodeParams.from_options(options, draws)
    sampler = RandomSampler(xla_clusters=xla_clusters)
    pick = tf.function(lambda lp, p: sampler.pick(lp, tf.constant(STEP), p),
                       jit_compile=jit_compile)
    picked = pick(tf.constant(log_probs), params).numpy().tolist()
    assert picked == reference_pick(log_probs, draws[:, STEP], top_k, top_p, temperature)


def test_the_flat_cases_reach_far_past_a_partial_ranking() -> None:
    # The flat case tests wide nuclei only if it holds far more than a few hundred tokens.
    logits = rows(0.5).astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    ranked = -np.sort(-probs / probs.sum(axis=1, keepdims=True), axis=1)
    assert ((np.cumsum(ranked, axis=1) < 0.9).sum(axis=1) + 1).min() > VOCAB // 2


def test_one_row_and_odd_row_counts_pick_like_the_unfused_pick() -> None:
    # The fused pick pads the rows to a bucket size and splits them in two halves.
    sampler, unfused = RandomSampler(), RandomSampler(xla_clusters=False)
    options = DecodeOptions(strategy="sample", top_p=0.9)
    for count in (1, 3, 5, 8):  # 5 rows are padded to 6
        log_probs = tf.constant(rows(1.0, count=count, seed=count))
        params = DecodeParams.from_options(
            options, np.random.default_rng(count).random((count, 4), dtype=np.float32))
        step = tf.constant(STEP)
        assert sampler.pick(log_probs, step, params).numpy().tolist() == \
            unfused.pick(log_probs, step, params).numpy().tolist()
