"""The dual encoder without training: chance-level ranking at random initialisation, what
padding and length caps do to a vector, saving and loading, and the scoring's batching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nlp.ranking import DUAL_ENCODER_DIR, DualEncoder, DualEncoderConfig
from nlp.ranking.dual_encoder import CONFIG_FILE, WEIGHTS_FILE
from nlp.tokenizers.specials import PAD_ID, UNK_ID
from nlp.util.config import DUAL_ENCODER_KINDS, ConfigError, ExperimentConfig

VOCAB = 200


def _config(**overrides: Any) -> DualEncoderConfig:
    settings: dict[str, Any] = {"vocab_size": VOCAB, "embedding_dim": 16, "hidden": 24}
    return DualEncoderConfig(**{**settings, **overrides})


def _random_ids(rng: np.random.Generator, count: int, low: int, high: int) -> list[list[int]]:
    return [
        rng.integers(UNK_ID + 1, VOCAB, size=int(rng.integers(low, high + 1))).tolist()
        for _ in range(count)
    ]


def _hits_at_1(scores: list[np.ndarray]) -> float:
    """Share of posts whose first candidate (the true reply) scores highest."""
    return float(np.mean([np.argmax(row) == 0 for row in scores]))


def test_dual_encoder_dir_is_the_bundle_sub_directory_name() -> None:
    assert DUAL_ENCODER_DIR == "dual_encoder"


def test_untrained_encoder_ranks_the_true_reply_first_about_once_in_k() -> None:
    rng = np.random.default_rng(5)
    posts = _random_ids(rng, 400, 3, 12)
    replies = _random_ids(rng, 400, 2, 8)
    k = 10
    candidates = []
    for index in range(len(posts)):
        others = rng.choice(np.delete(np.arange(len(replies)), index), k - 1, replace=False)
        candidates.append([replies[index]] + [replies[j] for j in others])
    scores = DualEncoder(_config()).scores(posts, candidates)
    assert all(row.shape == (k,) for row in scores)
    assert 0.04 <= _hits_at_1(scores) <= 0.2


@pytest.mark.parametrize("encoder_kind", DUAL_ENCODER_KINDS)
def test_vectors_are_unit_length_and_padding_changes_nothing(encoder_kind: str) -> None:
    encoder = DualEncoder(_config(pooling="mean_max", encoder=encoder_kind, recurrent_units=8))
    post = [5, 9, 17, 5, 40]
    padded = [PAD_ID, 5, 9, PAD_ID, 17, 5, 40] + [PAD_ID] * 100  # longer than the cap, too
    long_post = list(range(4, 60))  # its batch is padded wider than the short posts need
    vectors = encoder.post_vectors([post, padded, long_post])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    assert np.allclose(encoder.post_vectors([post])[0], vectors[0], atol=1e-6)
    reply = [7, 8, 9]
    candidates = [[reply, reply + [PAD_ID] * 5, [PAD_ID, *reply]]]
    (scores,) = encoder.scores([padded], candidates)
    np.testing.assert_allclose(scores, scores[0], atol=1e-6)
    (plain,) = encoder.scores([post], [[reply]])
    np.testing.assert_allclose(plain, scores[:1], atol=1e-6)


def test_a_long_post_keeps_its_last_tokens_and_a_long_reply_its_first() -> None:
    encoder = DualEncoder(_config(max_post_tokens=8, max_reply_tokens=4))
    long = list(range(10, 30))
    np.testing.assert_allclose(
        encoder.post_vectors([long])[0], encoder.post_vectors([long[-8:]])[0], atol=1e-6)
    assert not np.allclose(encoder.post_vectors([long])[0], encoder.post_vectors([long[:8]])[0])
    np.testing.assert_allclose(
        encoder.reply_vectors([long])[0], encoder.reply_vectors([long[:4]])[0], atol=1e-6)


def test_ids_outside_the_vocabulary_read_as_unk() -> None:
    encoder = DualEncoder(_config())
    vectors = encoder.post_vectors([[5, VOCAB + 3], [5, UNK_ID]])
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    with pytest.raises(ValueError, match="negative"):
        encoder.post_vectors([[5, -1]])


def test_scores_encode_each_distinct_candidate_once_in_one_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoder = DualEncoder(_config())
    calls: list[list[list[int]]] = []
    original = encoder.reply_vectors

    def counting(replies: list[list[int]]) -> np.ndarray:
        calls.append([list(reply) for reply in replies])
        return original(replies)

    monkeypatch.setattr(encoder, "reply_vectors", counting)
    posts = [[5, 6], [7, 8, 9], [10]]
    candidates = [[[20, 21], [22]], [[22], [20, 21], [23, 24]], []]
    scores = encoder.scores(posts, candidates)
    assert len(calls) == 1 and sorted(calls[0]) == [[20, 21], [22], [23, 24]]
    assert [row.shape for row in scores] == [(2,), (3,), (0,)]
    post_vectors = encoder.post_vectors(posts)
    reply_vectors = original([[20, 21], [22], [23, 24]])
    np.testing.assert_allclose(scores[1], reply_vectors[[1, 0, 2]] @ post_vectors[1], atol=1e-6)
    with pytest.raises(ValueError, match="one candidate list per post"):
        encoder.scores(posts, candidates[:2])


@pytest.mark.parametrize(
    ("shared", "encoder_kind"), [(False, "bag"), (True, "bag"), (False, "recurrent")])
def test_save_and_load_give_the_same_scores(
    tmp_path: Path, shared: bool, encoder_kind: str,
) -> None:
    settings: dict[str, Any] = dict(
        shared_embedding=shared, dense_layers=2, encoder=encoder_kind, recurrent_units=8)
    encoder = DualEncoder(_config(**settings))
    # Weights unlike any initialisation, so a load that silently kept its fresh weights
    # would fail.
    rng = np.random.default_rng(3)
    encoder.network.set_weights(
        [rng.normal(size=w.shape).astype(np.float32) for w in encoder.network.get_weights()])
    posts = [[4, 5, 6], [7, 8], [9, 10, 11, 12]]
    candidates = [[[13, 14], [15]], [[15], [16, 17, 18]], [[13, 14]]]
    directory = tmp_path / DUAL_ENCODER_DIR
    encoder.save(directory)
    assert sorted(p.name for p in directory.iterdir()) == sorted([CONFIG_FILE, WEIGHTS_FILE])
    loaded = DualEncoder.load(directory)
    assert loaded.config == encoder.config
    before = encoder.scores(posts, candidates)
    after = loaded.scores(posts, candidates)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)
    fresh = DualEncoder(_config(**settings))
    assert not np.allclose(fresh.post_vectors(posts), loaded.post_vectors(posts))


def test_a_shared_embedding_is_one_table() -> None:
    shared = DualEncoder(_config(shared_embedding=True)).network
    separate = DualEncoder(_config(shared_embedding=False)).network
    assert shared.post_embedding is shared.reply_embedding
    assert len(separate.trainable_variables) == len(shared.trainable_variables) + 1


def test_a_missing_or_corrupt_file_is_a_value_error_naming_it(tmp_path: Path) -> None:
    directory = tmp_path / DUAL_ENCODER_DIR
    DualEncoder(_config()).save(directory)
    weights = directory / WEIGHTS_FILE
    weights.write_bytes(b"not an HDF5 file at all")
    with pytest.raises(ValueError, match=WEIGHTS_FILE.replace(".", r"\.")):
        DualEncoder.load(directory)
    weights.unlink()
    with pytest.raises(ValueError, match=r"dual_encoder\.weights\.h5.*missing"):
        DualEncoder.load(directory)
    (directory / CONFIG_FILE).unlink()
    with pytest.raises(ValueError, match=r"dual_encoder\.json"):
        DualEncoder.load(directory)
    with pytest.raises(ValueError, match=r"dual_encoder\.json"):
        DualEncoder.load(tmp_path / "nowhere")


def test_weights_of_another_shape_are_a_value_error_naming_the_file(tmp_path: Path) -> None:
    directory = tmp_path / DUAL_ENCODER_DIR
    DualEncoder(_config()).save(directory)
    other = tmp_path / "other"
    DualEncoder(_config(hidden=8)).save(other)
    (directory / WEIGHTS_FILE).write_bytes((other / WEIGHTS_FILE).read_bytes())
    with pytest.raises(ValueError, match=r"dual_encoder\.weights\.h5"):
        DualEncoder.load(directory)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "invalid JSON"),
        ("[]", "expected an object"),
        ('{"vocab_size": 100, "colour": 1}', "unknown keys for DualEncoderConfig: \\['colour'\\]"),
        ('{"vocab_size": 100, "hidden": "wide"}', "hidden: expected int"),
        ('{"vocab_size": 100, "shared_embedding": 1}', "shared_embedding: expected bool"),
        ('{"vocab_size": 100, "pooling": "sum"}', "pooling must be one of"),
        ('{"vocab_size": 100, "encoder": "lstm"}', "encoder must be one of bag, recurrent"),
        ('{"vocab_size": 100, "hard_negatives": -1}', "hard_negatives must not be negative"),
        ('{"vocab_size": 100, "recurrent_units": 0}', "recurrent_units must be positive"),
        ('{"vocab_size": 2}', "vocab_size must be larger"),
    ],
)
def test_a_bad_config_file_is_a_value_error_naming_it(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        DualEncoderConfig.from_json(text, "somewhere/dual_encoder.json")
    assert "somewhere/dual_encoder.json" in str(caught.value)


def test_config_round_trips_through_json_and_takes_defaults_for_missing_keys() -> None:
    config = _config(scale=12.5, pooling="mean", shared_embedding=True)
    assert DualEncoderConfig.from_json(config.to_json(), "x") == config
    partial = DualEncoderConfig.from_json('{"vocab_size": 100, "scale": 10}', "x")
    assert partial.scale == 10.0 and isinstance(partial.scale, float)
    assert partial.hidden == DualEncoderConfig().hidden


def test_a_recurrent_post_vector_reads_the_order_and_a_bag_does_not() -> None:
    words, swapped = [5, 9, 17], [17, 9, 5]
    bag = DualEncoder(_config(encoder="bag")).post_vectors([words, swapped])
    np.testing.assert_allclose(bag[0], bag[1], atol=1e-6)  # the same sum in another order
    recurrent = DualEncoder(_config(encoder="recurrent", recurrent_units=8))
    ordered = recurrent.post_vectors([words, swapped])
    assert not np.allclose(ordered[0], ordered[1], atol=1e-3)
    assert len(recurrent.network.trainable_variables) > len(
        DualEncoder(_config(encoder="bag")).network.trainable_variables)


def test_the_kind_setting_is_checked_as_the_config_is_read() -> None:
    """A misspelt kind fails at `--set`, not after the chat model's training."""
    config = ExperimentConfig().with_overrides(["retrieval.dual_encoder_kind=recurrent"])
    assert config.retrieval.dual_encoder_kind == "recurrent"
    assert ExperimentConfig().retrieval.dual_encoder_kind in DUAL_ENCODER_KINDS
    with pytest.raises(ConfigError, match="dual_encoder_kind must be one of bag, recurrent"):
        ExperimentConfig().with_overrides(["retrieval.dual_encoder_kind=lstm"])


@pytest.mark.parametrize("shared", [False, True])
def test_given_tables_are_where_the_embeddings_start(shared: bool) -> None:
    """The chat model's tables start the ranker: each tower looks its words up in its own
    (the post's in the first), rows past the vocabulary (copy ids) are not kept."""
    from nlp.ranking.dual_encoder import DualEncoderNetwork

    rng = np.random.default_rng(3)
    posts, replies = (rng.normal(size=(VOCAB + 5, 16)).astype(np.float32) for _ in range(2))
    network = DualEncoderNetwork(_config(shared_embedding=shared), (posts, replies))
    np.testing.assert_array_equal(network.post_embedding.embeddings.numpy(), posts[:VOCAB])
    expected = posts if shared else replies
    np.testing.assert_array_equal(network.reply_embedding.embeddings.numpy(), expected[:VOCAB])


def test_tables_of_the_wrong_shape_are_refused() -> None:
    from nlp.ranking.dual_encoder import DualEncoderNetwork

    narrow = np.zeros((VOCAB, 8), dtype=np.float32)
    with pytest.raises(ValueError,
                       match=r"initial embeddings must be \[200\+, 16\], got \[200, 8\]"):
        DualEncoderNetwork(_config(), (narrow, narrow))
    with pytest.raises(ValueError, match="got \\[10, 16\\]"):
        DualEncoderNetwork(_config(), (np.zeros((10, 16), np.float32),) * 2)


def test_the_embeddings_setting_is_checked_as_the_config_is_read() -> None:
    assert ExperimentConfig().retrieval.dual_encoder_embeddings == "model"
    with pytest.raises(ConfigError, match="dual_encoder_embeddings must be one of model, random"):
        ExperimentConfig().with_overrides(["retrieval.dual_encoder_embeddings=glove"])
    with pytest.raises(ValueError, match="embeddings_from must be one of random, chat model"):
        _config(embeddings_from="glove").check()
