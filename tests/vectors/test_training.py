"""The tokenizing pass of `s2s embeddings` (`nlp.vectors.training`)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from nlp.generation.codec import TextCodec
from nlp.tokenizers import build_tokenizer
from nlp.tokenizers.vocab import Vocabulary
from nlp.util.config import ExperimentConfig
from nlp.vectors import training


class _PoolCreated(Exception):
    """Raised in place of starting worker processes: the test needs only how they start."""


def test_the_tokenizing_pool_spawns_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`s2s embeddings` runs in a process that may hold TensorFlow's threads and locks; a
    forked worker could inherit a held lock and hang, so workers are spawned (a fresh
    interpreter), as the training data's tokenizing pool does."""
    methods: list[str | None] = []
    real = multiprocessing.get_context

    def get_context(method: str | None = None) -> Any:
        methods.append(method)
        context = real(method)

        class Context:
            def Pool(self, *args: object, **kwargs: object) -> None:
                raise _PoolCreated(context.get_start_method())

        return Context()

    monkeypatch.setattr(multiprocessing, "get_context", get_context)
    config = ExperimentConfig()
    codec = TextCodec(config, build_tokenizer(config.tokenizer), Vocabulary())
    with pytest.raises(_PoolCreated, match=r"^spawn$"):
        training.tokenize_to_file(["a text"], codec, tmp_path, workers=2, progress=False)
    assert methods == ["spawn"]
