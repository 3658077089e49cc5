"""The sampler's filters against a plain NumPy statement of them (sort the row, keep the top
k, keep the smallest prefix whose mass reaches p, invert the kept mass's cumulative
distribution in vocabulary order), on rows whose filters end in each tier of ranked logits
and rows that reach past them all (the sampler then sorts the whole row)."""

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
            keep &= row >= row[order[top_k - 1]]
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


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize(
    ("peakedness", "top_k", "top_p", "temperature"),
    [
        (4.0, 0, 0.9, 1.0),  # peaked: every nucleus lies in the first tier
        (1.5, 0, 0.9, 0.8),  # wider: some reach the second tier
        (0.5, 0, 0.9, 1.0),  # flat: past every tier, the rows are sorted
        (2.0, 10, 1.0, 1.0),  # top-k within the first tier
        (2.0, 1500, 1.0, 1.0),  # top-k past every tier
        (1.0, 100, 0.5, 1.3),  # both filters
        (1.0, 0, 1.0, 1.0),  # no filter
    ],
)
def test_picks_equal_the_reference_filters(
    peakedness: float, top_k: int, top_p: float, temperature: float, jit_compile: bool
) -> None:
    log_probs = rows(peakedness)
    draws = np.random.default_rng(1).random((len(log_probs), 4), dtype=np.float32)
    options = DecodeOptions(strategy="sample", top_k=top_k, top_p=top_p,
                            temperature=temperature)
    params = DecodeParams.from_options(options, draws)
    pick = tf.function(lambda lp, p: RandomSampler().pick(lp, tf.constant(STEP), p),
                       jit_compile=jit_compile)
    picked = pick(tf.constant(log_probs), params).numpy().tolist()
    assert picked == reference_pick(log_probs, draws[:, STEP], top_k, top_p, temperature)


def test_the_cases_reach_every_tier() -> None:
    # The cases above test a tier only if some case's widest nucleus ends in it.
    def widest(peakedness: float, temperature: float) -> int:
        logits = rows(peakedness).astype(np.float64) / temperature
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        ranked = -np.sort(-probs / probs.sum(axis=1, keepdims=True), axis=1)
        return int(((np.cumsum(ranked, axis=1) < 0.9).sum(axis=1) + 1).max())

    first, second = RandomSampler.TIERS
    assert widest(4.0, 1.0) <= first < widest(1.5, 0.8) <= second < widest(0.5, 1.0)
