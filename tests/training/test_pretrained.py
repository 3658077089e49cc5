"""`model.pretrained=DIR`: every pretrained weight lands, bit for bit, in the variable at the
same path of the new model; another vocabulary or width is an error naming the file."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from nlp.corpus.records import Pair
from nlp.generation.bundle import BundleError, save_bundle, store_part
from nlp.generation.codec import TextCodec
from nlp.model import Seq2Seq
from nlp.model.language_models import EncoderLMHeads
from nlp.training.checkpoint import variable_paths
from nlp.training.pretrained import (
    HEADS_FILE,
    check_compatible,
    initialise,
    load_heads,
    load_pretrained,
    pretrained_codec,
)
from nlp.util.config import ExperimentConfig

TEXTS = ["the cat sat on the mat", "a dog ran in the park", "the bird sang a song"]


def config(*sets: str) -> ExperimentConfig:
    return ExperimentConfig().with_overrides(
        ["model.units=8", "model.embedding_dim=8", "model.dropout=0.0", *sets]
    )


def pretrained_bundle(directory: Path, *sets: str) -> tuple[Seq2Seq, EncoderLMHeads]:
    """A bundle as `s2s pretrain` writes one: a model of random weights and its heads."""
    keras.utils.set_random_seed(11)
    settings = config(*sets)
    codec = TextCodec.fit(settings, [Pair(t, t) for t in TEXTS])
    settings = settings.with_overrides([f"model.vocab_size={len(codec.vocab)}"])
    model = Seq2Seq(settings.model)
    heads = EncoderLMHeads(settings.model)
    for variable in [*model.trainable_variables, *heads.trainable_variables]:  # not their start
        variable.assign(np.random.default_rng(5).normal(size=variable.shape).astype("float32"))
    save_bundle(directory, settings, codec, model, {"pretraining": {"objectives": ["lm"]}})
    store_part(directory, HEADS_FILE, heads.save_weights)
    return model, heads


def test_every_weight_and_the_heads_land_bit_identical(tmp_path: Path) -> None:
    source, source_heads = pretrained_bundle(tmp_path / "pre")
    pretrained = load_pretrained(tmp_path / "pre")
    settings = config("model.copy=true")  # a copy gate the pretrained model does not have
    check_compatible(settings, pretrained)
    codec = pretrained_codec(settings, pretrained)
    assert codec.vocab.tokens == pretrained.bundle.codec.vocab.tokens and codec.config is settings
    settings = settings.with_overrides([f"model.vocab_size={len(codec.vocab)}"])
    keras.utils.set_random_seed(99)
    model = Seq2Seq(settings.model)
    record = initialise(model, pretrained)
    mine, theirs = variable_paths(model), variable_paths(source)
    mine = {path: v for path, v in mine.items() if v.trainable}  # not dropout's seed states
    theirs = {path: v for path, v in theirs.items() if v.trainable}
    assert len(theirs) == len(source.trainable_variables)
    for path, variable in theirs.items():
        np.testing.assert_array_equal(mine[path].numpy(), variable.numpy(), err_msg=path)
    for part in ("source_embedding", "encoder_rnns/0", "decoder_cells/0", "output"):
        assert any(path.startswith(part) for path in theirs), part
    assert record["weights_copied"] == len(theirs)
    assert record["weights_kept_random"] == sorted(set(mine) - set(theirs))
    assert record["weights_kept_random"] and all(
        path.startswith("copy_gate") for path in record["weights_kept_random"]
    )
    assert record["pretraining"] == {"objectives": ["lm"]}
    heads = EncoderLMHeads(settings.model)
    assert load_heads(heads, pretrained)
    for a, b in zip(heads.weights, source_heads.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize(
    "setting, named",
    [
        ("model.units=16", "model.units 8 there, 16 here"),
        ("model.embedding_dim=4", "model.embedding_dim 8 there, 4 here"),
        ("vocab.max_size=50", "vocab.max_size 8000 there, 50 here"),
        ("tokenizer.kind=chars", "tokenizer.kind 'words' there, 'chars' here"),
    ],
)
def test_another_width_or_vocabulary_is_an_error_naming_the_config_file(
    tmp_path: Path, setting: str, named: str
) -> None:
    pretrained_bundle(tmp_path / "pre")
    pretrained = load_pretrained(tmp_path / "pre")
    with pytest.raises(ValueError) as error:
        check_compatible(config(setting), pretrained)
    assert str(tmp_path / "pre" / "config.json") in str(error.value)
    assert named in str(error.value)


def test_weights_of_another_shape_are_an_error_naming_the_weights_file(tmp_path: Path) -> None:
    """What the settings compared do not catch: a model of another vocabulary size, or a
    decoder whose cell reads inputs of another width (no input feeding)."""
    pretrained_bundle(tmp_path / "pre")
    pretrained = load_pretrained(tmp_path / "pre")
    size = pretrained.bundle.config.model.vocab_size
    for sets in ([f"model.vocab_size={size + 3}"], [f"model.vocab_size={size}",
                                                     "model.input_feeding=false"]):
        model = Seq2Seq(config(*sets).model)
        with pytest.raises(ValueError) as error:
            initialise(model, pretrained)
        message = str(error.value)
        assert str(tmp_path / "pre" / "model.weights.h5") in message
        assert "another vocabulary or width" in message


def test_a_vocabulary_changed_by_hand_is_caught_with_its_file(tmp_path: Path) -> None:
    pretrained_bundle(tmp_path / "pre")
    vocab = tmp_path / "pre" / "vocab.txt"
    vocab.write_text(vocab.read_text("utf-8") + "zebra\n", "utf-8")
    with pytest.raises(BundleError, match=r"vocab\.txt"):
        load_pretrained(tmp_path / "pre")


def test_pretrained_and_word_vectors_together_are_refused(tmp_path: Path) -> None:
    pretrained_bundle(tmp_path / "pre")
    with pytest.raises(ValueError, match=r"model\.pretrained_embeddings"):
        check_compatible(
            config("model.pretrained_embeddings=glove-6b-50d"), load_pretrained(tmp_path / "pre")
        )
