"""Unlabelled text for `s2s pretrain`: read, split, and cut into the windows it trains on.

TensorFlow-free. A text is one line of a plain text file (one document a line), or one side
of a pair of any corpus the readers accept (both sides are text). Texts are de-duplicated;
a seeded hash of each text puts it on the training or the validation side, so the split
depends on the texts and the seed only, and a resumed run holds out the same texts.

A text's tokens are cut into windows of `train.max_target_length` tokens (what the decoder
is trained on): each window is an example whose source and target are that window, the
target ending with the end token only where the text ends (a window cut inside the text
teaches no false end, as `TextCodec` cuts a target). The ids are kept flat, one array a
side, so a corpus of tens of millions of tokens takes a few bytes a token.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from nlp.corpus.records import Pair
from nlp.generation.codec import PairTokens, TextCodec
from nlp.training.corpus_io import CorpusSpec, load_pairs
from nlp.util.config import ExperimentConfig
from nlp.vectors.files import numbered_lines

# A flat side: ids concatenated (int32) and each window's start offset, the total last.
FlatSide = tuple[np.ndarray, np.ndarray]


def read_texts(corpus: CorpusSpec | None, text_files: Sequence[Path]) -> list[str]:
    """Every distinct non-empty text, in reading order: both sides of each corpus pair,
    then each line of the text files."""
    return list(dict.fromkeys(text for text in _texts(corpus, text_files) if text.strip()))


def _texts(corpus: CorpusSpec | None, text_files: Sequence[Path]) -> Iterator[str]:
    if corpus is not None:
        for pair in load_pairs(corpus):
            yield pair.source
            yield pair.target
    for path in text_files:
        count = 0
        for _, line in numbered_lines(path):
            count += 1
            yield line.strip()
        print(f"{path}: {count} lines", file=sys.stderr)


def split_texts(
    texts: Sequence[str], fraction: float, seed: int, most: int
) -> tuple[list[str], list[str]]:
    """(training, validation) texts: a text is held out when a hash of the seed and its
    content falls under `fraction`; at most `most` are held out (the first ones), the rest
    go back to training."""
    kept: list[str] = []
    held: list[str] = []
    for text in texts:
        digest = hashlib.sha1(f"{seed}\0{text}".encode()).digest()
        side = held if int.from_bytes(digest[:4], "big") < fraction * 2**32 else kept
        side.append(text)
    kept.extend(held[most:])
    return kept, held[:most]


def text_codec_config(config: ExperimentConfig) -> ExperimentConfig:
    """The config a text is read with: the model's tokenizer, vocabulary and lengths, and
    each text read once as it is (not as a language model's empty source, nor swapped)."""
    task = "chat" if config.data.task == "lm" else config.data.task
    data = replace(config.data, task=task, reverse=False, context_turns=0, retrieve_refine=False)
    return replace(config, data=data)


def as_pairs(texts: Iterable[str]) -> list[Pair]:
    """Each text as a pair's source (the target empty): what the tokenizing workers take."""
    return [Pair(text, "") for text in texts]


def windows(codec: TextCodec, tokens: Iterable[PairTokens], length: int) -> tuple[
    FlatSide, FlatSide, int
]:
    """The windows of every text (its source tokens) as flat (sources, targets), and the
    number of tokens they hold. `codec.token_ids` makes each window's ids (copy ids too)."""
    sources, targets = array("i"), array("i")
    source_offsets, target_offsets = array("q", [0]), array("q", [0])
    total = 0
    for text, _ in tokens:
        total += len(text)
        for start in range(0, len(text), length):
            # the rest of the text, which `token_ids` cuts to `length` (no end token if cut)
            window, rest = text[start : start + length], text[start : start + length + 1]
            source, target = codec.token_ids((window, rest))
            sources.extend(source)
            targets.extend(target)
            source_offsets.append(len(sources))
            target_offsets.append(len(targets))
    return (
        (np.frombuffer(sources, np.int32), np.frombuffer(source_offsets, np.int64)),
        (np.frombuffer(targets, np.int32), np.frombuffer(target_offsets, np.int64)),
        total,
    )
