"""Loading a trained model bundle: the one path from a directory to a generator.

Every caller that uses a model loads it through `load_model`: `s2s chat`, `s2s bot` (and
its /reload), `s2s serve`, `s2s headlines` and its Beam workers, `s2s evaluate`,
`s2s attention`, `s2s tune-decoding` and `nlp.api`. The walk is `open_bundle` (the path
resolved and every checksum verified, once, without TensorFlow, so a bad path fails fast),
then `Generator.from_bundle` (the codec, the weights, the companions). `load_generator` is
the same walk for callers that need the real `Generator` (its bundle, codec and rankers),
and `recommended_decoding` stops after the first step, for the Beam launcher, which plans
the pipeline without TensorFlow.

`nlp.generation.generator` (and with it TensorFlow) is imported only inside these
functions, so the bot adapter and the tests can import this module without paying for, or
even having, TensorFlow.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nlp.decoding.options import XLA_BY_DEFAULT
from nlp.generation.bundle import open_bundle
from nlp.generation.decode_settings import DecodeSettings
from nlp.generation.text_generator import TextGenerator
from nlp.text.scripts import has_han, script_languages
from nlp.util.config import DataConfig

if TYPE_CHECKING:
    from nlp.generation.generator import Generator

# A script counts as one of the model's languages when this share of its vocabulary is in it.
LANGUAGE_SHARE = 0.05


@dataclass(frozen=True)
class LoadedModel:
    """A generator plus what its users must know about the model: the input format (the
    responder), its recommended decoding, the languages it reads, and where it was loaded
    from with its verified metadata (`s2s serve` lists them)."""

    generator: TextGenerator
    data: DataConfig
    decoding: DecodeSettings | None = None  # the bundle's recommended decode options
    languages: tuple[str, ...] = ()  # what it reads (`vocabulary_languages`): "zh", "en"
    directory: Path | None = None  # the bundle directory (a run directory's `model/`)
    metadata: Mapping[str, Any] = field(default_factory=dict)  # its verified metadata.json


ModelLoader = Callable[[], LoadedModel]


def load_model(
    directory: Path | str, companions: Sequence[Path] = (), *, jit_compile: bool = XLA_BY_DEFAULT
) -> LoadedModel:
    """The bundle in `directory` (or in a training run's `model/`), with its data settings;
    `companions` are LM / reverse bundles for MMI re-ranking (`--rerank`); `jit_compile`:
    decode with XLA (`--xla`). Raises `BundleNotFoundError`, `ChecksumError` or another
    `BundleError` (ValueErrors) naming the file at fault."""
    files = open_bundle(Path(directory))  # fails fast, before TensorFlow loads
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(files, jit_compile=jit_compile, companions=companions)
    return LoadedModel(
        generator,
        files.config.data,
        files.decoding,
        vocabulary_languages(files.path / "vocab.txt"),
        files.path,
        files.metadata,
    )


def load_generator(
    directory: Path | str, companions: Sequence[Path] = (), *, jit_compile: bool = XLA_BY_DEFAULT
) -> Generator:
    """`load_model`'s generator as the real `Generator`, for the commands that read its bundle
    (`s2s evaluate`, `s2s attention`, `s2s tune-decoding`)."""
    from nlp.generation.generator import Generator

    generator = load_model(directory, companions, jit_compile=jit_compile).generator
    assert isinstance(generator, Generator)
    return generator


def recommended_decoding(directory: Path | str) -> DecodeSettings | None:
    """The bundle's decoding settings (its `decoding.json`, None without one), verified as
    `load_model` verifies it, without loading the model or TensorFlow."""
    return open_bundle(Path(directory)).decoding


def vocabulary_languages(vocab_path: Path) -> tuple[str, ...]:
    """"zh" and/or "en": the scripts a real share of the vocabulary is written in (the
    bundle records no language; its vocabulary says what it can read), the largest share
    first. The chat speaks to its users in it (`nlp.chat.messages`); `s2s serve` lists it.

    Why the order: a Chinese model trained on TV subtitles has enough English names of
    their characters in its vocabulary to read "en" too, but it is a Chinese model to its
    users."""
    tokens = vocab_path.read_text("utf-8").splitlines()
    if not tokens:
        return ()
    han = sum(1 for token in tokens if has_han(token))
    latin = sum(1 for token in tokens if script_languages(token) == {"en"})
    found = sorted([("zh", han), ("en", latin)], key=lambda item: -item[1])
    return tuple(lang for lang, count in found if count / len(tokens) >= LANGUAGE_SHARE)
