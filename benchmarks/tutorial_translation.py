"""The Keras `lstm_seq2seq` tutorial through this project, and the four decoder modes.

Part 1 (the tutorial): English -> Chinese, character level, on the first 10,000 Tatoeba
pairs of `cmn.txt`, the first 8,000 for training and the last 2,000 for validation (Keras'
`validation_split=0.2` takes the last 20%), trained by the same `train()` `s2s train` calls,
`tokenizer.kind=chars` with `latin_chars=true`, at most 10 epochs. Reports the validation
token accuracy (`s2s evaluate --metric accuracy`, the tutorial's val_accuracy) beside the
tutorial's 0.74, BLEU (sacrebleu, tokenize=zh; the tutorial reports none) of greedy
decoding, the epochs and minutes, and 10 example translations.

Part 2 (the decoder modes of the Keras seq2seq write-ups), each at the same small budget:
basic (attention=none: the decoder sees the source only through its initial state),
feedback (attention=none + input feeding: the previous output vector is fed back),
peek (attention=none + peek: the encoder summary joins every decoder input) and attention
(Luong general attention with input feeding, the default). Every decoder here also reads
its previous token. Scored on integer reversal (6 integers in 1..50 -> the first 3
reversed, exact match of 200 fresh inputs) and on the translation task (token accuracy).

    python -m benchmarks.tutorial_translation [--epochs 10] [--mode-epochs 3]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table, write_json
from benchmarks.quality import SHARED
from nlp.config import ExperimentConfig
from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.evaluation.evaluate import accuracy_metrics, bleu_metrics, generate_all
from nlp.generator import Generator
from nlp.training.corpus_io import CorpusSpec
from nlp.training.run import RunOptions, train, write_pairs

CORPUS = SHARED / "translation" / "tatoeba-cmn-eng" / "cmn.txt"
TUTORIAL_ACCURACY = 0.74
PAIRS, TRAIN_PAIRS = 10_000, 8_000
TRANSLATION = [
    "tokenizer.kind=chars",
    "tokenizer.latin_chars=true",
    "vocab.max_size=8000",
    "model.embedding_dim=128",
    "model.units=256",
    "model.dropout=0.2",
    "train.batch_size=64",
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


def tatoeba_split(work: Path) -> tuple[CorpusSpec, CorpusSpec, list[Pair]]:
    """The tutorial's data: first 10,000 lines, first 8,000 train, last 2,000 validation."""
    lines = CORPUS.read_text("utf-8").splitlines()[:PAIRS]
    pairs = [Pair(*line.split("\t")[:2]) for line in lines]
    write_pairs(pairs[:TRAIN_PAIRS], work / "train.jsonl")
    write_pairs(pairs[TRAIN_PAIRS:], work / "valid.jsonl")
    return (CorpusSpec((work / "train.jsonl",), "jsonl"),
            CorpusSpec((work / "valid.jsonl",), "jsonl"), pairs[TRAIN_PAIRS:])  # fmt: skip


def train_run(
    settings: list[str], train_spec: CorpusSpec, valid_spec: CorpusSpec | None, out: Path
) -> tuple[Generator, dict[str, Any]]:
    config = ExperimentConfig().with_overrides(settings)
    started = time.monotonic()
    state = train(config, train_spec, RunOptions(out, verbose=0), valid_corpus=valid_spec)
    info = {"epochs": state.epoch, "best_epoch": state.best_epoch,
            "minutes": round((time.monotonic() - started) / 60, 2)}  # fmt: skip
    return Generator.from_bundle(out / "model"), info


def tutorial(work: Path, epochs: int) -> dict[str, Any]:
    train_spec, valid_spec, valid = tatoeba_split(work)
    generator, info = train_run([*TRANSLATION, f"train.epochs={epochs}"], train_spec,
                                valid_spec, work / "tutorial")  # fmt: skip
    accuracy = accuracy_metrics(generator, valid, batch_size=64)
    bleu = bleu_metrics(generator, valid, GREEDY, batch_size=64)
    shown = valid[:: len(valid) // 10][:10]
    outputs = generate_all(generator, [p.source for p in shown], GREEDY, 10)
    examples = [{"source": p.source, "reference": p.target, "output": o}
                for p, o in zip(shown, outputs, strict=True)]  # fmt: skip
    return {**info, "token_accuracy": round(accuracy["token_accuracy"], 4),
            "tutorial_token_accuracy": TUTORIAL_ACCURACY, "bleu": bleu["bleu"],
            "bleu_signature": bleu["signature"], "examples": examples}  # fmt: skip


def integer_pair(rng: random.Random) -> Pair:
    numbers = [str(rng.randint(1, 50)) for _ in range(6)]
    return Pair(" ".join(numbers), " ".join(reversed(numbers[:3])))


def modes(work: Path, epochs: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    write_pairs([integer_pair(rng) for _ in range(3000)], work / "reversal.jsonl")
    fresh = [integer_pair(rng) for _ in range(200)]
    reversal_spec = CorpusSpec((work / "reversal.jsonl",), "jsonl")
    train_spec, valid_spec, valid = tatoeba_split(work)
    rows = []
    for name, settings in MODES.items():
        generator, info = train_run([*REVERSAL, *settings, f"train.epochs={epochs}"],
                                    reversal_spec, None, work / f"reversal-{name}")  # fmt: skip
        outputs = generate_all(generator, [p.source for p in fresh], GREEDY, 64)
        exact = sum(o == p.target for o, p in zip(outputs, fresh, strict=True)) / len(fresh)
        row = {"mode": name, "reversal_exact": exact, "reversal_minutes": info["minutes"]}
        generator, info = train_run([*TRANSLATION, *settings, f"train.epochs={epochs}"],
                                    train_spec, valid_spec, work / f"cmn-{name}")  # fmt: skip
        accuracy = accuracy_metrics(generator, valid, batch_size=64)["token_accuracy"]
        row.update(cmn_token_accuracy=round(accuracy, 4), cmn_minutes=info["minutes"])
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="tutorial run (at most 10)")
    parser.add_argument("--mode-epochs", type=int, default=2, help="each decoder mode's budget")
    parser.add_argument("--skip-modes", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result: dict[str, Any] = {"tutorial": tutorial(work, args.epochs)}
        report = result["tutorial"]
        print(f"validation token accuracy {report['token_accuracy']:.3f} "
              f"(tutorial: {TUTORIAL_ACCURACY}), BLEU {report['bleu']} (tutorial: none "
              f"reported), {report['epochs']} epochs, {report['minutes']} minutes")  # fmt: skip
        for example in report["examples"]:
            print(f"  {example['source']} -> {example['output']}  (ref {example['reference']})")
        if not args.skip_modes:
            result["modes"] = {"epochs": args.mode_epochs, "rows": modes(work, args.mode_epochs)}
            print(format_table(result["modes"]["rows"], [
                ("mode", "decoder"), ("reversal_exact", "reversal exact match"),
                ("cmn_token_accuracy", "en->zh token accuracy"),
                ("reversal_minutes", "reversal min"), ("cmn_minutes", "en->zh min")]))  # fmt: skip
    write_json(RESULTS_DIR / "tutorial_translation.json", result)


if __name__ == "__main__":
    main()
