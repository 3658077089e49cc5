"""A vocabulary's initial embedding rows from pretrained word vectors.

A vocabulary entry takes the vector of the first word in the file whose normalised form
equals it: the word is normalised as the tokenizer normalises text (`normalize_text`, then
lowercased when `tokenizer.lowercase`), so "The" and "ＡＩ" in a vectors file find "the" and
"ai"; files list frequent forms first, so the first match is the common one. A sentencepiece
piece "▁word" also takes the vector of "word". The special tokens and entries with no vector
keep the model's own random initialisation.

When the vectors are narrower than `model.embedding_dim` they fill the first columns and the
other columns keep their random values (GloVe 50d in a 256-wide embedding: the vectors give
the start, the model learns the rest); when wider, they are projected onto their leading
principal components (PCA over the rows found), which keeps as much of their geometry as
`embedding_dim` columns can.

With `rescale=True` (`model.rescale_pretrained=true`) they are then rescaled, by one factor
for all of them (their relative lengths stay), so that their mean row norm over the columns
they fill equals the root-mean-square norm of the embedding initialiser's rows over those
columns: Keras' `Embedding` draws each value from U(-0.05, 0.05) (`EMBEDDING_INIT_LIMIT`), so c
columns have a norm of about 0.05 * sqrt(c / 3) (0.46 for 256). Unscaled, GloVe 6B's rows are
about ten times longer than the random rows around them. The default keeps them so: on the
Reuters recipe the unscaled rows gave a lower validation loss and better headlines than the
rescaled ones (docs/BENCHMARKS.md, "Word vectors and extra pairs").
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nlp.text.normalize import normalize_text
from nlp.tokenizers.specials import SPECIAL_TOKENS
from nlp.vectors.files import VectorsError, VectorSource, locate, read_vectors

SUBWORD_MARK = "▁"  # sentencepiece's word-start mark
# keras.layers.Embedding's default initializer is RandomUniform(-limit, limit) (tests check it)
EMBEDDING_INIT_LIMIT = 0.05


def initial_row_norm(columns: int) -> float:
    """The root-mean-square norm of `columns` values drawn from U(-limit, limit): what the
    embedding's random rows measure over those columns, and what vectors are scaled to."""
    return EMBEDDING_INIT_LIMIT * math.sqrt(columns / 3.0)


def lookup_key(word: str, lowercase: bool) -> str:
    """The form of a vectors-file word that a vocabulary entry would have."""
    key = normalize_text(word)
    return key.lower() if lowercase else key


@dataclass(frozen=True)
class PretrainedRows:
    """Initial embedding rows: `matrix` [vocab, embedding_dim] (random rows where `found` is
    False) and what the bundle metadata records about them."""

    matrix: np.ndarray
    found: np.ndarray  # bool [vocab]
    source: VectorSource
    sha256: str
    width: int
    fit: str  # how the vectors' width was fitted to embedding_dim
    scale: float  # the factor the vectors were multiplied by (1.0: their own values)
    vocab_coverage: float  # share of the non-special entries given a vector
    token_coverage: float | None  # share of the corpus tokens whose entry got a vector

    def record(self) -> dict[str, Any]:
        """What `metadata.json` keeps (`pretrained_embeddings`)."""
        return {
            "source": self.source.name,
            "format": self.source.fmt,
            "sha256": self.sha256,
            "width": self.width,
            "fit": self.fit,
            "scale": round(self.scale, 6),
            "rows_found": int(self.found.sum()),
            "vocab_coverage": round(self.vocab_coverage, 4),
            "token_coverage": None
            if self.token_coverage is None
            else round(self.token_coverage, 4),
        }

    def onto(self, table: np.ndarray) -> np.ndarray:
        """A copy of `table` [vocab, embedding_dim] with the rows the vectors gave (where
        `found`), in the columns they filled, taken from `matrix`; every other value stays.

        Why: `matrix` starts from one table (the source embedding's); a model with a
        separate target embedding must get the same vector rows without the rest of the
        source table, which would overwrite the target's own (learned, on retraining) rows."""
        out = np.array(table, dtype=np.float32, copy=True)
        columns = min(self.width, out.shape[1])  # narrower vectors fill the first columns
        out[self.found, :columns] = self.matrix[self.found, :columns]
        return out

    def describe(self) -> str:
        tokens = (
            "" if self.token_coverage is None else f", {self.token_coverage:.1%} of corpus tokens"
        )
        return (
            f"pretrained embeddings {self.source.name} ({self.source.fmt}, width {self.width}, "
            f"{self.fit}, scaled by {self.scale:.3g}): {int(self.found.sum())} rows, "
            f"{self.vocab_coverage:.1%} of the vocabulary{tokens}"
        )


def pretrained_rows(
    name: str,
    tokens: Sequence[str],
    initial: np.ndarray,
    *,
    lowercase: bool,
    counts: Mapping[str, int] | None = None,
    only: Sequence[int] | None = None,
    rescale: bool,
) -> PretrainedRows:
    """Rows for `tokens` (the vocabulary in id order) from the vectors `name` names.

    `initial`: the model's current rows (kept where no vector is found). `counts`: corpus
    token counts, for the token coverage. `only`: the ids to fill (retraining with a grown
    vocabulary fills the new rows only); default every non-special id. The width fit (PCA)
    and the rescaling are computed over every non-special id's vector all the same: fitted
    on a few new rows alone, the projection would be a basis of their own, unrelated to the
    one the other rows were given. `rescale`: scale the vectors to the initialiser's norm
    (see the module docstring); no default here, the product's is `model.rescale_pretrained`.
    """
    source = locate(name)
    every = range(len(SPECIAL_TOKENS), len(tokens))
    ids = every if only is None else only
    wanted: dict[str, list[int]] = {}
    for index in every:
        token = tokens[index]
        wanted.setdefault(token, []).append(index)
        if token.startswith(SUBWORD_MARK) and len(token) > 1:
            wanted.setdefault(token[1:], []).append(index)
    vectors: dict[int, np.ndarray] = {}
    for word, vector in read_vectors(source, lambda w: lookup_key(w, lowercase) in wanted):
        for index in wanted[lookup_key(word, lowercase)]:
            vectors.setdefault(index, vector)
    width = next((v.shape[0] for v in vectors.values()), 0)
    found = np.zeros(len(tokens), dtype=bool)
    matrix = np.array(initial, dtype=np.float32, copy=True)
    fit, scale = "as is", 1.0
    if vectors:
        rows = np.array(sorted(vectors))
        fitted, fit = fit_width(np.stack([vectors[i] for i in rows]), matrix.shape[1])
        if rescale:
            scale = scale_to_initial(fitted)
            fitted = fitted * np.float32(scale)
        kept = np.isin(rows, ids)  # fitted over every row found, written into `ids` only
        matrix[rows[kept], : fitted.shape[1]] = fitted[kept]
        found[rows[kept]] = True
    eligible = len(ids)
    token_coverage = None
    if counts:
        total = sum(n for t, n in counts.items() if t not in SPECIAL_TOKENS)
        position = {t: i for i, t in enumerate(tokens)}
        hit = sum(n for t, n in counts.items() if t in position and found[position[t]])
        token_coverage = hit / total if total else 0.0
    return PretrainedRows(
        matrix=matrix,
        found=found,
        source=source,
        sha256=source.sha256(),
        width=width,
        fit=fit,
        scale=scale,
        vocab_coverage=int(found.sum()) / eligible if eligible else 0.0,
        token_coverage=token_coverage,
    )


def scale_to_initial(vectors: np.ndarray) -> float:
    """The factor that makes the mean row norm of `vectors` [n, c] `initial_row_norm(c)`
    (1.0 for rows that are all zero: nothing to scale)."""
    mean_norm = float(np.linalg.norm(vectors.astype(np.float64), axis=1).mean())
    return initial_row_norm(vectors.shape[1]) / mean_norm if mean_norm > 0 else 1.0


def fit_width(vectors: np.ndarray, width: int) -> tuple[np.ndarray, str]:
    """Vectors [n, W] made at most `width` wide, and how (see the module docstring)."""
    have = vectors.shape[1]
    if have <= width:
        return vectors, "as is" if have == width else f"first {have} of {width} columns"
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:width].T
    if projected.shape[1] < width:  # fewer rows than columns: the rest stay zero
        projected = np.pad(projected, ((0, 0), (0, width - projected.shape[1])))
    return projected.astype(np.float32), f"PCA {have} -> {width}"


def report(rows: PretrainedRows, *, require: bool = True) -> None:
    """Say on stderr what the vectors cover (training prints it; metadata records it);
    `require`: finding no row at all is an error (the vectors cannot be this model's)."""
    print(rows.describe(), file=sys.stderr, flush=True)
    if require and not rows.found.any():
        raise VectorsError(
            f"{rows.source.name}: no vocabulary entry found among its words; are they "
            "tokenized as this model tokenizes (see `s2s embeddings`)?"
        )
