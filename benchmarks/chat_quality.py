"""Chat quality on real corpora: the README's chat recipes, run verbatim, scored on what the
bot sends.

Each run executes a recipe block of README.md (`benchmarks.recipes`: convert, train the chat
model with a 20-minute budget, its retrieval index and dual encoder,
`s2s tune-decoding`), then answers --limit (1,000) test posts drawn at random across
conversations (seeded), each as the first message of a fresh chat, exactly as the bot does:
the bundle's tuned settings, the bot's n-best size, per-chat sampling seeds, retrieved replies
and reply re-ranking (`nlp.chat.offline`). It
reports test perplexity, Hits@1/20 (does the model prefer each post's true reply to 19
replies of other test posts; `nlp.metrics.hits`) and, for those replies, distinct-1/2,
the top-5 reply share, the echo share, mean reply length (words; characters for Chinese)
and BLEU-1/2 against the reference replies written as the model would write them
(sacrebleu; "13a" for English, "zh" for Chinese), all by `s2s evaluate --metric chat`'s own
`score_replies`, then the same columns for every configuration the tuner knows (plain beam,
sampling, sample-and-rerank, diverse beam, MMI anti-LM, MMI bidi) on the same posts,
plain beam search's best hypothesis without the bot's reply re-ranking, and ten sample
exchanges.

    chat-en        chitchat-dataset (installed by the recipe) and DailyDialog's train/: a
                   seeded 5% of chitchat's conversations held out for scoring (chat_cross
                   also scores it on DailyDialog's validation/), 5% of the rest of each
                   validates (words)
    dailydialog-en DailyDialog: trained and tuned on train/ (a seeded 5% validates), scored
                   on validation/ (words)
    chat-zh        LCCC and the dgk TV subtitles: a seeded 5% of LCCC held out for scoring,
                   5% of the rest validates, the subtitles only train (words by jieba)

    python -m benchmarks.chat_quality [--only NAME] [--limit 1000] [--reuse] [--baselines]
        [--minutes M]   # another training budget: a smoke run, not the README's recipe
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import format_table
from benchmarks.recipes import recipe_arguments, run_recipes
from nlp.corpus.records import Pair
from nlp.metrics.hits import HitsDraw

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"


def scored_draw(limit: int) -> HitsDraw:
    """What this benchmark scores: `limit` posts drawn at random across conversations, not
    the file's first ones, and Hits@1/20 of each."""
    return HitsDraw(k=20, limit=limit)


def scored_pairs(every: Sequence[Pair], draw: HitsDraw) -> list[Pair]:
    """The test pairs of `every` whose posts `draw` (`scored_draw`) scores."""
    return [every[row] for row in draw.rows([p.group for p in every])]


MODEL = "runs/chat"  # where the recipes leave the chat model, relative to their work directory
TEST = "chat-test.jsonl"  # the test pairs the recipes write (no training, no tuning on them)
COLUMNS = [
    ("distinct_1", "distinct-1"),
    ("distinct_2", "distinct-2"),
    ("distinct_2_per_block", "distinct-2 /100"),
    ("top5_reply_share", "top-5 share"),
    ("embedding_average", "emb. average"),
    ("retrieved_share", "retrieved"),
    ("echo_share", "echo share"),
    ("mean_reply_length", "mean length"),
    ("bleu_1", "BLEU-1"),
    ("bleu_2", "BLEU-2"),
]


@dataclass(frozen=True)
class RecipeRun:
    """A README recipe and the data folders it names."""

    name: str
    data: dict[str, Path]


DAILYDIALOG = SHARED / "dialogue-en" / "dailydialog"
RUNS = [
    # chitchat comes from the package registry; DailyDialog's training share joins it
    RecipeRun("chat-en", {"DAILYDIALOG": DAILYDIALOG}),
    RecipeRun("dailydialog-en", {"DAILYDIALOG": DAILYDIALOG}),
    RecipeRun(
        "chat-zh",
        {
            "LCCC": SHARED / "dialogue-zh" / "lccc",
            "SUBTITLES": SHARED / "dialogue-zh" / "dgk-subtitles",
        },
    ),
]


RAW_BEAM = "plain beam, no reply re-ranking"


def top_hypotheses(generator: Any, posts: list[str], options: Any, batch: int = 64) -> list[str]:
    """The decoder's best hypothesis for each post (empty when it has none), as a model
    answers without the bot around it."""
    from nlp.text.cleaning import clean_message

    replies: list[str] = []
    for start in range(0, len(posts), batch):
        cleaned = [clean_message(post) for post in posts[start : start + batch]]
        replies += [n_best[0].text if n_best else "" for n_best in
                    generator.generate(cleaned, options)]
    return replies


def measure(generator: Any, pairs: list[Any], options: Any) -> tuple[dict[str, Any], list[Any]]:
    """(the figures, the replies sent) of what the bot sends to each pair's post with
    `options`, scored as `s2s evaluate --metric chat` scores replies (`score_replies`:
    references written as the model would write them, embedding similarities, the share
    retrieved verbatim)."""
    from nlp.chat.offline import bot_choices
    from nlp.evaluation.evaluate import score_replies
    from nlp.text.normalize import normalize_text

    sent = bot_choices(generator, [normalize_text(p.source) for p in pairs], options)
    figures = score_replies(generator.codec, pairs, [r.text for r in sent],
                            provenances=[r.provenance for r in sent])
    return figures, sent


# What --baselines scores beside the bot: the decodings a chat model had before retrieval,
# the fresh model's default and plain beam search.
BASELINES = ("sampling", "plain beam")


def score(work: Path, limit: int, test: Path | None = None,
          configurations: bool | Sequence[str] = True) -> dict[str, Any]:
    """What the bot sends with the bundle's settings, and every tuner configuration (or
    those named in `configurations`, or none), on the recipe's test file or on `test`
    (another recipe's)."""
    from nlp.corpus.readers import read_pairs
    from nlp.corpus.records import ReadReport
    from nlp.evaluation.evaluate import hits_metrics, loss_metrics, score_replies
    from nlp.generation.decode_settings import RERANK_WEIGHTS
    from nlp.generation.generator import Generator
    from nlp.text.normalize import normalize_text
    from nlp.tuning.search import PLAIN_BEAM, chat_candidates

    generator = Generator.from_bundle(work / MODEL)
    every = list(read_pairs(test or work / TEST, "jsonl", report=ReadReport()))
    draw = scored_draw(limit)
    pairs = scored_pairs(every, draw)
    posts = [normalize_text(p.source) for p in pairs]
    references = [normalize_text(p.target) for p in pairs]  # the samples show them as written
    settings = generator.bundle.decoding
    if settings is None:
        raise ValueError(f"{work / MODEL}: no decoding settings (did s2s tune-decoding run?)")

    bot, replies = measure(generator, pairs, settings.options)
    wanted = None if configurations is True else set(configurations or ())
    # what the tuner tries (with an index: retrieved replies only) and, beside it, the
    # decodings a model without an index chooses among (the baselines among them)
    companions, weights = sorted(generator.companions), settings.details.get(RERANK_WEIGHTS)
    has_index = generator.candidates.has_index
    ranker = settings.details.get("ranker", "likelihood") if has_index else ""
    tried = (chat_candidates(companions, weights, ranker,
                             retrieval=generator.candidates.keeps_posts)
             | chat_candidates(companions, weights))
    table = {
        name: measure(generator, pairs, options)[0]
        for name, options in tried.items()
        if wanted is None or name in wanted
    }
    # Beside "plain beam" as the bot sends it (its n-best re-ranked against repeats across
    # chats): the decoder's own best hypothesis, to show what the bot's re-ranking changes.
    if configurations is True:
        table[RAW_BEAM] = score_replies(
            generator.codec, pairs, top_hypotheses(generator, posts, PLAIN_BEAM)
        )
    step = max(1, len(pairs) // 10)
    return {
        "pairs": len(pairs),
        "test_perplexity": loss_metrics(generator, pairs, 64)["perplexity"],
        # whether replies fit: the true reply against 19 others of the test file
        "hits": hits_metrics(generator, every, settings.options, 64, draw),
        "decoding": {"origin": settings.origin, "details": settings.details},
        "bot": bot,
        "configurations": table,
        "samples": [
            {"post": posts[i], "reference": references[i], "reply": replies[i].text,
             "provenance": replies[i].provenance, "pair": replies[i].pair}
            for i in range(0, len(pairs), step)
        ][:10],
    }


def main() -> None:
    def baselines_flag(parser: Any) -> None:
        parser.add_argument(
            "--baselines", action="store_true",
            help=f"score the bot and only {', '.join(BASELINES)} beside it, not every "
            "configuration the tuner knows (a slow machine)",
        )

    args = recipe_arguments(__doc__, "chat_quality", RUNS, baselines_flag)
    chosen: bool | Sequence[str] = BASELINES if args.baselines else True
    results = run_recipes(RUNS, args, MODEL,
                          lambda run, work: score(work, args.limit, configurations=chosen))
    rows = [
        {"corpus": name, "decoding": "bot (tuned)", **result["bot"]}
        for name, result in results.items()
    ] + [
        {"corpus": name, "decoding": configuration, **figures}
        for name, result in results.items()
        for configuration, figures in result["configurations"].items()
    ]
    print(format_table(rows, [("corpus", "corpus"), ("decoding", "decoding"), *COLUMNS]))
    for name, result in results.items():
        hits = ", ".join(f"{k} {v:.3f}" for k, v in result.get("hits", {}).items()
                         if k.startswith("hits@"))
        print(f"{name}: test perplexity {result['test_perplexity']:.1f}; {hits}; "
              f"bot decoding {result['decoding']['origin']}")


if __name__ == "__main__":
    main()
