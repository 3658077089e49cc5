"""Loading a trained model bundle: the one place a TensorFlow-free caller gets a generator.

`load_model` (the chat and the bot: the generator with the bundle's data settings) and
`load_generator` (`s2s headlines` and its Beam runner) import `nlp.generation.generator`,
and with it TensorFlow, only when called, so the bot adapter and the tests can import this
module without paying for, or even having, TensorFlow.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nlp.decoding.options import XLA_BY_DEFAULT
from nlp.generation.bundle import resolve
from nlp.generation.decode_settings import DecodeSettings
from nlp.generation.text_generator import TextGenerator
from nlp.text.scripts import has_han
from nlp.util.config import DataConfig, ExperimentConfig

# A script counts as one of the model's languages when this share of its vocabulary is in it.
LANGUAGE_SHARE = 0.05


@dataclass(frozen=True)
class LoadedModel:
    """A generator plus what the responder must know about the model's input format."""

    generator: TextGenerator
    data: DataConfig
    decoding: DecodeSettings | None = None  # the bundle's recommended decode options
    languages: tuple[str, ...] = ()  # what it reads (`vocabulary_languages`): "zh", "en"


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
    languages = vocabulary_languages(directory / "vocab.txt")
    return LoadedModel(generator, data, generator.bundle.decoding, languages)


def vocabulary_languages(vocab_path: Path) -> tuple[str, ...]:
    """"zh" and/or "en": the scripts a real share of the vocabulary is written in (the
    bundle records no language; its vocabulary says what it can read). The chat speaks to
    its users in it (`nlp.chat.messages`); `s2s serve` lists it."""
    tokens = vocab_path.read_text("utf-8").splitlines()
    if not tokens:
        return ()
    han = sum(1 for token in tokens if has_han(token))
    latin = sum(1 for token in tokens if re.search(r"[A-Za-z]", token) and not has_han(token))
    found = [("zh", han), ("en", latin)]
    return tuple(lang for lang, count in found if count / len(tokens) >= LANGUAGE_SHARE)


def load_generator(
    model: str, *, jit_compile: bool = XLA_BY_DEFAULT
) -> tuple[TextGenerator, DecodeSettings | None]:
    """The bundle's `Generator` (TensorFlow loads here) and its recommended decoding settings."""
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(Path(model), jit_compile=jit_compile)
    return generator, generator.bundle.decoding
