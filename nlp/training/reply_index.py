"""What a chat bundle holds for choosing replies beyond its decoder: the retrieval index of
its training pairs (`nlp.retrieval`) and the dual-encoder ranker (`nlp.ranking`), and from
the two the indexed replies' vectors, searched by meaning (`nlp.retrieval.dense`,
`retrieval.dense_index`).

`s2s train --task chat` builds both (`retrieval.index`, `retrieval.dual_encoder_minutes`),
`s2s index` (re)builds them for a trained bundle, and `s2s retrain` keeps the old model's.

Privacy: a retrieved reply is shown verbatim to whoever writes to the bot. Pairs read from
conversation logs (`--format conversation-log`, what people wrote to the bot) never enter an
index unless the user asks (`retrieval.index_logs`, `s2s index --index-logs`), and `s2s
retrain` indexes none of its new pairs.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlp.corpus.readers import LOG_FORMAT, detect_format
from nlp.corpus.records import Pair
from nlp.generation.bundle import (
    COMPANIONS_FILE,
    bundle_part,
    load_bundle,
    open_bundle,
    store_decoding,
    store_part,
)
from nlp.generation.candidates import ranking_ids, token_ranking_ids
from nlp.generation.codec import TextCodec
from nlp.generation.decode_settings import (
    DECODING_FILE,
    chat_defaults_with_index,
    task_defaults,
)
from nlp.retrieval import INDEX_DIR, ReplyIndex, message_tokens
from nlp.retrieval.dense import POST_VECTORS, REPLY_VECTORS, VectorIndex, files
from nlp.retrieval.refine import refined_source
from nlp.text.cleaning import has_words
from nlp.text.normalize import last_turn_text
from nlp.training.corpus_io import CorpusSpec
from nlp.training.prepare import tokenize_pairs
from nlp.util.config import DataConfig, RetrievalConfig
from nlp.util.fsutil import link_or_copy_tree

# Hard negatives offered for a training post (`hard_negatives`): this many of the replies
# BM25 retrieves for it, and this many of its conversation's other replies.
HARD_DEPTH = 5
# Posts of a training batch that BM25 is searched for (the others not searched yet get their
# conversation's replies only): a search over a large corpus costs far more than a training
# step's share of a post (`bm25s` scores tens of posts a second over 185,000 on two cores).
HARD_SEARCHED = 16
# Distinct posts the sentence encoder reads at a time while building the post vectors.
POSTS_A_BATCH = 512


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
        "logs (their replies would be shown to other people; `s2s index --index-logs`, or "
        "`s2s train --set retrieval.index_logs=true`, indexes them)",
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
    """A BM25 index of `pairs`' posts in the model's tokens, answering with their replies;
    a post with earlier turns is indexed by its message (`nlp.retrieval.turns`), as the
    chat searches it. A message without a word ("!!!", ":)") is indexed with no tokens, so
    it never matches (`has_words`): its reply answered the turns before it, and BM25 would
    find it for any message that ends in the same marks. The posts' texts are kept too:
    rerank="retrieval" compares the post a reply answered with the message
    (`nlp.generation.candidates`)."""
    tokens = tokenize_pairs(codec, [pairs]).groups[0]
    separator = codec.config.data.turn_separator
    return ReplyIndex.build(
        [message_tokens(source, separator)
         if has_words(last_turn_text(pair.source, separator)) else []
         for (source, _), pair in zip(tokens, pairs, strict=True)],
        [pair.target for pair in pairs],
        [pair_name(pair.origin) for pair in pairs],
        [pair.source for pair in pairs],
    )


def with_drafts(pairs: Sequence[Pair], drafts: Sequence[str], data: DataConfig) -> list[Pair]:
    """Retrieve-and-refine pairs: each pair's source followed by its draft (`draft_replies`;
    `nlp.retrieval.refine`)."""
    return [
        Pair(refined_source(pair.source, draft, data.refine_separator),
             pair.target, pair.origin, pair.group)
        for pair, draft in zip(pairs, drafts, strict=True)
    ]


def draft_replies(
    index: ReplyIndex,
    codec: TextCodec,
    pairs: Sequence[Pair],
    data: DataConfig,
    *,
    skip_same_post: bool,
    gold_seed: int | None = None,
) -> list[str]:
    """Retrieve-and-refine drafts, one per pair: the reply of the indexed post nearest its
    post (never its own pair's, nor one of a duplicate of its post, with
    `skip_same_post`: the model must learn to refine a reply to a different message, which is
    what it gets at run time). With a `gold_seed` (training pairs), a seeded
    `data.refine_gold_share` of them read their own reply instead (alpha-blending); only the
    others are searched, on every core: BM25 scores each query against the whole index, so
    drafting a large corpus takes minutes."""
    gold = np.zeros(len(pairs), bool)
    if gold_seed is not None and data.refine_gold_share > 0:
        gold = np.random.default_rng(gold_seed).random(len(pairs)) < data.refine_gold_share
    searched = np.flatnonzero(~gold).tolist()
    queries = [message_tokens(codec.text_tokens(pairs[i].source), data.turn_separator)
               for i in searched]
    drafts = [pair.target if own else "" for pair, own in zip(pairs, gold, strict=True)]
    found = index.search(queries, 1, skip_same_post=skip_same_post, all_cores=True)
    for i, hits in zip(searched, found, strict=True):
        drafts[i] = hits[0].reply if hits else ""
    return drafts


def find_hard_negatives(
    index: ReplyIndex,
    post_tokens: Sequence[Sequence[str]],
    pairs: Sequence[Pair],
    depth: int = HARD_DEPTH,
    searched: int = HARD_SEARCHED,
) -> Callable[[Sequence[int]], list[list[int]]]:
    """For rows of `pairs` (the pairs `index` holds, row for row; `post_tokens` their posts
    as the index tokenized them), the rows whose replies are hard negatives for each: the
    first `depth` replies BM25 retrieves for its post (never its own post's, nor a
    duplicate's: `skip_same_post`), then up to `depth` other replies of its conversation
    (`Pair.group`), the turns nearest it first. A reply equal to the pair's own is no
    negative and is left out. What a keyword matcher confuses and what a ranker of topics
    confuses, so the dual encoder learns to tell them from the reply.

    Each call searches BM25 for at most `searched` rows not searched before, the first ones
    asked (a training batch's rows are in random order: a random sample of them); what it
    found is kept for the next time a row is asked."""
    if len(index) != len(pairs) or len(post_tokens) != len(pairs):
        raise ValueError(
            f"hard negatives: the index holds {len(index)} pairs, {len(pairs)} pairs and "
            f"{len(post_tokens)} posts given; they must be the same pairs")
    by_group: dict[str, list[int]] = {}
    for row, pair in enumerate(pairs):
        if pair.group:
            by_group.setdefault(pair.group, []).append(row)

    retrieved: dict[int, list[int]] = {}

    def offer(rows: Sequence[int]) -> list[list[int]]:
        new = [row for row in dict.fromkeys(rows) if row not in retrieved][:searched]
        found = index.search([post_tokens[row] for row in new], depth, skip_same_post=True)
        for row, hits in zip(new, found, strict=True):
            own = pairs[row].target
            retrieved[row] = [hit.row for hit in hits if pairs[hit.row].target != own]
        offered = []
        for row in rows:
            own = pairs[row].target
            group = by_group.get(pairs[row].group, []) if pairs[row].group else []
            nearest = sorted((r for r in group if r != row and pairs[r].target != own),
                             key=lambda r: (abs(r - row), r))[:depth]
            offered.append(retrieved.get(row, []) + nearest)
        return offered

    return offer


def train_ranker(
    codec: TextCodec,
    train_pairs: Sequence[Pair],
    valid_pairs: Sequence[Pair],
    minutes: float,
    *,
    kind: str,
    seed: int,
    verbose: int = 1,
    index: ReplyIndex | None = None,
    hard_negatives: int = RetrievalConfig.dual_encoder_hard_negatives,
    embeddings: tuple[np.ndarray, np.ndarray] | None = None,
) -> object:
    """A dual encoder (`nlp.ranking`) of `kind` (`retrieval.dual_encoder_kind`) trained on the
    pairs for at most `minutes`, with hard negatives from `index` when given (an index of
    `train_pairs`, row for row). A post is the pair's source as the chat model reads it,
    with the earlier turns `data.context_turns` put there, which the chat passes the ranker
    too. `embeddings`: the post and reply tables to start from (`chat_model_tables`), which
    set the ranker's embedding width; random tables of the default width without."""
    from nlp.ranking import DualEncoderConfig, train_dual_encoder

    post_tokens = [codec.text_tokens(p.source) for p in train_pairs]
    posts = [token_ranking_ids(codec, tokens) for tokens in post_tokens]
    replies = [ranking_ids(codec, p.target) for p in train_pairs]
    valid = (
        [ranking_ids(codec, p.source) for p in valid_pairs],
        [ranking_ids(codec, p.target) for p in valid_pairs],
    )
    config = DualEncoderConfig(vocab_size=len(codec.vocab), minutes=minutes, seed=seed,
                               encoder=kind, hard_negatives=hard_negatives)
    if embeddings is not None:  # the tables' width is the ranker's
        config = dataclasses.replace(config, embedding_dim=int(embeddings[0].shape[1]),
                                     embeddings_from="chat model")
    separator = codec.config.data.turn_separator
    hard = (find_hard_negatives(index, [message_tokens(tokens, separator)
                                        for tokens in post_tokens], train_pairs)
            if index is not None and hard_negatives > 0 else None)
    return train_dual_encoder(posts, replies, config, valid if valid_pairs else None, verbose,
                              hard=hard, embeddings=embeddings)


def chat_model_tables(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """The chat model's embedding tables, the encoder's (posts) and the decoder's (replies):
    where `retrieval.dual_encoder_embeddings="model"` starts the ranker."""
    return (np.asarray(model.source_embedding.embeddings.numpy()),
            np.asarray(model.target_embedding.embeddings.numpy()))


def store_rankers(
    bundle_dir: Path,
    index_pairs: Sequence[Pair] | None,
    train_pairs: Sequence[Pair],
    valid_pairs: Sequence[Pair],
    minutes: float,
    *,
    kind: str,
    seed: int,
    verbose: int = 1,
    post_vectors: bool | None = None,
    add_only: bool = False,
) -> None:
    """Build the index of `index_pairs` (None: none), with its posts' sentence vectors where
    `post_vectors` (None: `retrieval.post_vectors`), and train the dual encoder of `kind`
    for `minutes` (0: none) on `train_pairs`, and store them in the bundle. The dual
    encoder's hard negatives come from an index of `train_pairs`: the stored one when it
    holds just those, else one built for the purpose and not kept. `add_only`: a part the
    bundle has stays as it is (training's: a resumed run's bundle keeps what `s2s index`
    put there), where `s2s index` replaces it."""
    bundle = load_bundle(bundle_dir)
    if add_only:
        index_part, encoder_part = ranker_parts()
        index_pairs = None if bundle.part(index_part) else index_pairs
        minutes = 0 if bundle.part(encoder_part) else minutes
    index = None
    if index_pairs is not None:
        if not index_pairs:
            print("retrieval index: no pairs to index, none built", file=sys.stderr)
        else:
            index = build_index(bundle.codec, index_pairs)
            store_part(bundle_dir, INDEX_DIR, index.save)
            if verbose:
                print(f"retrieval index: {len(index)} pairs", file=sys.stderr)
            retrieval = bundle.config.retrieval
            store_post_vectors(
                bundle_dir, retrieval.post_vector_width, verbose=verbose, index=index,
                build=retrieval.post_vectors if post_vectors is None else post_vectors)
            untuned = task_defaults(bundle.config.data.task).origin
            if bundle.decoding is None or bundle.decoding.origin == untuned:
                # an untuned chat bundle recommends what suits a bundle with an index
                store_decoding(bundle_dir, chat_defaults_with_index())
    if minutes > 0 and train_pairs:
        from nlp.ranking import DUAL_ENCODER_DIR

        hard = bundle.config.retrieval.dual_encoder_hard_negatives
        if hard and (index is None or list(index_pairs or []) != list(train_pairs)):
            index = build_index(bundle.codec, train_pairs)
        start = bundle.config.retrieval.dual_encoder_embeddings == "model"
        encoder = train_ranker(
            bundle.codec, train_pairs, valid_pairs, minutes, kind=kind, seed=seed,
            verbose=verbose, index=index if hard else None, hard_negatives=hard,
            embeddings=chat_model_tables(bundle.model) if start else None,
        )
        store_part(bundle_dir, DUAL_ENCODER_DIR, encoder.save)  # type: ignore[attr-defined]
    if index_pairs or (minutes > 0 and train_pairs):
        store_reply_vectors(bundle_dir, bundle.codec,
                            build=bundle.config.retrieval.dense_index, verbose=verbose)


def store_reply_vectors(
    bundle_dir: Path, codec: TextCodec, *, build: bool, verbose: int = 1
) -> None:
    """Put the dual encoder's vectors of every reply in the bundle's index into a
    nearest-neighbour index beside it (`nlp.retrieval.dense`), or without `build`
    (`retrieval.dense_index`) take out the one there. Called whenever the index or the dual
    encoder changed: the graph's rows are the index's and its vectors the encoder's, so
    either change leaves an old graph answering with the wrong replies."""
    from nlp.ranking import DUAL_ENCODER_DIR, DualEncoder

    bundle_files = open_bundle(bundle_dir)
    index_dir = bundle_part(bundle_files.path, bundle_files.metadata, INDEX_DIR)
    encoder_dir = bundle_part(bundle_files.path, bundle_files.metadata, DUAL_ENCODER_DIR)
    if index_dir is None:
        return
    vectors = None
    if build and encoder_dir is not None:
        index = ReplyIndex.load(index_dir)
        encoder = DualEncoder.load(encoder_dir)
        vectors = VectorIndex.build(
            encoder.reply_vectors([ranking_ids(codec, reply) for reply in index.replies]))
    elif not (index_dir / files(REPLY_VECTORS)[0]).exists():
        return  # none to build, none to take out
    _store_vectors(bundle_files.path, index_dir, vectors, REPLY_VECTORS)
    if verbose and vectors is not None:
        print(f"retrieval index: {len(vectors)} reply vectors for retrieval by meaning",
              file=sys.stderr)


def store_post_vectors(
    bundle_dir: Path, width: int, *, build: bool = True, verbose: int = 1,
    index: ReplyIndex | None = None,
) -> None:
    """Put the sentence encoder's vectors of every post in the bundle's index into a
    nearest-neighbour index beside it (`nlp.retrieval.dense.POST_VECTORS`), keeping `width`
    principal components (0: all), or without `build` (`retrieval.post_vectors`) take out
    the one there. Called whenever the index is built: the graph's rows are its rows. An
    index that keeps no posts' texts (built before they were kept) gets none. `index`: the
    bundle's index when the caller has it in memory (it is read from the bundle otherwise)."""
    from nlp.ranking.sentence_encoder import SentenceEncoder

    bundle_files = open_bundle(bundle_dir)
    index_dir = bundle_part(bundle_files.path, bundle_files.metadata, INDEX_DIR)
    if index_dir is None:
        return
    posts = (index or ReplyIndex.load(index_dir)).posts if build else None
    if not posts:
        if (index_dir / files(POST_VECTORS)[0]).exists():
            _store_vectors(bundle_files.path, index_dir, None, POST_VECTORS)
        return
    # the posts' last turns, which the message's last turn searches them with
    separator = bundle_files.config.data.turn_separator
    posts = [last_turn_text(post, separator) for post in posts]
    distinct = list(dict.fromkeys(posts))
    encoder = SentenceEncoder(cached=0)  # each post once, in batches; none read again
    encoded = np.concatenate([encoder.encode(distinct[start:start + POSTS_A_BATCH])
                              for start in range(0, len(distinct), POSTS_A_BATCH)])
    row_of = {post: i for i, post in enumerate(distinct)}
    vectors = VectorIndex.build(encoded[[row_of[post] for post in posts]],
                                projected_width=width)
    _store_vectors(bundle_files.path, index_dir, vectors, POST_VECTORS)
    if verbose:
        print(f"retrieval index: {len(distinct)} distinct posts' sentence vectors for "
              "retrieval by meaning", file=sys.stderr)


def _store_vectors(
    bundle_dir: Path, index_dir: Path, vectors: VectorIndex | None, stem: str
) -> None:
    """The bundle's index folder again, with `vectors` as its `stem` vectors (None: without
    any), the other files as they were."""

    def write(target: Path) -> None:
        link_or_copy_tree(index_dir, target, skip=files(stem))
        if vectors is not None:
            vectors.save(target, stem)

    store_part(bundle_dir, INDEX_DIR, write)


def ranker_parts() -> tuple[str, ...]:
    """A chat bundle's parts for choosing replies beyond its decoder: its index and its dual
    encoder (what `s2s retrain` keeps of the old bundle: the new pairs are not indexed, since
    they may be a conversation log, what people wrote to the bot)."""
    from nlp.ranking import DUAL_ENCODER_DIR

    return (INDEX_DIR, DUAL_ENCODER_DIR)


def added_parts() -> tuple[str, ...]:
    """What a chat bundle gains after training, by `s2s index`, `s2s companion` and `s2s
    tune-decoding` (or training's own index): its rankers, companions and tuned decoding,
    which `--resume` keeps in each better epoch's bundle."""
    return (*ranker_parts(), COMPANIONS_FILE, DECODING_FILE)


def index_bundle(
    model: Path,
    corpus: CorpusSpec,
    *,
    index: bool = True,
    index_logs: bool = False,
    minutes: float | None = None,
    kind: str | None = None,
    verbose: int = 1,
    post_vectors: bool | None = None,
) -> int:
    """`s2s index`: index `corpus` into the chat bundle `model` (replacing its index, with
    its posts' sentence vectors where `post_vectors`) and train its dual encoder (`minutes`
    and `kind`); each default the config's. Returns the pairs indexed.

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
    held = run_validation_pairs(read_metadata(directory), directory)
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
    store_rankers(directory, kept, train, valid, budget,
                  kind=config.retrieval.dual_encoder_kind if kind is None else kind,
                  seed=config.train.seed, verbose=verbose, post_vectors=post_vectors)
    return len(kept or [])
