"""What a chat bundle holds for choosing replies beyond its decoder: the retrieval index of
its training pairs (`nlp.retrieval`) and the dual-encoder ranker (`nlp.ranking`).

`s2s train --task chat` builds both (`retrieval.index`, `retrieval.dual_encoder_minutes`),
`s2s index` (re)builds them for a trained bundle, and `s2s retrain` keeps the old model's.

Privacy: a retrieved reply is shown verbatim to whoever writes to the bot. Pairs read from
conversation logs (`--format conversation-log`, what people wrote to the bot) never enter an
index unless the user asks (`retrieval.index_logs`, `s2s index --index-logs`), and `s2s
retrain` indexes none of its new pairs.
"""

from __future__ import annotations

import functools
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from nlp.corpus.readers import detect_format
from nlp.corpus.records import Pair
from nlp.generation.bundle import Bundle, load_bundle, store_part
from nlp.generation.candidates import ranking_ids
from nlp.generation.codec import TextCodec
from nlp.retrieval import INDEX_DIR, ReplyIndex
from nlp.retrieval.refine import refined_source
from nlp.training.corpus_io import CorpusSpec
from nlp.training.prepare import tokenize_pairs
from nlp.util.config import DataConfig

LOG_FORMAT = "conversation-log"


def log_paths(spec: CorpusSpec) -> list[Path]:
    """The corpus paths read as conversation logs (given or detected)."""
    if spec.fmt == LOG_FORMAT:
        return list(spec.paths)
    if spec.fmt != "auto":
        return []
    found = []
    for path in spec.paths:
        try:
            if detect_format(path)[0] == LOG_FORMAT:
                found.append(path)
        except (OSError, ValueError):
            continue  # unreadable paths failed loudly when the corpus was read
    return found


def without_logs(pairs: Sequence[Pair], spec: CorpusSpec, *, index_logs: bool) -> list[Pair]:
    """The pairs an index may hold: all with `index_logs`, else none read from a log."""
    logs = [] if index_logs else [str(path) for path in log_paths(spec)]
    if not logs:
        return list(pairs)
    kept = [p for p in pairs if not any(_from(p.origin, log) for log in logs)]
    print(
        f"retrieval index: left out {len(pairs) - len(kept)} pairs read from conversation "
        "logs (their replies would be shown to other people; --set retrieval.index_logs=true "
        "indexes them)",
        file=sys.stderr,
    )
    return kept


def _from(origin: str, path: str) -> bool:
    return origin == path or origin.startswith((f"{path}:", f"{path}/"))


def pair_name(origin: str) -> str:
    """A training pair as `/why` and the API name it: its file's name and line, never the
    directory it was read from (a path of the machine that trained the model)."""
    return Path(origin).name if origin else ""


def build_index(codec: TextCodec, pairs: Sequence[Pair]) -> ReplyIndex:
    """A BM25 index of `pairs`' posts in the model's tokens, answering with their replies."""
    tokens = tokenize_pairs(codec, [pairs]).groups[0]
    return ReplyIndex.build(
        [source for source, _ in tokens],
        [pair.target for pair in pairs],
        [pair_name(pair.origin) for pair in pairs],
    )


def refine_pairs(
    index: ReplyIndex,
    codec: TextCodec,
    pairs: Sequence[Pair],
    data: DataConfig,
    *,
    skip_same_post: bool,
) -> list[Pair]:
    """Retrieve-and-refine training pairs: each source followed by the reply of its nearest
    indexed post (never its own pair's, nor one of a duplicate of its post, with
    `skip_same_post`: the model must learn to refine a reply to a different message, which is
    what it gets at run time)."""
    queries = [codec.text_tokens(pair.source) for pair in pairs]
    drafts = index.search(queries, 1, skip_same_post=skip_same_post)
    return [
        Pair(
            refined_source(pair.source, hits[0].reply if hits else "", data.refine_separator),
            pair.target, pair.origin, pair.group,
        )
        for pair, hits in zip(pairs, drafts, strict=True)
    ]


def train_ranker(
    codec: TextCodec,
    train_pairs: Sequence[Pair],
    valid_pairs: Sequence[Pair],
    minutes: float,
    *,
    seed: int,
    verbose: int = 1,
) -> object:
    """A dual encoder (`nlp.ranking`) trained on the pairs for at most `minutes`."""
    from nlp.ranking import DualEncoderConfig, train_dual_encoder

    posts = [ranking_ids(codec, p.source) for p in train_pairs]
    replies = [ranking_ids(codec, p.target) for p in train_pairs]
    valid = (
        [ranking_ids(codec, p.source) for p in valid_pairs],
        [ranking_ids(codec, p.target) for p in valid_pairs],
    )
    config = DualEncoderConfig(vocab_size=len(codec.vocab), minutes=minutes, seed=seed)
    return train_dual_encoder(posts, replies, config, valid if valid_pairs else None, verbose)


def store_rankers(
    bundle_dir: Path,
    index_pairs: Sequence[Pair] | None,
    train_pairs: Sequence[Pair],
    valid_pairs: Sequence[Pair],
    minutes: float,
    *,
    seed: int,
    verbose: int = 1,
) -> None:
    """Build the index of `index_pairs` (None: none) and train the dual encoder for
    `minutes` (0: none) on `train_pairs`, and store both in the bundle."""
    bundle = load_bundle(bundle_dir)
    if index_pairs is not None:
        if not index_pairs:
            print("retrieval index: no pairs to index, none built", file=sys.stderr)
        else:
            index = build_index(bundle.codec, index_pairs)
            store_part(bundle_dir, INDEX_DIR, index.save)
            if verbose:
                print(f"retrieval index: {len(index)} pairs", file=sys.stderr)
    if minutes > 0 and train_pairs:
        from nlp.ranking import DUAL_ENCODER_DIR

        encoder = train_ranker(
            bundle.codec, train_pairs, valid_pairs, minutes, seed=seed, verbose=verbose
        )
        store_part(bundle_dir, DUAL_ENCODER_DIR, encoder.save)  # type: ignore[attr-defined]


def copy_rankers(source: Bundle, bundle_dir: Path) -> None:
    """`s2s retrain`: the retrained bundle keeps the old one's index and dual encoder as they
    were. The new pairs are not indexed: they may be a conversation log (what people wrote to
    the bot), and `s2s index` adds a corpus to the index only when asked."""
    from nlp.ranking import DUAL_ENCODER_DIR

    for name in (INDEX_DIR, DUAL_ENCODER_DIR):
        part = source.part(name)
        if part is not None:
            store_part(bundle_dir, name, functools.partial(_copy_tree, part))


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target)


def index_bundle(
    model: Path,
    corpus: CorpusSpec,
    *,
    index: bool = True,
    index_logs: bool = False,
    minutes: float | None = None,
    verbose: int = 1,
) -> int:
    """`s2s index`: index `corpus` into the chat bundle `model` (replacing its index) and
    train its dual encoder (`minutes`, default the config's). Returns the pairs indexed.

    Neither holds a pair of the model's validation file: a validation post would retrieve its
    own reference, and `s2s tune-decoding`, which tunes on that file, would choose retrieval
    on near-perfect scores. The file is the one the training run wrote; without it, the
    corpus is split as training splits one (`train.valid_fraction`, `train.seed`), which is
    the run's own split when the corpus is the one it was trained on."""
    from nlp.generation.bundle import read_metadata, resolve
    from nlp.training.corpus_io import (
        dedupe,
        load_pairs,
        run_validation_pairs,
        train_valid,
        without,
    )
    from nlp.util.config import ExperimentConfig

    directory = resolve(model)
    config = ExperimentConfig.load(directory / "config.json")
    if config.data.task != "chat" or config.data.reverse:
        raise ValueError(f"{directory}: only a chat model (not a companion) has a reply index")
    pairs = load_pairs(corpus, config.data)
    held = run_validation_pairs(read_metadata(directory))
    if held:
        train, valid = without(dedupe(pairs), held), held
        if not train:
            raise ValueError(f"no pairs to index: every one is in {directory}'s validation file")
    else:
        print(
            f"retrieval index: {directory}'s validation file is not there; holding out "
            f"train.valid_fraction={config.train.valid_fraction} of the corpus as training did",
            file=sys.stderr,
        )
        train, valid = train_valid(pairs, None, config.train.valid_fraction, config.train.seed)
    kept = without_logs(train, corpus, index_logs=index_logs) if index else None
    if kept is not None and not kept:
        raise ValueError(
            f"no pairs to index: all {len(train)} were read from conversation logs "
            "(--index-logs indexes them; their replies are then shown to other people)"
        )
    budget = config.retrieval.dual_encoder_minutes if minutes is None else minutes
    store_rankers(directory, kept, train, valid, budget, seed=config.train.seed, verbose=verbose)
    return len(kept or [])
