"""Loading a trained model bundle: the one place a TensorFlow-free caller gets a generator.

`load_model` (the chat and the bot: the generator with the bundle's data settings) and
`load_generator` (`s2s headlines` and its Beam runner) import `nlp.generation.generator`,
and with it TensorFlow, only when called, so the bot adapter and the tests can import this
module without paying for, or even having, TensorFlow.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nlp.decoding.options import XLA_BY_DEFAULT
from nlp.generation.bundle import resolve
from nlp.generation.decode_settings import DecodeSettings
from nlp.generation.text_generator import TextGenerator
from nlp.util.config import DataConfig, ExperimentConfig


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
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(directory, jit_compile=jit_compile, companions=companions)
    return LoadedModel(generator, data, generator.bundle.decoding)


def load_generator(
    model: str, *, jit_compile: bool = XLA_BY_DEFAULT
) -> tuple[TextGenerator, DecodeSettings | None]:
    """The bundle's `Generator` (TensorFlow loads here) and its recommended decoding settings."""
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(Path(model), jit_compile=jit_compile)
    return generator, generator.bundle.decoding
