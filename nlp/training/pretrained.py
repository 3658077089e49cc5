"""`model.pretrained=DIR`: a new run starts from the weights of `s2s pretrain`'s output.

DIR is what `s2s pretrain --out` wrote (its `model/` bundle is read) or any model bundle.
The run takes the pretrained model's tokenizer and vocabulary, so every embedding row and
every output column means the same token in both models; its `tokenizer.*` and `vocab.*`
settings must therefore be the pretrained model's. Every weight found at the same object
path (`nlp.training.checkpoint.variable_paths`) is copied unchanged: the embedding, the
encoder's directions, the bridge, the decoder's cells, the attention and the output
projection. Weights the pretrained model lacks (a copy gate, a layer more) keep their random
start and are listed in the bundle's metadata; a weight of another shape (another width) is
an error naming the weights file. The encoder's language-model projections
(`nlp.model.language_models`, kept in the bundle as `HEADS_FILE`) start the ones
`train.lm_loss_weight` trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlp.generation.bundle import CONFIG_FILE, WEIGHTS_FILE, Bundle, load_bundle
from nlp.generation.codec import TextCodec
from nlp.model import Seq2Seq
from nlp.model.language_models import EncoderLMHeads
from nlp.training.checkpoint import variable_paths
from nlp.util.config import ExperimentConfig

HEADS_FILE = "encoder_lm.weights.h5"  # the encoder's language-model projections, in the bundle
# Settings that fix the shapes of the weights: said by name when they differ.
WIDTHS = ("embedding_dim", "units", "cell")


@dataclass
class Pretrained:
    """A pretrained bundle, loaded and verified."""

    bundle: Bundle

    @property
    def config_file(self) -> Path:
        return self.bundle.path / CONFIG_FILE

    @property
    def weights_file(self) -> Path:
        return self.bundle.path / WEIGHTS_FILE

    @property
    def heads_file(self) -> Path | None:
        return self.bundle.part(HEADS_FILE)


def load_pretrained(path: str | Path) -> Pretrained:
    """The bundle at `path` (a `s2s pretrain` output or a bundle); errors name the file."""
    return Pretrained(load_bundle(Path(path)))


def check_compatible(config: ExperimentConfig, pretrained: Pretrained) -> None:
    """A ValueError naming the pretrained config file and each setting that differs, when
    the run would read text otherwise (tokenizer, vocabulary) or have other widths."""
    there = pretrained.bundle.config
    differences = [
        f"{section}.{name} {getattr(getattr(there, section), name)!r} there, "
        f"{getattr(getattr(config, section), name)!r} here"
        for section in ("tokenizer", "vocab")
        for name in vars(getattr(config, section))
        if getattr(getattr(there, section), name) != getattr(getattr(config, section), name)
    ]
    differences += [
        f"model.{name} {getattr(there.model, name)!r} there, {getattr(config.model, name)!r} here"
        for name in WIDTHS
        if getattr(there.model, name) != getattr(config.model, name)
    ]
    if differences:
        raise ValueError(
            f"{pretrained.config_file}: the pretrained model does not fit this run: "
            + "; ".join(differences)
            + ". A pretrained model gives its tokenizer, vocabulary and widths: set them as "
            "`s2s pretrain` did (the same --task and --set)"
        )
    if config.model.pretrained_embeddings:
        raise ValueError(
            "model.pretrained and model.pretrained_embeddings both set: the pretrained model's "
            "embedding would be overwritten; give the vectors to `s2s pretrain` instead"
        )


def pretrained_codec(config: ExperimentConfig, pretrained: Pretrained) -> TextCodec:
    """The run's codec: the pretrained tokenizer, vocabulary and truecaser, this config."""
    codec = pretrained.bundle.codec
    return TextCodec(config, codec.tokenizer, codec.vocab, codec.truecaser)


def initialise(model: Seq2Seq, pretrained: Pretrained) -> dict[str, Any]:
    """Copy every pretrained weight found at the same path into `model` (the dropout seed
    states are the run's own); returns what the bundle's metadata records (`pretrained`)."""
    mine = _trainable(variable_paths(model))
    theirs = _trainable(variable_paths(pretrained.bundle.model))
    shared = sorted(set(mine) & set(theirs))
    wrong = [
        f"{path} {tuple(theirs[path].shape)} there, {tuple(mine[path].shape)} here"
        for path in shared
        if tuple(theirs[path].shape) != tuple(mine[path].shape)
    ]
    if wrong:
        shown = "; ".join(wrong[:4]) + (f" (and {len(wrong) - 4} more)" * (len(wrong) > 4))
        raise ValueError(
            f"{pretrained.weights_file}: weights of another shape (another vocabulary or "
            f"width): {shown}"
        )
    for path in shared:
        mine[path].assign(np.asarray(theirs[path].numpy()))
    return {
        "path": str(pretrained.bundle.path),
        "weights_copied": len(shared),
        "weights_kept_random": sorted(set(mine) - set(theirs)),
        **(
            {"pretraining": pretrained.bundle.metadata["pretraining"]}
            if "pretraining" in pretrained.bundle.metadata
            else {}
        ),
    }


def _trainable(paths: dict[str, Any]) -> dict[str, Any]:
    """The weights, without the dropout layers' seed states (not saved with the weights)."""
    return {path: variable for path, variable in paths.items() if variable.trainable}


def load_heads(heads: EncoderLMHeads, pretrained: Pretrained) -> bool:
    """Start `heads` from the pretrained bundle's (`HEADS_FILE`); False when it has none."""
    file = pretrained.heads_file
    if file is None:
        return False
    try:
        heads.load_weights(file)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{file}: cannot load the encoder's language-model heads: {exc}") from exc
    return True
