"""What an untuned chat bundle recommends: the decoder alone by beam search without an
index, and with one the retrieved replies where they fit, the model's own elsewhere (never
the temperature-0.8 samples raters found least sensible)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.generation.bundle import load_bundle
from nlp.generation.decode_settings import (
    RETRIEVED_OR_GENERATED,
    default_decode_options,
    task_defaults,
)

pytestmark = pytest.mark.slow


def test_a_chat_model_without_an_index_recommends_beam_search() -> None:
    options = default_decode_options("chat")
    assert options.strategy == "beam" and options.beam_size == 5 and options.retrieve == 0


def test_a_freshly_trained_chat_bundle_with_an_index_recommends_the_gate(
    tiny_bundle: Path,
) -> None:
    bundle = load_bundle(tiny_bundle)
    assert bundle.decoding is not None and bundle.decoding.origin != task_defaults("chat").origin
    options = bundle.decoding.options
    assert options.strategy == "beam" and options.generated
    for name, value in RETRIEVED_OR_GENERATED.items():
        assert getattr(options, name) == value
