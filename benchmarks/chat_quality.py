"""Chat quality on real corpora: perplexity and what users would see.

English: DailyDialog, trained on its train split, scored on its validation split.
Chinese: LCCC sample, a seeded 5% held out (the folder has no separate split).
Each model trains for at most --minutes of training time, then answers the held-out posts
with beam 5 (n-gram blocking on). Reports validation perplexity, distinct-1/2 of replies,
the share of the 5 most frequent replies, the share of replies echoing the post, and ten
sample exchanges per language.

    python -m benchmarks.chat_quality [--minutes 20] [--limit 1000]
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from benchmarks.common import format_table
from benchmarks.quality import BASE_SETTINGS, SHARED, QualityRun, arguments, run_all, test_pairs
from nlp.chat.rerank import ReplyRanker
from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.evaluation.chat_metrics import chat_metrics
from nlp.evaluation.evaluate import loss_metrics, reply_metrics
from nlp.generator import Generator
from nlp.text.normalize import normalize_text
from nlp.training.corpus_io import CorpusSpec

CHAT_MODEL = [*BASE_SETTINGS, "train.max_source_length=40", "train.max_target_length=30"]


def runs() -> list[QualityRun]:
    daily = SHARED / "dialogue-en" / "dailydialog"
    lccc = SHARED / "dialogue-zh" / "lccc" / "toy_train.txt"
    decode = DecodeOptions(beam_size=5, max_length=30, no_repeat_ngram=2, length_penalty=0.6)
    return [
        QualityRun(
            "dailydialog-en",
            CorpusSpec((daily / "train" / "dialogues_train.txt",), "dailydialog"),
            CorpusSpec((daily / "validation" / "dialogues_validation.txt",), "dailydialog"),
            [*CHAT_MODEL, "tokenizer.kind=words", "vocab.max_size=10000"],
            decode,
        ),
        QualityRun(
            "lccc-zh",
            CorpusSpec((lccc,), "lccc"),
            None,
            [*CHAT_MODEL, "tokenizer.kind=jieba", "vocab.max_size=10000"],
            decode,
        ),
    ]


def bot_replies_metrics(
    generator: Generator, pairs: list[Pair], decode: DecodeOptions
) -> dict[str, float | str]:
    """What the bot would send: the beam's 5-best re-ranked by the chat responder's ranker
    (penalising echoes and replies it keeps giving), posts taken as one chat each."""
    ranker = ReplyRanker()
    posts = [normalize_text(p.source) for p in pairs]
    options = replace(decode, n_best=5)
    replies = []
    for start in range(0, len(posts), 64):
        batch = posts[start : start + 64]
        for index, (post, n_best) in enumerate(
            zip(batch, generator.generate(batch, options), strict=True)
        ):
            chat = str(start + index)
            chosen = ranker.choose(chat, n_best, post).text if n_best else ""
            ranker.remember(chat, chosen)
            replies.append(chosen)
    return chat_metrics(posts, replies)


def main() -> None:
    args = arguments(__doc__, "chat_quality")

    def score(run: QualityRun, generator: Generator, info: dict[str, Any]) -> dict[str, Any]:
        pairs = test_pairs(run, args.work, args.limit)
        report = {
            "valid_perplexity": loss_metrics(generator, pairs, 64)["perplexity"],
            **reply_metrics(generator, pairs, run.decode, 64),
            "bot": bot_replies_metrics(generator, pairs, run.decode),
        }
        samples = pairs[:: max(1, len(pairs) // 10)][:10]
        outputs = generator.generate([p.source for p in samples], run.decode)
        report["samples"] = [
            {"post": p.source, "reference": p.target, "reply": o[0].text if o else ""}
            for p, o in zip(samples, outputs, strict=True)
        ]
        return report

    results = run_all(runs(), args.work, args.minutes, score, args.out, args.reuse)
    rows = [
        {
            "corpus": name,
            **result,
            "bot_distinct_2": result["bot"]["distinct_2"],
            "bot_top5": result["bot"]["top5_reply_share"],
            "bot_echo": result["bot"]["echo_share"],
        }
        for name, result in results.items()
    ]
    print(
        format_table(
            rows,
            [
                ("corpus", "corpus"),
                ("valid_perplexity", "valid ppl"),
                ("distinct_1", "distinct-1"),
                ("distinct_2", "distinct-2"),
                ("top5_reply_share", "top-5 share"),
                ("echo_share", "echo share"),
                ("bot_distinct_2", "bot distinct-2"),
                ("bot_top5", "bot top-5 share"),
                ("bot_echo", "bot echo share"),
                ("epochs", "epochs"),
                ("train_minutes", "train min"),
            ],
        )
    )


if __name__ == "__main__":
    main()
