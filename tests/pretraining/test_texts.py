"""Unlabelled text for `s2s pretrain`: read from text files and corpora (both sides), split by
content, cut into windows whose targets end only where the text ends."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np

from nlp.generation.codec import TextCodec
from nlp.pretraining.texts import as_pairs, read_texts, split_texts, text_codec_config, windows
from nlp.tokenizers.specials import EOS_ID
from nlp.training.corpus_io import CorpusSpec
from nlp.util.config import ExperimentConfig
from tests.conftest import write_jsonl


def test_texts_come_from_lines_and_both_sides_of_pairs_once_each(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", [("a post", "a reply"), ("a post", "another")])
    text = tmp_path / "t.txt"
    text.write_text("first document\n\n  \nsecond document\na reply\n", "utf-8")
    texts = read_texts(CorpusSpec((corpus,)), [text])
    assert texts == ["a post", "a reply", "another", "first document", "second document"]


def test_the_split_depends_on_content_and_seed_and_caps_the_held_out_side() -> None:
    texts = [f"text number {i}" for i in range(400)]
    kept, held = split_texts(texts, 0.1, 7, most=1000)
    assert 20 < len(held) < 60 and len(kept) + len(held) == 400
    again_kept, again_held = split_texts(list(reversed(texts)), 0.1, 7, most=1000)
    assert set(again_held) == set(held) and set(again_kept) == set(kept)
    assert set(split_texts(texts, 0.1, 8, most=1000)[1]) != set(held)
    capped_kept, capped_held = split_texts(texts, 0.1, 7, most=5)
    assert capped_held == held[:5] and len(capped_kept) == 395


def test_windows_cut_a_text_and_only_the_last_one_ends() -> None:
    config = text_codec_config(
        ExperimentConfig().with_overrides(["train.max_target_length=3", "data.task=lm"])
    )
    texts = ["one two three four five six seven", "eight nine"]
    codec = TextCodec.fit(config, as_pairs(texts))
    tokens = [codec.text_tokens(t) for t in texts]
    (source, source_offsets), (target, target_offsets), count = windows(
        codec, [(t, []) for t in tokens], 3
    )
    assert count == 9
    sources = [source[a:b].tolist() for a, b in pairwise(source_offsets)]
    targets = [target[a:b].tolist() for a, b in pairwise(target_offsets)]
    words = [codec.vocab.decode(s) for s in sources]
    assert words == [["one", "two", "three"], ["four", "five", "six"], ["seven"], ["eight", "nine"]]
    # the target is the window; the end token only where the text ends
    assert targets == [sources[0], sources[1], [*sources[2], EOS_ID], [*sources[3], EOS_ID]]
    assert source.dtype == np.int32 and source_offsets.dtype == np.int64
