"""`s2s evaluate`: loss, token accuracy, exact match, BLEU and ROUGE (with lead baselines).

ROUGE is computed for the model and, on the same pairs and by the same code, for the lead
baselines, so a reported figure always comes with what copying the article would score.
Beside ROUGE, each system gets its repetition shares (`nlp.metrics.repetition`), which
ROUGE does not see.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.evaluation.baselines import lead_n_baseline, lead_sentence_baseline
from nlp.generation.codec import TextCodec
from nlp.generation.generator import Generator, generate_all
from nlp.metrics.chat_metrics import bleu_tokenize, chat_metrics
from nlp.metrics.hits import HitsDraw, hits_at_1
from nlp.metrics.repetition import repetition_shares
from nlp.metrics.rouge import resolve_unit, rouge
from nlp.text.normalize import normalize_text


def loss_metrics(generator: Generator, pairs: Sequence[Pair], batch_size: int) -> dict[str, float]:
    from nlp.training.prepare import examples_of
    from nlp.training.trainer import LossMeter, batching_for

    config = generator.bundle.config.train
    meter = LossMeter(generator.bundle.model, batching_for(config))
    examples = examples_of(generator.codec, pairs)
    loss = meter(examples)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "pairs": len(examples)}


def accuracy_metrics(
    generator: Generator, pairs: Sequence[Pair], batch_size: int
) -> dict[str, float]:
    """Teacher-forced next-token accuracy (`nlp.evaluation.accuracy`) on the pairs."""
    from nlp.evaluation.accuracy import AccuracyMeter
    from nlp.training.prepare import examples_of
    from nlp.training.trainer import batching_for

    config = generator.bundle.config.train
    meter = AccuracyMeter(generator.bundle.model, batching_for(config))
    return meter(examples_of(generator.codec, pairs))


def bleu_metrics(
    generator: Generator, pairs: Sequence[Pair], options: DecodeOptions, batch_size: int
) -> dict[str, Any]:
    """Corpus BLEU (sacrebleu) of the decoded outputs against the references written as the
    model would write them (`TextCodec.as_output`: lowercased and truecased alike).

    Chinese references are scored with sacrebleu's `zh` tokenisation (each CJK character
    one token, the usual way to score Chinese), others with its default `13a`.
    """
    import sacrebleu

    outputs = generate_all(generator, [p.source for p in pairs], options, batch_size)
    references = [generator.codec.as_output(p.target) for p in pairs]
    tokenize = bleu_tokenize(resolve_unit(references, "auto"))
    bleu = sacrebleu.BLEU(tokenize=tokenize)
    score = bleu.corpus_score(outputs, [references])
    return {"bleu": round(score.score, 2), "tokenize": tokenize, "pairs": len(pairs),
            "signature": str(bleu.get_signature())}


def exact_metrics(
    generator: Generator, pairs: Sequence[Pair], options: DecodeOptions, batch_size: int
) -> dict[str, float]:
    outputs = generate_all(generator, [p.source for p in pairs], options, batch_size)
    hits = sum(
        out == generator.codec.as_output(p.target) for out, p in zip(outputs, pairs, strict=True)
    )
    return {"exact_match": hits / max(1, len(pairs)), "pairs": len(pairs)}


EXAMPLES = 10  # generated headlines shown beside the ROUGE figures


def rouge_metrics(
    generator: Generator, pairs: Sequence[Pair], options: DecodeOptions, batch_size: int
) -> dict[str, Any]:
    articles = [normalize_text(p.source) for p in pairs]
    references = [normalize_text(p.target) for p in pairs]
    systems = {
        "model": generate_all(generator, articles, options, batch_size),
        "lead_sentence": lead_sentence_baseline(articles),
        "lead_n": lead_n_baseline(articles, references),
    }
    report: dict[str, Any] = {"pairs": len(pairs)}
    for name, outputs in systems.items():
        scores = rouge(outputs, references)
        report["unit"] = scores.unit
        figures = {k: v for k, v in scores.as_dict().items() if k.endswith("_f1")}
        figures.update(repetition_shares(outputs))
        report[name] = {k: round(v, 4) for k, v in figures.items()}
    report["examples"] = [  # what the numbers stand for
        {"article": article[:200], "reference": reference, "generated": generated}
        for article, reference, generated in zip(
            articles[:EXAMPLES], references[:EXAMPLES], systems["model"][:EXAMPLES], strict=True
        )
    ]
    return report


def reply_metrics(
    generator: Generator, pairs: Sequence[Pair], options: DecodeOptions, batch_size: int
) -> dict[str, Any]:
    """The decoder's best reply to each post, scored by `score_replies`."""
    posts = [normalize_text(p.source) for p in pairs]
    replies = generate_all(generator, posts, options, batch_size)
    return score_replies(generator.codec, pairs, replies)


def score_replies(
    codec: TextCodec, pairs: Sequence[Pair], replies: Sequence[str]
) -> dict[str, Any]:
    """Replies to the pairs' posts: diversity (distinct-n, generic and echo shares), BLEU-1/2
    against the reference replies written as the model would write them
    (`TextCodec.as_output`; as the corpus wrote them, a perfect reply of a lowercasing model
    would lose BLEU to case alone) and mean length. The one scoring path of
    `s2s evaluate --metric chat` and the chat benchmark, whatever made the replies."""
    posts = [normalize_text(p.source) for p in pairs]
    references = [codec.as_output(p.target) for p in pairs]
    return {"pairs": len(pairs), **chat_metrics(posts, replies, references=references)}


def hits_metrics(
    generator: Generator,
    pairs: Sequence[Pair],
    options: DecodeOptions,
    batch_size: int,
    draw: HitsDraw,
) -> dict[str, Any]:
    """Hits@1 of K (`nlp.metrics.hits`) for the posts `draw` names, the distractors drawn
    from every reply of `pairs`, from the tables of `hits_scores`."""
    scores = hits_scores(generator, pairs, options, batch_size, draw)
    k = draw.k
    result: dict[str, Any] = {"posts": len(scores["model"]), "k": k, "seed": draw.seed}
    result |= {f"hits@1/{k}" if name == "model" else f"hits@1/{k} {name}": hits_at_1(table)
               for name, table in scores.items()}
    return result


def hits_scores(
    generator: Generator,
    pairs: Sequence[Pair],
    options: DecodeOptions,
    batch_size: int,
    draw: HitsDraw,
) -> dict[str, np.ndarray]:
    """Score tables [posts, k], the true reply in column 0 and the drawn distractors after
    it (`nlp.generation.reply_scores`): "model", the model's length-normalised likelihood of
    each candidate, and one table per MMI re-ranking whose companion the bundle has, with
    `options`' weights when they re-rank that way, else the weights `s2s tune-decoding`
    chose for it (`DecodeSettings.rerank_options`), each per reply token too."""
    from nlp.generation.decode_settings import DecodeSettings
    from nlp.generation.reply_scores import score_candidates

    scored = score_candidates(generator, pairs, draw, batch_size)
    settings = generator.bundle.decoding or DecodeSettings(options, "")
    tables = {"model": scored.table()}
    for name in scored.reranks:
        weights = options if options.rerank == name else settings.rerank_options(name)
        tables[name] = scored.table(weights)
    return tables


METRICS: dict[str, Callable[..., dict[str, Any]]] = {
    "loss": lambda g, pairs, options, batch: loss_metrics(g, pairs, batch),
    "accuracy": lambda g, pairs, options, batch: accuracy_metrics(g, pairs, batch),
    "exact": exact_metrics,
    "bleu": bleu_metrics,
    "rouge": rouge_metrics,
    "chat": reply_metrics,
    "hits": hits_metrics,
}
