"""Training word vectors (word2vec or fastText, with gensim) whose words are a model's tokens.

The texts go through the same `TextCodec.text_tokens` a model applies (normalisation,
placeholders, the configured tokenizer), so `model.pretrained_embeddings` finds every vector
under the vocabulary entry it belongs to. Two passes, both flat in memory:

1. tokenizing, on every core (jieba is the slow part of any Chinese pipeline), into a
   temporary file of one space-separated text a line, in input order;
2. gensim's `corpus_file` training, which streams that file with one C worker per core
   (its iterable mode funnels every sentence through one Python thread instead).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlp.generation.codec import TextCodec
from nlp.util.processes import worker_context
from nlp.util.progress import Progress
from nlp.vectors.files import GENSIM_SUFFIXES

ALGORITHMS = ("word2vec", "fasttext")
CHUNK = 512  # texts per task handed to a tokenizing worker


@dataclass(frozen=True)
class VectorSettings:
    """What `s2s embeddings` trains (gensim's names in brackets)."""

    algorithm: str = "word2vec"
    dim: int = 128  # [vector_size]: match the model's embedding_dim
    window: int = 5
    min_count: int = 2
    epochs: int = 5
    skip_gram: bool = True  # [sg]: better than CBOW for rare words, which small corpora have
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    seed: int = 1


@dataclass(frozen=True)
class TokenizedText:
    """The tokenizing pass's result: the file gensim reads and what went into it."""

    path: Path
    texts: int
    tokens: int
    skipped_tokens: int  # tokens holding whitespace (gensim's file format splits on it)


_worker_codec: TextCodec | None = None


def _start_worker(codec: TextCodec) -> None:
    global _worker_codec  # one codec per worker process, built once (jieba's dictionary)
    _worker_codec = codec


def _tokenize(texts: list[str]) -> list[list[str]]:
    assert _worker_codec is not None
    return [_worker_codec.text_tokens(text) for text in texts]


def _chunks(texts: Iterable[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def tokenize_to_file(
    texts: Iterable[str], codec: TextCodec, directory: Path, workers: int, progress: bool = True
) -> TokenizedText:
    """Pass 1: every text's tokens, one line each, in input order, by `workers` spawned
    processes (`nlp.util.processes`: the caller may have TensorFlow loaded, and forking it
    can deadlock the workers)."""
    path = directory / "tokens.txt"
    lines = tokens = skipped = 0
    bar = Progress(sys.stderr if progress else None, "texts", interval=1.0)
    context = worker_context()
    with (
        path.open("w", encoding="utf-8") as out,
        context.Pool(max(1, workers), initializer=_start_worker, initargs=(codec,)) as pool,
    ):
        for token_lists in pool.imap(_tokenize, _chunks(texts)):
            for token_list in token_lists:
                kept = [t for t in token_list if not any(c.isspace() for c in t)]
                skipped += len(token_list) - len(kept)
                if kept:
                    out.write(" ".join(kept) + "\n")
                    lines += 1
                    tokens += len(kept)
            bar.update(lines, f"{tokens:,} tokens")
    bar.close(lines, f"{tokens:,} tokens")
    return TokenizedText(path, lines, tokens, skipped)


def train_vectors(tokenized: TokenizedText, settings: VectorSettings) -> Any:
    """Pass 2: gensim's model trained on the tokenized file; returns its KeyedVectors."""
    from gensim.models import FastText, Word2Vec

    if settings.algorithm not in ALGORITHMS:
        raise ValueError(
            f"algorithm must be one of {', '.join(ALGORITHMS)}, got {settings.algorithm!r}"
        )
    if tokenized.tokens == 0:
        raise ValueError("no tokens to train word vectors on")
    logging.getLogger("gensim").setLevel(logging.INFO)  # its per-second progress lines
    model_class = Word2Vec if settings.algorithm == "word2vec" else FastText
    model = model_class(
        corpus_file=str(tokenized.path),
        vector_size=settings.dim,
        window=settings.window,
        min_count=settings.min_count,
        epochs=settings.epochs,
        sg=1 if settings.skip_gram else 0,
        workers=settings.workers,
        seed=settings.seed,
    )
    return model.wv


def save_vectors(vectors: Any, out: Path) -> None:
    """By suffix: the names the reader takes for gensim's own format (`GENSIM_SUFFIXES`;
    fastText keeps its subword buckets there), `.bin` word2vec binary, anything else
    word2vec text (readable by every tool)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix in GENSIM_SUFFIXES:
        vectors.save(str(out))
    else:
        vectors.save_word2vec_format(str(out), binary=out.suffix == ".bin")


def build_vectors(
    texts: Iterable[str], codec: TextCodec, settings: VectorSettings, out: Path
) -> tuple[TokenizedText, int]:
    """Both passes, into `out`; returns the tokenizing pass's counts and the vector count."""
    with tempfile.TemporaryDirectory(prefix="s2s-vectors-") as scratch:
        tokenized = tokenize_to_file(texts, codec, Path(scratch), settings.workers)
        vectors = train_vectors(tokenized, settings)
        save_vectors(vectors, out)
    return tokenized, len(vectors.index_to_key)
