"""`make demo`: train four small models on the shipped sample corpora, then use them.

Runs the real command line (`s2s train`, `s2s headlines`, `s2s chat`) as a user would, so
the demo shows the commands to copy. The sample corpora hold a few hundred pairs; training
holds a seeded 5% out for validation, and the demo's inputs are ones it trained on: it shows
what the model learned, not how it generalises (see README: benchmarks for figures on real
corpora). Every model answers with its bundle's own settings, the defaults a user gets: for
the chat models, a retrieved reply where its post matches the message well, else the model's
own beam-search reply.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

COMMON = [
    "model.embedding_dim=64",
    "model.units=128",
    "train.batch_size=16",
    "train.patience=100",
    "train.checkpoint_every=100000",
    "train.select_by=last",  # a few held-out pairs cannot pick an epoch: keep the last one
]
# The chat preset's plateau schedule goes back to the lowest-validation-loss epoch and halves
# the rate whenever an epoch does not lower it. On 17 held-out chit-chat pairs that is nearly
# every epoch after the first few, so training stalled in an underfit model ("， ， ，"); the
# demo wants the training pairs learnt, so it keeps the rate and leaves dropout out.
LEARN_THE_SAMPLES = ["train.lr_schedule=constant", "model.dropout=0.0", "train.learning_rate=0.005"]
HEADLINE_TRAINING = ["model.dropout=0.1", "train.learning_rate=0.003"]
MODELS: dict[str, tuple[int, str, list[str]]] = {
    # name: (epochs, task preset, settings on top of COMMON and the preset)
    "dialogue-en": (40, "chat", ["tokenizer.kind=words", *LEARN_THE_SAMPLES]),
    "dialogue-zh": (40, "chat", ["tokenizer.kind=jieba", *LEARN_THE_SAMPLES]),
    "headlines-en": (
        25,
        "headline",  # the README's headline recipe: chars/words, placeholders, copy, ROUGE-L
        [
            *HEADLINE_TRAINING,
            "tokenizer.lowercase=false",  # headlines keep their capitals (names, places)
            "vocab.min_freq=1",  # a tiny corpus: keep every word
            "train.max_source_length=120",
        ],
    ),
    "headlines-zh": (
        25, "headline", [*HEADLINE_TRAINING, "vocab.min_freq=1", "train.max_source_length=120"]
    ),
}
CHAT_INPUTS = {  # posts of the sample corpora, then /why: the attention picture's path
    "dialogue-en": [
        "Hi, how are you?",
        "Good morning, everyone!",
        "Nice to meet you.",
        "/why",
    ],
    "dialogue-zh": [
        "早上好！",
        "你好，很高兴认识你。",
        "好久不见，最近怎么样？",
        "/why",
    ],
}
HEADLINE_ARTICLES = 3


def run(command: list[str], *, stdin: str | None = None) -> str:
    print(f"\n$ {shlex.join(command)}", flush=True)
    result = subprocess.run(
        command, cwd=REPO, input=stdin, text=True, stdout=subprocess.PIPE, check=False
    )
    if result.returncode != 0:
        sys.exit(f"demo: command failed with exit code {result.returncode}")
    return result.stdout


def s2s(*args: str) -> list[str]:
    return [sys.executable, "-m", "s2s.cli", *args]


def train(name: str, work: Path, epochs_scale: float) -> Path:
    epochs, task, settings = MODELS[name]
    corpus = f"corpora/{name}.jsonl"
    out = work / name
    sets = [f"--set={s}" for s in [*COMMON, *settings]]
    run(
        s2s(
            "train",
            "--corpus",
            corpus,
            "--out",
            str(out),
            "--quiet",
            "--task",
            task,
            "--epochs",
            str(max(1, round(epochs * epochs_scale))),
            *sets,
        )
    )
    return out / "model"


def headlines(name: str, model: Path, work: Path) -> None:
    articles = [
        json.loads(line)
        for line in (REPO / "corpora" / f"{name}.jsonl").read_text("utf-8").splitlines()
    ][::40][:HEADLINE_ARTICLES]
    batch = work / f"{name}-articles.jsonl"
    batch.write_text(
        "".join(
            json.dumps({"id": f"a{i}", "article": a["source"]}, ensure_ascii=False) + "\n"
            for i, a in enumerate(articles)
        ),
        "utf-8",
    )
    output = run(
        s2s(
            "headlines",
            "--model",
            str(model),
            str(batch),
            "-o",
            "-",
            "--quiet",  # no decoding flags: the bundle's settings, as a user gets them
        )
    )
    for article, line in zip(articles, output.splitlines(), strict=False):
        record = json.loads(line)
        print(f"  article:   {article['source'][:90]}...")
        print(f"  reference: {article['target']}")
        print(f"  generated: {record.get('headline', record.get('error'))}\n")


def chat(name: str, model: Path, work: Path) -> None:
    lines = "\n".join(CHAT_INPUTS[name]) + "\n"
    state = work / f"{name}-chat.sqlite"
    state.unlink(missing_ok=True)  # a fresh conversation: no settings left from an earlier demo
    print(
        run(
            s2s(
                "chat",
                "--model",
                str(model),
                "--state",
                str(state),
                "--why-dir",
                str(work / name),
            ),
            stdin=lines,
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("runs/demo"), help="output directory")
    parser.add_argument(
        "--epochs-scale",
        type=float,
        default=1.0,
        help="multiply every model's epochs (smaller: faster, worse)",
    )
    args = parser.parse_args()
    work = (REPO / args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for name in MODELS:
        model = train(name, work, args.epochs_scale)
        if name.startswith("headlines"):
            headlines(name, model, work)
        else:
            chat(name, model, work)
    print(f"demo finished in {time.monotonic() - started:.0f} s; models in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
