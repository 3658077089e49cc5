"""`s2s evaluate` and `s2s attention` argument parsing."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nlp.generation.decode_args import ResolvedDecoding, add_decode_arguments, resolve_decoding
from nlp.generation.reply_choice import NOTHING_TO_SEND, ModelReads, yields_nothing
from nlp.metrics.hits import DEFAULT_K, HitsDraw
from nlp.training.command import add_corpus_arguments, corpus_spec
from nlp.util.arguments import positive_int

if TYPE_CHECKING:
    from nlp.generation.generator import Generator

METRIC_NAMES = ("loss", "accuracy", "exact", "bleu", "rouge", "chat", "hits")


def register(subparsers: Any) -> None:
    evaluate = subparsers.add_parser(
        "evaluate",
        help="score a model on a corpus",
        description="Score a model on a corpus: teacher-forced loss and perplexity (loss), "
        "teacher-forced next-token accuracy over target tokens, end token included, padding "
        "not (accuracy; the Keras tutorials also score their padding), exact match of the "
        "generated output (exact), corpus BLEU via sacrebleu, tokenize=zh for Chinese (bleu), "
        "ROUGE-1/2/L F1 beside the lead baselines (rouge), or chat replies: distinct-1/2, "
        "share of the 5 most frequent replies, share of replies echoing the input, BLEU-1/2 "
        '(sacrebleu, 0-100, tokenisation "zh" for Chinese, "13a" otherwise) against the '
        "reference reply, and mean reply length in words (characters for Chinese) (chat), or "
        "whether replies fit their posts: ConvAI2's Hits@1 of K, the share of posts whose true "
        "reply the model scores above K-1 replies drawn (seeded) from other pairs of the same "
        "file, by length-normalised likelihood, by each MMI re-ranking the bundle has "
        "companions for, by its dual encoder and by BM25 (hits). Chat replies are what the bot "
        "sends (its n-best, re-ranking and retrieved replies), with their embedding similarity "
        "to the reference and the share sent as retrieved.",
    )
    evaluate.add_argument("--model", type=Path, required=True, help="model bundle or run dir")
    add_corpus_arguments(evaluate)
    evaluate.add_argument(
        "--metric", choices=METRIC_NAMES, action="append", help="metric (repeatable; default: loss)"
    )
    evaluate.add_argument(
        "--limit", type=int, default=0,
        help="only N pairs, drawn at random (seeded by --hits-seed) across conversations, "
        "not the file's first N (0: all)",
    )
    evaluate.add_argument(
        "--similarity-vectors", default="auto", metavar="NAME|FILE",
        help="chat: word vectors of the embedding similarities to the reference (default: "
        "glove-6b-50d for English, none for Chinese; 'none': skip them)",
    )
    evaluate.add_argument(
        "--hits-k", type=int, default=DEFAULT_K,
        help=f"hits: candidates per post (default {DEFAULT_K})",
    )
    evaluate.add_argument("--hits-seed", type=int, default=0, help="hits: seed of the draw")
    evaluate.add_argument("--batch-size", type=positive_int, default=64,
                          help="inputs per decoder call")
    evaluate.add_argument("--json", type=Path, help="also write the results to this JSON file")
    add_decode_arguments(evaluate)
    evaluate.set_defaults(func=run_evaluate)

    attention = subparsers.add_parser(
        "attention",
        help="draw the attention heatmap of one output",
        description="Generate an output for --text and save the attention of every output "
        "token over the source tokens as a PNG heatmap. Where the output is a retrieved "
        "reply (a chat model's, which no decoder wrote), the picture is the model's attention "
        "while it reads the text and is fed the reply's tokens (teacher-forced), and says so.",
    )
    attention.add_argument("--model", type=Path, required=True, help="model bundle or run dir")
    attention.add_argument("--text", required=True, help="the input text")
    attention.add_argument("--out", type=Path, required=True, help="PNG file to write")
    add_decode_arguments(attention)
    attention.set_defaults(func=run_attention)


def run_evaluate(args: argparse.Namespace) -> int:
    from nlp.evaluation.evaluate import evaluate_metrics
    from nlp.generation.loading import load_generator
    from nlp.training.corpus_io import load_pairs

    generator = load_generator(args.model, jit_compile=args.xla)
    options = _decoding(args, generator).options
    pairs = load_pairs(corpus_spec(args.corpus, args), generator.config.data)
    # Hits@K draws its distractors from every reply of the file, --limit or not.
    draw = HitsDraw(args.hits_k, args.hits_seed, args.limit)
    results = evaluate_metrics(generator, pairs, args.metric or ["loss"], options,
                               args.batch_size, draw, args.similarity_vectors)
    # what was measured, so a results file says it (the decoding reads only where a metric
    # decodes; scores of given replies read none of it)
    results["measured"] = {
        "model": str(args.model), "corpus": [str(path) for path in args.corpus],
        "pairs": len(pairs), "limit": args.limit, "decoding": dataclasses.asdict(options)}
    text = json.dumps(results, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", "utf-8")
    return 0


def run_attention(args: argparse.Namespace) -> int:
    from nlp.chat.attention_plot import plot_text, render_attention_png
    from nlp.generation.loading import load_generator

    generator = load_generator(args.model, jit_compile=args.xla)
    options = _decoding(args, generator).options
    [n_best] = generator.generate([args.text], options)
    if not n_best:
        reads = ModelReads.of(generator.config.data)
        why = NOTHING_TO_SEND if yields_nothing(options, reads) else (
            f"{args.text!r} has no tokens to attend to")
        print(f"s2s attention: {why}", file=sys.stderr)
        return 1
    best = generator.with_attention(n_best[0])
    text = plot_text(generator.config.data.task, best.provenance)
    png = render_attention_png(
        best.source_tokens, best.tokens, best.attention, slots=best.slots, text=text
    )
    args.out.write_bytes(png)
    if best.provenance == "retrieved":
        print(f"{best.text}\n(a retrieved reply, training pair {best.pair}: the model did not "
              f"write it; {args.out} is its attention while scoring it, teacher-forced)")
    else:
        print(f"{best.text}\n(attention heatmap written to {args.out})")
    return 0


def _decoding(args: argparse.Namespace, generator: Generator) -> ResolvedDecoding:
    """The model's recommended settings with the flags on top, announced on stderr."""
    resolved = resolve_decoding(args, generator.bundle.decoding)
    print(resolved.describe(), file=sys.stderr)
    return resolved
