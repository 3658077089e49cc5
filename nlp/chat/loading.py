"""Loading a trained model bundle for chatting; the one place `nlp.chat` touches TensorFlow.

The import of `nlp.generator` (and with it TensorFlow) happens inside `load_model`, so the bot
adapter and the tests can import `nlp.chat` without paying for, or even having, TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nlp.bundle import resolve
from nlp.config import DataConfig, ExperimentConfig
from nlp.decode_settings import DecodeSettings
from nlp.decoding.options import XLA_BY_DEFAULT
from nlp.text_generator import TextGenerator


@dataclass(frozen=True)
class LoadedModel:
    """A generator plus what the responder must know about the model's input format."""

    generator: TextGenerator
    data: DataConfig
    decoding: DecodeSettings | None = None  # the bundle's recommended decode options


ModelLoader = Callable[[], LoadedModel]


def load_model(
    directory: Path, companions: Sequence[Path] = (), *, jit_compile: bool = XLA_BY_DEFAULT
) -> LoadedModel:
    """The bundle in `directory` (or in a training run's `model/`), with its data settings;
    `companions` are LM / reverse bundles for MMI re-ranking (`--rerank`); `jit_compile`:
    decode with XLA (`--xla`)."""
    directory = resolve(directory)
    data = ExperimentConfig.load(directory / "config.json").data  # fails fast, before TF loads
    from nlp.generator import Generator

    generator = Generator.from_bundle(directory, jit_compile=jit_compile, companions=companions)
    return LoadedModel(generator, data, generator.bundle.decoding)
