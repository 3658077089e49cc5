"""`s2s tune-decoding --model DIR [--corpus VALID] [--max-pairs N] [--minutes M]`.

Decodes validation pairs (default: the training run's `valid.jsonl`), scores each
configuration by the task's objective, prints what it tried, and stores the best configuration
in the bundle's `decoding.json` (atomically, checksums updated), where `s2s headlines`,
`s2s evaluate`, `s2s chat` and the bot pick it up.

Headlines (data.task=headline): ROUGE-L F1, one setting changed at a time from the current
settings (n-gram blocking, length penalty, beam size, length limits).

Chat (data.task=chat): first the rankers, by Hits@1/20 on up to 1,000 validation posts
(each scored with its true reply and 19 replies of other posts): the MMI re-rankings' weights
(with companions, `s2s companion`), then the ranker among the model's per-token likelihood,
MMI, the dual encoder and the dual encoder with BM25 (its weight chosen the same way) that
prefers the true reply most often. Then whole configurations,
scored on the replies the bot would send (its n-best size, seeds and re-ranking) to a seeded
sample of validation posts drawn across conversations: among those whose replies are diverse
enough (distinct-2 at least 0.30 and repeats of the 5 most frequent replies at most 5% of
the replies, per block of 100 replies), the one with the highest BLEU-2 plus 100 x
embedding-average similarity to the validation replies (GloVe, English; 0 for a reply
without word vectors); when none is, the highest distinct-2 minus top-5 repeats.
Candidates: plain beam, sampling (temperature 0.8, 0.6, 0.45; top-p 0.9), sample-and-rerank
(8 nucleus samples at temperature 1 and 0.7), diverse beam (3 groups), MMI re-ranking of beam
search and of 8 samples for each companion. With a retrieval index, the replies people wrote
to the 10 nearest training posts where their posts fit, else the model's own beam reply; ranked
by the sentence encoder where the index keeps its posts, else by the chosen ranker
(`nlp.tuning.search.chat_candidates` says why).
The time budget covers both stages; the first stops scoring posts at 40% of it, so that on a
slow machine the second still tries the configurations. Last, each ranker's score is
calibrated as the probability that a candidate is the true reply (Platt scaling,
`calibration` in the details), on the candidates the bot ranks with the chosen configuration
for the decoded posts, the true reply added (`nlp.tuning.calibration`): what the chat's
`--fallback-threshold` reads.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nlp.corpus.records import Pair
from nlp.decoding.options import DecodeOptions
from nlp.metrics.sampling import sample_rows
from nlp.tokenizers.base import SP_SPACE
from nlp.training.command import add_corpus_arguments
from nlp.training.corpus_io import run_validation_file
from nlp.util.arguments import positive_int

if TYPE_CHECKING:
    from nlp.generation.bundle import Bundle
    from nlp.generation.generator import Generator
    from nlp.tuning.search import Generate, Objective, SearchResult, Trial


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tune-decoding",
        help="search decoding settings on validation pairs and store the best in the model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, required=True, help="model bundle or run dir")
    add_corpus_arguments(parser, required=False)
    parser.add_argument(
        "--max-pairs",
        type=int,
        default=200,
        help="decode at most N validation pairs per configuration, drawn at random across "
        "conversations (default 200)",
    )
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="time budget of the search (default 10)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="inputs per decoder call")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the table but leave the model unchanged"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nlp.generation.decode_args import describe_options
    from nlp.generation.loading import load_generator
    from nlp.tuning.search import TuningContext, objective_for

    if args.max_pairs < 1 or args.minutes <= 0:
        raise ValueError("--max-pairs must be >= 1 and --minutes > 0")
    generator = load_generator(args.model, jit_compile=False)
    bundle = generator.bundle
    task = bundle.config.data.task
    metric, make_objective = objective_for(task)
    paths, every, pairs = _validation_pairs(args, bundle)
    generate = _generate_for(task, generator, args.batch_size)
    fit = _fit_measure(generator, pairs) if task == "chat" else None
    objective = make_objective(TuningContext(pairs, generate, generator.codec.as_output, fit))
    print(f"tuning on {len(pairs)} pairs of {' '.join(map(str, paths))}, by {metric}, "
          f"budget {args.minutes:g} min", file=sys.stderr)
    print(f"{'#':>3}  {metric:>10}  {'seconds':>7}  settings")
    show = _trial_printer()

    details: dict[str, Any] = {}
    if task == "chat":
        result, details = _search_chat(generator, every, pairs, generate, objective, args, show)
    else:
        result = _search_headlines(generator, pairs, generate, objective, args, show)
    if result.stopped_early:
        print("time budget reached before every setting was tried", file=sys.stderr)
    best = result.best
    print(f"best: {metric} {best.score:.4f} (start {result.start.score:.4f}): "
          f"{describe_options(best.options)}")
    if args.dry_run:
        return 0
    _store(bundle, metric, result, pairs, paths, details)
    return 0


def _validation_pairs(
    args: argparse.Namespace, bundle: Bundle
) -> tuple[list[Path], list[Pair], list[Pair]]:
    """(the validation files, their pairs, the `--max-pairs` sample of them drawn across
    conversations that configurations are scored on)."""
    from nlp.training.command import corpus_spec
    from nlp.training.corpus_io import load_pairs

    paths = args.corpus or [_run_valid_file(bundle.metadata, bundle.path)]
    every = load_pairs(corpus_spec(paths, args), bundle.config.data)  # the turns it reads
    pairs = [every[row] for row in sample_rows([p.group for p in every], args.max_pairs, 0)]
    if not pairs:
        raise ValueError(f"{' '.join(map(str, paths))}: no validation pairs")
    return paths, every, pairs


def _generate_for(task: str, generator: Generator, batch_size: int) -> Generate:
    """What a configuration is scored on: for chat what the bot sends, not the decoder's
    first hypothesis; for headlines the decoder's output."""
    from nlp.chat.offline import bot_replies
    from nlp.generation.generator import generate_all

    if task == "chat":

        def generate(sources: Sequence[str], options: DecodeOptions) -> list[str]:
            return bot_replies(generator, sources, options, batch_size)
    else:

        def generate(sources: Sequence[str], options: DecodeOptions) -> list[str]:
            return generate_all(generator, sources, options, batch_size)

    return generate


def _trial_printer() -> Callable[[Trial], None]:
    """Prints each trial as a numbered row of the table."""
    from nlp.generation.decode_args import describe_options

    numbers = itertools.count(1)

    def show(trial: Trial) -> None:
        row = f"{next(numbers):>3}  {trial.score:>10.4f}  {trial.seconds:>7.1f}"
        print(f"{row}  {describe_options(trial.options)}", flush=True)

    return show


def _search_chat(
    generator: Generator,
    every: Sequence[Pair],
    pairs: Sequence[Pair],
    generate: Generate,
    objective: Objective,
    args: argparse.Namespace,
    show: Callable[[Trial], None],
) -> tuple[SearchResult, dict[str, Any]]:
    """The chat's two stages (the module docstring): the rankers by Hits on `every` pair,
    then the configurations `chat_candidates` offers on `pairs`; the result and the details
    the first stage found (weights, Hits, calibrations, the ranker)."""
    from nlp.generation.decode_settings import CALIBRATION, RERANK_WEIGHTS
    from nlp.tuning.calibration import ranker_calibrations
    from nlp.tuning.search import chat_candidates, try_candidates

    details: dict[str, Any] = {}
    companions = sorted(generator.companions)
    began = time.monotonic()
    rankers = generator.candidates.has_dual_encoder or generator.candidates.has_index
    weights = (_hits_weights(generator, every, args.batch_size,
                             began + HITS_SHARE * 60 * args.minutes)
               if companions or rankers else None)
    ranker = "likelihood"
    if weights is not None:
        details[RERANK_WEIGHTS], details["hits"] = weights
        ranker = details["ranker"] = best_ranker(details["hits"])
        print(f"ranker by validation Hits: {ranker}", file=sys.stderr)
    candidates = chat_candidates(companions, details.get(RERANK_WEIGHTS),
                                 ranker if generator.candidates.has_index else "",
                                 retrieval=generator.candidates.keeps_posts)
    budget = 60 * args.minutes - (time.monotonic() - began)
    result = try_candidates(
        generate, pairs, list(candidates.values()), objective, budget, on_trial=show
    )
    details[CALIBRATION] = ranker_calibrations(
        generator, pairs, result.best.options, details.get(RERANK_WEIGHTS), args.batch_size)
    return result, details


def _search_headlines(
    generator: Generator,
    pairs: Sequence[Pair],
    generate: Generate,
    objective: Objective,
    args: argparse.Namespace,
    show: Callable[[Trial], None],
) -> SearchResult:
    """One setting changed at a time from the bundle's current settings (or the task's
    defaults), over values fitted to the pairs' lengths."""
    from nlp.generation.decode_settings import default_decode_options
    from nlp.text.normalize import normalize_text
    from nlp.tuning.search import space_for, tune

    bundle = generator.bundle
    start = (
        bundle.decoding.options
        if bundle.decoding
        else default_decode_options(bundle.config.data.task)
    )
    codec = generator.codec
    space = space_for(
        [len(codec.tokenizer.tokenize(normalize_text(p.target))) for p in pairs],
        [len(codec.source(p.source).tokens) for p in pairs],
        start.max_length,
    )
    return tune(generate, pairs, start, objective, space, 60 * args.minutes, on_trial=show)


def _store(
    bundle: Bundle,
    metric: str,
    result: SearchResult,
    pairs: Sequence[Pair],
    paths: Sequence[Path],
    details: dict[str, Any],
) -> None:
    """The best configuration stored in the bundle's decoding settings, with how it was
    found."""
    from nlp.generation.bundle import store_decoding
    from nlp.generation.decode_settings import DecodeSettings
    best = result.best
    settings = DecodeSettings(
        best.options,
        f"tuned by s2s tune-decoding: {metric} {best.score:.4f} on {len(pairs)} pairs",
        {
            "metric": metric,
            "score": best.score,
            "start_score": result.start.score,
            "pairs": len(pairs),
            "corpus": [str(p) for p in paths],
            "trials": len(result.trials),
            **details,
        },
    )
    directory = store_decoding(bundle.path, settings)
    print(f"stored in {directory}/decoding.json", file=sys.stderr)


# The share of `--minutes` the ranker's Hits stage may take before the decoding
# configurations: it stops scoring posts at it (the posts scored by then are still a sample
# across conversations), so a slow machine tries configurations and not only rankers.
HITS_SHARE = 0.4


def _hits_weights(
    generator: Generator, pairs: Sequence[Pair], batch_size: int, deadline: float | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, float]] | None:
    """(per MMI re-ranking the weights with the best Hits@1/20 on up to `HITS_POSTS`
    validation posts, as many as are scored by `deadline`, and Hits of the model alone and
    of each chosen re-ranking and the other rankers), and prints the table of every weight
    tried; None when the file has too few different replies to draw from."""
    from nlp.generation.reply_scores import score_candidates
    from nlp.metrics.hits import DEFAULT_K, HitsDraw, enough_replies, hits_at_1
    from nlp.tuning.rerank_weights import HITS_POSTS, choose_rerank_weights

    # replies told apart as the model writes them, as `score_candidates` draws them
    targets = [pair.target for pair in pairs]
    if not enough_replies(targets, DEFAULT_K, generator.codec.as_output):
        print(f"MMI weights: defaults (Hits@1/{DEFAULT_K} needs {DEFAULT_K} different "
              "validation replies)", file=sys.stderr)
        return None
    scored = score_candidates(generator, pairs, HitsDraw(limit=HITS_POSTS), batch_size,
                              deadline=deadline)
    chosen, trials = choose_rerank_weights(scored.table, scored.reranks)
    best = [trial for trial in trials if trial.weights == chosen[trial.rerank]]
    hits = {"model": round(hits_at_1(scored.table()), 4)}
    hits |= {trial.rerank: round(trial.hits, 4) for trial in best}
    hits |= {name: round(hits_at_1(table), 4) for name, table in scored.others.items()}
    print(f"re-ranking weights by Hits@1/{scored.k} on {scored.posts} validation posts "
          f"(model alone {hits['model']:.4f}):")
    for trial in trials:
        settings = ", ".join(f"{key} {value:g}" for key, value in trial.weights.items())
        print(f"     {trial.hits:.4f}  {trial.rerank} {settings}{' *' * (trial in best)}")
    return chosen, hits


# The rankers a reply can be chosen by (`DecodeOptions.rerank`), as Hits names their tables;
# BM25 alone is reported by Hits but ranks no reply (it would prefer any reply repeating the
# message's words); beside the dual encoder, with a weight Hits chose, it may.
RANKER_OF_TABLE = {"model": "likelihood", "mmi-antilm": "mmi-antilm", "mmi-bidi": "mmi-bidi",
                   "dual-encoder": "dual-encoder", "dual-encoder+bm25": "dual-encoder+bm25"}


def best_ranker(hits: dict[str, float]) -> str:
    """The ranker whose validation Hits@1 is highest; on ties the one `RANKER_OF_TABLE`
    names first (the likelihood, then the simpler), whatever order `hits` lists them in."""
    order = list(RANKER_OF_TABLE)
    best = max((name for name in hits if name in RANKER_OF_TABLE),
               key=lambda name: (hits[name], -order.index(name)))
    return RANKER_OF_TABLE[best]


def _fit_measure(generator: Generator, pairs: Sequence[Pair]) -> Any:
    """The chat objective's fit: the mean embedding-average similarity of replies to their
    references, with the vectors `nlp.vectors.similarity` picks for the language (None when
    there are none, e.g. Chinese without a vectors file)."""
    from nlp.metrics.chat_metrics import chat_unit
    from nlp.metrics.embedding_similarity import embedding_similarities
    from nlp.vectors.similarity import similarity_lookup, similarity_vectors

    codec = generator.codec
    name = similarity_vectors("auto", chat_unit([p.source for p in pairs],
                                                [p.target for p in pairs]))
    if not name:
        print("fit: no word vectors for this language; BLEU-2 alone", file=sys.stderr)
        return None
    # the words replies can hold: the vocabulary's (a sentencepiece piece without its space
    # mark is most often a whole word) and the references'
    words = ({t.lstrip(SP_SPACE) for t in codec.vocab.tokens}
             | {t for p in pairs for t in codec.word_tokens(p.target)})
    lookup = similarity_lookup(name, words)

    def fit(outputs: Sequence[str], references: Sequence[str]) -> float:
        scores = embedding_similarities([codec.word_tokens(o) for o in outputs],
                                        [codec.word_tokens(r) for r in references], lookup)
        return scores["embedding_average"]

    print(f"fit: embedding average with {name}", file=sys.stderr)
    return fit


def _run_valid_file(metadata: dict[str, Any], bundle_dir: Path) -> Path:
    """The validation file the model's training run wrote (`run_validation_file`)."""
    found = run_validation_file(metadata, bundle_dir)
    if found is None:
        recorded = metadata.get("corpus", {}).get("valid_file")
        raise ValueError(
            f"{bundle_dir}: its training run's validation file "
            f"({recorded or 'not recorded'}) is not there; pass --corpus"
        )
    return found
