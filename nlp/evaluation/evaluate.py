"""`s2s evaluate`: loss, token accuracy, exact match, BLEU and ROUGE (with lead baselines).

ROUGE is computed for the model and, on the same pairs and by the same code, for the lead
baselines, so a reported figure always comes with what copying the article would score.
Beside ROUGE, each system gets its repetition shares (`nlp.metrics.repetition`), which
ROUGE does not see.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.evaluation.baselines import lead_n_baseline, lead_sentence_baseline
from nlp.generation.codec import TextCodec
from nlp.generation.generator import Generator, generate_all
from nlp.metrics.chat_metrics import bleu_tokenize, chat_metrics
from nlp.metrics.embedding_similarity import embedding_similarities
from nlp.metrics.hits import HitsDraw, hits_at_1
from nlp.metrics.repetition import repetition_shares
from nlp.metrics.rouge import resolve_unit, rouge
from nlp.text.normalize import normalize_text
from nlp.vectors.similarity import similarity_lookup, similarity_vectors


def loss_metrics(
    generator: Generator, pairs: Sequence[Pair], batch_size: int,
    specificity: float | None = None,
) -> dict[str, float]:
    """Teacher-forced loss and perplexity on the pairs, each source as the model reads it
    (`Candidates.model_pairs`: with its draft for a retrieve-and-refine model, with the
    marker of `specificity` for a specificity-controlled one)."""
    from nlp.training.prepare import examples_of
    from nlp.training.trainer import LossMeter, batching_for

    config = generator.bundle.config.train
    meter = LossMeter(generator.bundle.model, batching_for(config))
    examples = examples_of(generator.codec, generator.candidates.model_pairs(pairs, specificity))
    loss = meter(examples)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "pairs": len(examples)}


def accuracy_metrics(
    generator: Generator, pairs: Sequence[Pair], batch_size: int,
    specificity: float | None = None,
) -> dict[str, float]:
    """Teacher-forced next-token accuracy (`nlp.evaluation.accuracy`) on the pairs, read as
    `loss_metrics` reads them."""
    from nlp.evaluation.accuracy import AccuracyMeter
    from nlp.training.prepare import examples_of
    from nlp.training.trainer import batching_for

    config = generator.bundle.config.train
    meter = AccuracyMeter(generator.bundle.model, batching_for(config))
    return meter(examples_of(generator.codec,
                             generator.candidates.model_pairs(pairs, specificity)))


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
    generator: Generator,
    pairs: Sequence[Pair],
    options: DecodeOptions,
    batch_size: int,
    similarity: str = "auto",
) -> dict[str, Any]:
    """What the bot sends to each post (`nlp.chat.offline.bot_choices`: the bot's n-best,
    per-chat seeds, reply re-ranking and retrieved replies), scored by `score_replies`;
    `similarity` names the word vectors of the embedding similarities (`similarity_lookup`)."""
    from nlp.chat.offline import bot_choices

    posts = [normalize_text(p.source) for p in pairs]
    sent = bot_choices(generator, posts, options, batch_size)
    return score_replies(
        generator.codec, pairs, [reply.text for reply in sent],
        provenances=[reply.provenance for reply in sent], similarity=similarity,
    )


def score_replies(
    codec: TextCodec,
    pairs: Sequence[Pair],
    replies: Sequence[str],
    *,
    provenances: Sequence[str] | None = None,
    similarity: str = "auto",
) -> dict[str, Any]:
    """Replies to the pairs' posts: diversity (distinct-n, generic and echo shares, also per
    block of replies), BLEU-1/2 against the reference replies written as the model would
    write them (`TextCodec.as_output`; as the corpus wrote them, a perfect reply of a
    lowercasing model would lose BLEU to case alone), mean length, the embedding similarity
    of each reply to its reference (`nlp.metrics.embedding_similarity`, with the vectors
    `similarity` names) and, given `provenances`, the share of replies sent as retrieved.
    The one scoring path of `s2s evaluate --metric chat` and the chat benchmark, whatever
    made the replies."""
    posts = [normalize_text(p.source) for p in pairs]
    references = [codec.as_output(p.target) for p in pairs]
    report: dict[str, Any] = {
        "pairs": len(pairs), **chat_metrics(posts, replies, references=references)
    }
    if provenances is not None:
        report["retrieved_share"] = sum(p == "retrieved" for p in provenances) / max(
            1, len(provenances))
        report["refined_share"] = sum(p == "refined" for p in provenances) / max(
            1, len(provenances))
    name = similarity_vectors(similarity, report["unit"])
    if name:
        reply_tokens = [codec.word_tokens(reply) for reply in replies]
        reference_tokens = [codec.word_tokens(reference) for reference in references]
        lookup = similarity_lookup(name, {t for ts in (*reply_tokens, *reference_tokens)
                                          for t in ts})
        report |= embedding_similarities(reply_tokens, reference_tokens, lookup)
        report["embedding_vectors"] = name
    return report


def hits_metrics(
    generator: Generator,
    pairs: Sequence[Pair],
    options: DecodeOptions,
    batch_size: int,
    draw: HitsDraw,
) -> dict[str, Any]:
    """Hits@1 of K (`nlp.metrics.hits`) for the posts `draw` names, the distractors drawn
    from every reply of `pairs`, from the tables of `hits_scores`; and, where the bundle has
    its retrieval index, the same with hard distractors (`hard hits@1/K ...`: the post's
    conversation's other replies and BM25's matches for it, `nlp.metrics.hits.hard_distractors`)
    beside the random ones."""
    scores = hits_scores(generator, pairs, options, batch_size, draw)
    k = draw.k
    result: dict[str, Any] = {"posts": len(scores["model"]), "k": k, "seed": draw.seed}
    result |= {f"hits@1/{k}" if name == "model" else f"hits@1/{k} {name}": hits_at_1(table)
               for name, table in scores.items()}
    if draw.kind == "random" and generator.candidates.has_index:
        hard = hits_scores(generator, pairs, options, batch_size, replace(draw, kind="hard"))
        result |= {f"hard hits@1/{k}" if name == "model" else f"hard hits@1/{k} {name}":
                   hits_at_1(table) for name, table in hard.items()}
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
    chose for it (`DecodeSettings.rerank_options`), each per reply token too; and
    "dual-encoder" and "bm25" where the bundle has its dual encoder and retrieval index."""
    from nlp.generation.reply_scores import score_candidates

    scored = score_candidates(generator, pairs, draw, batch_size,
                              specificity=options.specificity)
    return scored.ranker_tables(options, generator.bundle.decoding)


METRICS: dict[str, Callable[..., dict[str, Any]]] = {
    "loss": lambda g, pairs, options, batch: loss_metrics(g, pairs, batch, options.specificity),
    "accuracy": lambda g, pairs, options, batch: accuracy_metrics(
        g, pairs, batch, options.specificity),
    "exact": exact_metrics,
    "bleu": bleu_metrics,
    "rouge": rouge_metrics,
    "chat": reply_metrics,
    "hits": hits_metrics,
}


def evaluate_metrics(
    generator: Generator,
    pairs: Sequence[Pair],
    metrics: Sequence[str],
    options: DecodeOptions,
    batch_size: int,
    draw: HitsDraw,
    similarity: str = "auto",
) -> dict[str, Any]:
    """Each of `metrics` (names in `METRICS`) on the pairs: Hits on the posts `draw` picks,
    its distractors drawn from every reply of `pairs`; the others on those posts' pairs
    (all of them without a limit). The one loop of `s2s evaluate` and `Model.evaluate`."""
    limited = [pairs[row] for row in draw.rows([p.group for p in pairs])]
    results: dict[str, Any] = {}
    for metric in metrics:
        if metric == "hits":
            results[metric] = METRICS[metric](generator, pairs, options, batch_size, draw)
        elif metric == "chat":
            results[metric] = METRICS[metric](generator, limited, options, batch_size, similarity)
        else:
            results[metric] = METRICS[metric](generator, limited, options, batch_size)
    return results
