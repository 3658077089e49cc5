"""`model.architecture=transformer` (nlp/model/transformer.py inside the one Seq2Seq): what
the recurrent model's tests do not cover (tests/model/test_seq2seq.py runs its teacher forcing
against decoding, and padding): its settings, its position buffer, and a chat model trained,
saved, loaded and decoded with beam search through the shared decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from nlp.model import Seq2Seq
from nlp.model.transformer import positions
from nlp.util.config import ModelConfig
from tests.conftest import REPO, TRANSFORMER, tiny_overrides


def make(**kw: object) -> Seq2Seq:
    tf.random.set_seed(0)
    settings = {"vocab_size": 30, "embedding_dim": 8, "units": 8, "dropout": 0.0,
                **TRANSFORMER, **kw}
    return Seq2Seq(ModelConfig(**settings))  # type: ignore[arg-type]


def test_the_recurrent_decoder_s_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="transformer has no copy, coverage, input_feeding"):
        make(copy=True, coverage=True, input_feeding=True)
    with pytest.raises(ValueError, match="transformer has no pretrained"):
        make(pretrained="runs/pretrained")  # a recurrent model's weights
    with pytest.raises(ValueError, match=r"units \(8\) must be a multiple of heads \(3\)"):
        make(heads=3)
    with pytest.raises(ValueError, match="architecture must be one of recurrent, transformer"):
        make(architecture="mamba")


def test_the_encoder_s_language_models_are_refused_by_name() -> None:
    from nlp.training.objective import Objective
    from nlp.util.config import TrainConfig

    with pytest.raises(ValueError, match=r"lm_loss_weight needs model\.architecture=recurrent"):
        Objective(make(), TrainConfig(lm_loss_weight=0.5))


def test_positions_are_sinusoids_of_one_table_whether_read_whole_or_one_at_a_time() -> None:
    table = positions(tf.constant(0), 5, 6).numpy()
    assert table.shape == (5, 6)
    np.testing.assert_allclose(table[:, 0], np.sin(np.arange(5)), atol=1e-6)  # the fastest
    np.testing.assert_allclose(table[:, 3], np.cos(np.arange(5)), atol=1e-6)
    one = positions(tf.constant([3, 0]), 1, 6).numpy()
    np.testing.assert_allclose(one, table[[3, 0]], atol=1e-6)


def test_embeddings_narrower_than_the_model_are_projected_to_its_width() -> None:
    model = make(embedding_dim=6)
    assert model.embed_in is not None
    source, target_in = np.array([[5, 6, 7]]), np.array([[1, 5, 6]])
    forced = model((source, target_in)).numpy()
    state, context = model.encode(source)
    for t in range(3):
        log_probs, state, _ = model.decode_step(target_in[:, t], state, context)
        np.testing.assert_allclose(forced[:, t], log_probs.numpy(), atol=1e-5)


def test_a_reply_longer_than_its_positions_keeps_decoding_on_the_last_slot() -> None:
    """decoder_positions=2: the third token overwrites the second slot; the state keeps its
    shape (the decoding loop requires it) and the distribution stays one."""
    model = make(decoder_positions=2)
    state, context = model.encode(np.array([[5, 6, 7]]))
    shapes = {name: value.shape for name, value in state.items()}
    for token in (1, 5, 6, 7):
        log_probs, state, weights = model.decode_step(tf.constant([token]), state, context)
        assert {name: value.shape for name, value in state.items()} == shapes
        np.testing.assert_allclose(np.exp(log_probs.numpy()).sum(), 1.0, atol=1e-4)
        np.testing.assert_allclose(weights.numpy().sum(), 1.0, atol=1e-5)  # over the source
    assert state["slot"].numpy().tolist() == [[0.0, 1.0]]


@pytest.mark.slow
def test_a_transformer_chat_model_trains_saves_loads_and_answers(tmp_path: Path) -> None:
    from nlp.decoding import DecodeOptions
    from nlp.generation.generator import Generator
    from nlp.training.corpus_io import CorpusSpec
    from nlp.training.run import RunOptions, train
    from nlp.util.config import ExperimentConfig, task_preset

    settings = [*task_preset("chat"), *tiny_overrides(**{
        "model.architecture": "transformer", "model.heads": 2, "model.decoder_layers": 2,
        "train.sampled_softmax": 64, "retrieval.index": "false",
        "retrieval.dual_encoder_minutes": 0})]
    config = ExperimentConfig().with_overrides(settings)
    state = train(config, CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",)),
                  RunOptions(tmp_path, verbose=0))
    assert np.isfinite(state.best_valid_loss)
    generator = Generator.from_bundle(tmp_path / "model")
    assert generator.bundle.config.model.architecture == "transformer"
    for options in (DecodeOptions(strategy="beam", beam_size=3, n_best=2),
                    DecodeOptions(strategy="greedy"),
                    DecodeOptions(strategy="sample", seed=1)):
        (replies,) = generator.generate(["how are you today?"], options)
        assert replies and all(r.provenance == "generated" for r in replies)
        assert replies[0].attention.shape[0] == len(replies[0].tokens)
