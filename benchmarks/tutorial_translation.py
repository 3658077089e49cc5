"""The Keras `lstm_seq2seq` tutorial through this project, and the four decoder modes.

Part 1 (the tutorial): English -> Chinese, character level, on the first 10,000 Tatoeba
pairs of `cmn.txt`, the first 8,000 for training and the last 2,000 for validation (Keras'
`validation_split=0.2` takes the last 20%), trained by the same `train()` `s2s train` calls,
`tokenizer.kind=chars` with `latin_chars=true`, at most 10 epochs. Reports the validation
token accuracy in two definitions, BLEU (sacrebleu, tokenize=zh; the tutorial reports none)
of greedy decoding, the epochs and minutes, and 10 example translations.

The two accuracies (both teacher-forced, argmax next token, the same model and pairs):
- `token_accuracy` (`s2s evaluate --metric accuracy`): over the real target positions only,
  the end token included, padding not.
- `tutorial_style_accuracy`: as the tutorial's Keras `metrics=["accuracy"]` counts it. The
  tutorial pads every decoder target to the longest target of its 10,000 pairs plus 2 (its
  start and end markers) with a space character, and has no mask, so every padded position
  is scored too; its model learns "space after the end marker, space after a space" almost
  surely, so those positions are nearly free hits. Here each validation pair is scored over
  the same length L (longest target of the 10,000 pairs in our tokens, plus 2), its padded
  positions counted as hits (our model is never trained on padding, so they are not
  predicted but credited, which is what the tutorial's model earns on them). This is the
  figure to set beside the tutorial's 0.74; `padding_share` says how much of it is padding.

Part 2 (the decoder modes of the Keras seq2seq write-ups), each at the same budgets (10
epochs of integer reversal, 2 of translation by default; 2 epochs of the small reversal
corpus taught no mode anything):
basic (attention=none: the decoder sees the source only through its initial state),
feedback (attention=none + input feeding: the previous output vector is fed back),
peek (attention=none + peek: the encoder summary joins every decoder input) and attention
(Luong general attention with input feeding, the default). Every decoder here also reads
its previous token. Scored on integer reversal (6 integers in 1..50 -> the first 3
reversed, exact match of 200 fresh inputs) and on the translation task (token accuracy).

    python -m benchmarks.tutorial_translation [--epochs 10] [--mode-epochs 2]
        [--reversal-epochs 10] [--skip-modes] [--skip-tutorial]
        [--set section.key=value ...]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table, write_json
from benchmarks.quality import SHARED
from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.evaluation.evaluate import accuracy_metrics, bleu_metrics
from nlp.generation.generator import Generator, generate_all
from nlp.training.corpus_io import CorpusSpec
from nlp.training.prepare import examples_of
from nlp.training.run import RunOptions, train, write_pairs
from nlp.util.config import ExperimentConfig

CORPUS = SHARED / "translation" / "tatoeba-cmn-eng" / "cmn.txt"
TUTORIAL_ACCURACY = 0.74
PAIRS, TRAIN_PAIRS = 10_000, 8_000
TRANSLATION = [
    "tokenizer.kind=chars",
    "tokenizer.latin_chars=true",
    "vocab.max_size=8000",
    "model.embedding_dim=128",
    "model.units=256",
    "model.dropout=0.5",
    "train.batch_size=32",
    "train.learning_rate=0.003",
    "train.patience=10",
    "train.checkpoint_every=1000",
]
MODES = {
    "basic": ["model.attention=none", "model.input_feeding=false"],
    "feedback": ["model.attention=none", "model.input_feeding=true"],
    "peek": ["model.attention=none", "model.input_feeding=false", "model.peek=true"],
    "attention": ["model.attention=general", "model.input_feeding=true"],
}
REVERSAL = [
    "model.units=32",
    "model.embedding_dim=32",
    "model.dropout=0.0",
    "train.batch_size=64",
    "train.learning_rate=0.005",
    "train.patience=10",
]
GREEDY = DecodeOptions(strategy="greedy", max_length=40)


def tatoeba_pairs() -> list[Pair]:
    """The tutorial's data: the first 10,000 lines of cmn.txt."""
    lines = CORPUS.read_text("utf-8").splitlines()[:PAIRS]
    return [Pair(*line.split("\t")[:2]) for line in lines]


def tatoeba_split(work: Path) -> tuple[CorpusSpec, CorpusSpec, list[Pair]]:
    """First 8,000 of the 10,000 pairs for training, the last 2,000 for validation."""
    pairs = tatoeba_pairs()
    write_pairs(pairs[:TRAIN_PAIRS], work / "train.jsonl")
    write_pairs(pairs[TRAIN_PAIRS:], work / "valid.jsonl")
    return (CorpusSpec((work / "train.jsonl",), "jsonl"),
            CorpusSpec((work / "valid.jsonl",), "jsonl"), pairs[TRAIN_PAIRS:])  # fmt: skip


def tutorial_style_accuracy(
    generator: Generator, valid: list[Pair], accuracy: dict[str, float]
) -> dict[str, float]:
    """The real-position accuracy restated over the tutorial's padded length (module doc).

    L = longest target of the 10,000 pairs (our tokens) + 2, as the tutorial's
    `max_decoder_seq_length` (its target text with start and end markers). A pair with n
    target tokens has n + 1 real positions (the end token) and L - n - 1 padded ones,
    credited as hits.
    """
    length = max(len(t) for _, t in examples_of(generator.codec, tatoeba_pairs())) + 2
    examples = examples_of(generator.codec, valid)
    positions = length * len(examples)
    padded = positions - int(accuracy["tokens"])
    hits = accuracy["token_accuracy"] * accuracy["tokens"] + padded
    return {"tutorial_style_accuracy": round(hits / positions, 4),
            "padded_length": length, "padding_share": round(padded / positions, 4),
            # what the tutorial's 0.74 would be on the real positions, were its padding
            # hits perfect and its padding share the same as here
            "tutorial_real_position_equivalent": round(
                (TUTORIAL_ACCURACY * positions - padded) / accuracy["tokens"], 4)}  # fmt: skip


def train_run(
    settings: list[str], train_spec: CorpusSpec, valid_spec: CorpusSpec | None, out: Path
) -> tuple[Generator, dict[str, Any]]:
    config = ExperimentConfig().with_overrides(settings)
    started = time.monotonic()
    state = train(config, train_spec, RunOptions(out, verbose=0), valid_corpus=valid_spec)
    info = {"epochs": state.epoch, "best_epoch": state.best_epoch,
            "minutes": round((time.monotonic() - started) / 60, 2),
            "valid_loss": [record["valid_loss"] for record in state.history]}  # fmt: skip
    return Generator.from_bundle(out / "model"), info


def tutorial(work: Path, epochs: int, extra: list[str]) -> dict[str, Any]:
    train_spec, valid_spec, valid = tatoeba_split(work)
    settings = [*TRANSLATION, f"train.epochs={epochs}", *extra]
    generator, info = train_run(settings, train_spec, valid_spec, work / "tutorial")
    accuracy = accuracy_metrics(generator, valid, batch_size=64)
    tutorial_style = tutorial_style_accuracy(generator, valid, accuracy)
    bleu = bleu_metrics(generator, valid, GREEDY, batch_size=64)
    shown = valid[:: len(valid) // 10][:10]
    outputs = generate_all(generator, [p.source for p in shown], GREEDY, 10)
    examples = [{"source": p.source, "reference": p.target, "output": o}
                for p, o in zip(shown, outputs, strict=True)]  # fmt: skip
    return {"settings": settings, **info,
            "token_accuracy": round(accuracy["token_accuracy"], 4), **tutorial_style,
            "tutorial_token_accuracy": TUTORIAL_ACCURACY, "bleu": bleu["bleu"],
            "bleu_signature": bleu["signature"], "examples": examples}  # fmt: skip


def integer_pair(rng: random.Random) -> Pair:
    numbers = [str(rng.randint(1, 50)) for _ in range(6)]
    return Pair(" ".join(numbers), " ".join(reversed(numbers[:3])))


def modes(work: Path, epochs: int, reversal_epochs: int) -> Iterator[dict[str, Any]]:
    """One row per decoder mode, as each is measured: every mode gets `reversal_epochs` on
    integer reversal and `epochs` on translation."""
    rng = random.Random(7)
    write_pairs([integer_pair(rng) for _ in range(3000)], work / "reversal.jsonl")
    fresh = [integer_pair(rng) for _ in range(200)]
    reversal_spec = CorpusSpec((work / "reversal.jsonl",), "jsonl")
    train_spec, valid_spec, valid = tatoeba_split(work)
    for name, settings in MODES.items():
        generator, info = train_run([*REVERSAL, *settings, f"train.epochs={reversal_epochs}"],
                                    reversal_spec, None, work / f"reversal-{name}")  # fmt: skip
        outputs = generate_all(generator, [p.source for p in fresh], GREEDY, 64)
        exact = sum(o == p.target for o, p in zip(outputs, fresh, strict=True)) / len(fresh)
        row = {"mode": name, "reversal_exact": exact, "reversal_minutes": info["minutes"]}
        if epochs > 0:  # 0: integer reversal only
            generator, info = train_run([*TRANSLATION, *settings, f"train.epochs={epochs}"],
                                        train_spec, valid_spec, work / f"cmn-{name}")  # fmt: skip
            accuracy = accuracy_metrics(generator, valid, batch_size=64)["token_accuracy"]
            row.update(cmn_token_accuracy=round(accuracy, 4), cmn_minutes=info["minutes"])
        print(row, flush=True)
        yield row


def print_tutorial(report: dict[str, Any]) -> None:
    """The tutorial run's figures beside the tutorial's, and its example translations."""
    print(f"validation token accuracy, real positions (end token in, padding out): "
          f"{report['token_accuracy']:.3f}\n"
          f"validation token accuracy, the tutorial's definition (padded to "
          f"{report['padded_length']}, {report['padding_share']:.0%} padding): "
          f"{report['tutorial_style_accuracy']:.3f} (tutorial: {TUTORIAL_ACCURACY}; "
          f"on real positions that is about "
          f"{report['tutorial_real_position_equivalent']:.3f})\n"
          f"BLEU {report['bleu']} (tutorial: none reported), {report['epochs']} epochs, "
          f"{report['minutes']} minutes")  # fmt: skip
    for example in report["examples"]:
        print(f"  {example['source']} -> {example['output']}  (ref {example['reference']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="tutorial run (at most 10)")
    parser.add_argument(
        "--mode-epochs", type=int, default=2, help="each mode's translation budget (0: none)"
    )
    parser.add_argument(
        "--reversal-epochs", type=int, default=10, help="each mode's budget on integer reversal"
    )
    parser.add_argument("--skip-modes", action="store_true")
    parser.add_argument("--skip-tutorial", action="store_true", help="only the decoder modes")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a setting of the tutorial run (after the benchmark's)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS_DIR / "tutorial_translation.json",
        help="where the JSON goes (default: benchmarks/results/tutorial_translation.json)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result: dict[str, Any] = {}
        if not args.skip_tutorial:
            result["tutorial"] = tutorial(work, args.epochs, args.set)
            print_tutorial(result["tutorial"])
            write_json(args.results, result)  # the tutorial's figures survive a cut-short run
        if not args.skip_modes:
            rows: list[dict[str, Any]] = []
            result["modes"] = {"epochs": args.mode_epochs,
                                "reversal_epochs": args.reversal_epochs, "rows": rows}  # fmt: skip
            for row in modes(work, args.mode_epochs, args.reversal_epochs):
                rows.append(row)
                write_json(args.results, result)
            print(format_table(rows, [
                ("mode", "decoder"), ("reversal_exact", "reversal exact match"),
                ("cmn_token_accuracy", "en->zh token accuracy"),
                ("reversal_minutes", "reversal min"), ("cmn_minutes", "en->zh min")]))  # fmt: skip


if __name__ == "__main__":
    main()
