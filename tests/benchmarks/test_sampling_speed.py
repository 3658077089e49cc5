"""benchmarks/sampling_speed.py on the tiny chat bundle: both picks are timed, and every pick
the fused (XLA) sampler makes in the benchmark's decodes is checked, beside the unfused pick
(what the export runs) on the same log-probabilities and draw, against the filters computed
in float64 (`tests.decoding.test_samplers.reference_pick`).

Why not count identical replies: the two picks round differently, so where a draw falls
within that rounding of the boundary between two tokens they pick different ones and the
replies part from there (1 reply in 6 on an AMD EPYC with AVX512_BF16); which draws do so
depends on the machine. A pick is right when the reference picks it at the draw, or at a
draw or a nucleus mass within `TOLERANCE` of the true ones: a wrong cutoff or a wrong
inversion moves picks much further than that. The count itself is checked where the
answer is known: two variants that pick alike send the same replies.

The benchmark fails (exit 1) when a variant's replies change from pass to pass: with the
seed fixed they cannot, unless the draws are not the seed's.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import sampling_speed
from nlp.decoding import DecodeOptions
from nlp.decoding.params import DecodeParams
from nlp.decoding.samplers import RandomSampler
from nlp.generation.text_generator import Generation
from tests.decoding.test_samplers import reference_pick

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5  # float32 sums of a row differ by a few 1e-7 between the two picks


@dataclass(frozen=True)
class Picks:
    """One call of the fused pick: its inputs, its tokens and the unfused pick's."""

    log_probs: np.ndarray  # [rows, vocabulary]
    draws: np.ndarray  # [rows]
    fused: np.ndarray  # [rows]
    unfused: np.ndarray  # [rows]
    temperature: float
    top_k: int
    top_p: float

    def right(self, picked: np.ndarray) -> np.ndarray:
        """bool [rows]: the reference picks `picked` at a draw and a nucleus mass within
        TOLERANCE of the true ones."""
        masses = [self.top_p] if self.top_p >= 1.0 else [
            self.top_p - TOLERANCE, self.top_p, min(1.0, self.top_p + TOLERANCE)]
        allowed = [
            reference_pick(self.log_probs, np.clip(self.draws + shift, 0.0, 1.0), self.top_k,
                           mass, self.temperature)
            for shift in (-TOLERANCE, 0.0, TOLERANCE) for mass in masses
        ]
        return np.array([token in {picks[row] for picks in allowed}
                         for row, token in enumerate(picked)])


def record_picks(monkeypatch: pytest.MonkeyPatch) -> list[Picks]:
    """Every call of the fused pick from now on, with the unfused pick of the same inputs
    (computed in the same graph, beside it)."""
    records: list[Picks] = []
    pick = RandomSampler.pick

    def recording_pick(
        self: RandomSampler, log_probs: tf.Tensor, step: tf.Tensor, params: DecodeParams
    ) -> tf.Tensor:
        picked = pick(self, log_probs, step, params)
        if not self.xla_clusters:
            return picked
        unfused = pick(RandomSampler(xla_clusters=False), log_probs, step, params)

        def record(*tensors: tf.Tensor) -> int:
            records.append(Picks(*(tensor.numpy() for tensor in tensors)))
            return 0

        recorded = tf.py_function(record, [
            log_probs, tf.gather(params.draws, step, axis=1), picked, unfused,
            params.temperature, params.top_k, params.top_p], tf.int32)
        with tf.control_dependencies([recorded]):
            return tf.identity(picked)

    monkeypatch.setattr(RandomSampler, "pick", recording_pick)
    return records


@pytest.fixture(scope="module")
def sampling_bundle(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny chat bundle recommending nucleus samples (the benchmark measures a bundle
    whose decoding samples, whatever an untrained bundle's default is)."""
    import shutil

    from nlp.generation.bundle import store_decoding
    from nlp.generation.decode_settings import DecodeSettings

    bundle = tmp_path_factory.mktemp("sampling") / "model"
    shutil.copytree(tiny_bundle, bundle)
    options = DecodeOptions(strategy="sample", temperature=0.8, top_p=0.9, n_best=2)
    store_decoding(bundle, DecodeSettings(options, "tuned by hand for the benchmark's test"))
    return bundle


def run_benchmark(bundle: Path, output: Path, count: int) -> int:
    return sampling_speed.main([
        "--model", str(bundle), "--posts", str(REPO / "corpora" / "dialogue-en.jsonl"),
        "--count", str(count), "--repeats", "2", "--output", str(output),
    ])


@pytest.mark.slow
def test_the_fused_and_the_unfused_pick_are_timed_and_pick_alike(
    sampling_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = record_picks(monkeypatch)
    output = tmp_path / "sampling_speed.json"
    assert run_benchmark(sampling_bundle, output, 6) == 0
    result = json.loads(output.read_text("utf-8"))
    assert result["replies"] == 6 * result["options"]["n_best"]  # every sample of every post
    assert result["unrepeatable"] == []  # the seed fixed each variant's replies
    assert set(result["ms_per_post"]) == set(sampling_speed.VARIANTS)
    assert all(figures["batch_1"] > 0 for figures in result["ms_per_post"].values())

    assert sum(len(record.fused) for record in records) >= 100  # every step of every decode
    for record in records:
        assert record.right(record.fused).all() and record.right(record.unfused).all()


@pytest.mark.slow
def test_variants_that_pick_alike_count_every_reply_the_same(
    sampling_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sampling_speed, "VARIANTS", {"unfused": False, "unfused again": False})
    monkeypatch.setattr(sampling_speed, "matmul_peak", lambda: 1.0)
    output = tmp_path / "sampling_speed.json"
    assert run_benchmark(sampling_bundle, output, 3) == 0
    result = json.loads(output.read_text("utf-8"))
    assert result["same_replies"] == result["replies"] == 3 * result["options"]["n_best"]


@pytest.mark.slow
def test_replies_that_change_from_pass_to_pass_fail_the_benchmark(
    sampling_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Unseeded draws (the options' seed dropped) give every pass other replies."""
    from nlp.generation.generator import Generator

    generate = Generator.generate

    def unseeded(self: Generator, texts: Sequence[str], options: DecodeOptions,
                 *args: Any) -> list[list[Generation]]:
        return generate(self, texts, dataclasses.replace(options, seed=None), *args)

    monkeypatch.setattr(Generator, "generate", unseeded)
    monkeypatch.setattr(sampling_speed, "matmul_peak", lambda: 1.0)
    output = tmp_path / "sampling_speed.json"
    assert run_benchmark(sampling_bundle, output, 3) == 1
    assert json.loads(output.read_text("utf-8"))["unrepeatable"] == list(sampling_speed.VARIANTS)
    assert "changed from one pass to the next" in capsys.readouterr().err
