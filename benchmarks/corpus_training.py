"""Training on the large corpora: the share of the machine's matmul peak that real batches
reach, and what the data path costs per step.

`benchmarks.train_throughput` measures the model on synthetic batches of one shape;
`benchmarks.data_pipeline` measures what `s2s train` does before its first step. Neither says
whether, once training runs on a real corpus, the steps still reach that share of peak and
the batches arrive in time. This does, per corpus of `benchmarks.data_pipeline` (the same
definitions: files, task preset, `--set` values), in a fresh process each:

1. prepare the corpus as `s2s train` does (`prepare_examples`; timed, as `prepare s`), build
   the model in the dtypes `s2s train` gives it on this machine (`train.precision`);
2. take the first `--steps` batches of the first epoch's plan (the length-bucketed, shuffled
   batches `Trainer.fit` trains on, in its order) and train on them once, untimed, so every
   batch shape is compiled;
3. `steps only`: train on those batches again, built beforehand: the step's own cost;
4. `as fit feeds them`: train on them again, each batch assembled from the examples just
   before its step (`EncodedExamples.batch`, in the training thread, as `Trainer.fit` does);
   both 3 and 4 read the loss back every `train.log_every` steps, as `fit` does.

`data share` = (4 - 3) / 4: the part of a training step that waits for its batch. GFLOP/s
counts each batch's model FLOPs from its padded shape (`train_flops_per_sample`, the formula of
`benchmarks.train_throughput`); `peak share` is that rate (of 4, what `s2s train` gets) over a
2048^3 float32 TensorFlow matmul timed before and after in the same run (the larger of the two).
Pretrained vectors change no step's cost and are left out. `epochs in 20 min` is what a
recipe's 20-minute budget trains at that rate (batches of the whole first epoch's plan).
`--set` changes every row's settings, `--variant NAME=K=V,K=V` adds a row per corpus with
more settings, measured in the same run (a row with `train.sampled_softmax` does less than
the FLOPs counted, so compare its epochs, not its GFLOP/s).

    python -m benchmarks.corpus_training [--only NAME] [--steps 60] [--set K=V ...]
        [--variant NAME=K=V,K=V ...] [--profile N]

Writes benchmarks/results/corpus_training.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, format_table, run_isolated, write_json
from benchmarks.data_pipeline import Corpus, corpora, corpus_config, read_corpus
from benchmarks.train_throughput import matmul_peak, train_flops_per_sample

RESULTS = RESULTS_DIR / "corpus_training.json"


def measure(
    corpus: Corpus, steps: int, extra: Sequence[str] = (), profile: int = 0
) -> dict[str, Any]:
    """Steps 1-4 of the module docstring for one corpus (run in a fresh process), and with
    `profile` N, N of those steps traced once more (after the timed runs, so the trace's own
    cost is in none of their figures)."""
    from nlp.model import Seq2Seq
    from nlp.training.corpus_io import train_valid
    from nlp.training.data import EncodedExamples
    from nlp.training.precision import ProductSizes, policy_scope, resolve
    from nlp.training.prepare import prepare_examples
    from nlp.training.trainer import Trainer

    config = corpus_config(corpus).with_overrides(list(extra))
    started = time.perf_counter()
    train, valid = train_valid(
        read_corpus(corpus, config), None, config.train.valid_fraction, config.train.seed
    )
    codec, examples, _, _ = prepare_examples(config, train, valid)
    prepare_s = time.perf_counter() - started
    config = replace(config, model=replace(config.model, vocab_size=len(codec.vocab)))
    precision, _ = resolve(config.train.precision, ProductSizes.of(config))
    with policy_scope(precision.policy):
        model = Seq2Seq(config.model, precision.products)
    trainer = Trainer(model, config.train, Path(tempfile.mkdtemp()), verbose=0)
    training = EncodedExamples(examples)
    whole = training.plan(trainer.batching, seed=config.train.seed, epoch=0)
    plan = whole[:steps]
    built = [training.batch(indices) for indices in plan]
    every = max(1, config.train.log_every)

    # the first batches' step as `Trainer.fit` runs it: before a staged ranking loss joins
    # (train.contrastive_from), the likelihood's alone
    step = trainer.likelihood_batch

    def run(batches: Any) -> float:
        start = time.perf_counter()
        pending = []
        for batch in batches:
            pending.append(step(*batch))
            if len(pending) >= every:  # read back, as `Trainer.fit` reports them
                read_back(pending)
                pending = []
        read_back(pending)
        return time.perf_counter() - start

    run(built)  # compiles every batch shape
    alone = run(built)
    fed = run(training.batch(indices) for indices in plan)
    traced = {}
    if profile:
        from benchmarks.op_profile import breakdown, trace

        profiled = built[:profile]
        start = time.perf_counter()
        xplane = trace(lambda: read_back([step(*batch) for batch in profiled]))
        traced = {"profile": breakdown(xplane, time.perf_counter() - start, len(profiled))}
    tokens = sum(int((target_out != 0).sum()) for _, _, target_out in built)
    flops = sum(
        len(source) * train_flops_per_sample(config.model, source.shape[1], target.shape[1] - 1)
        for source, target, _ in built
    )
    return {
        "corpus": corpus.name,
        "task": corpus.task,
        "settings": [*corpus.settings, *extra],
        "training_examples": len(examples),
        "vocabulary": len(codec.vocab),
        "products": precision.products or "float32",
        "prepare_s": round(prepare_s, 1),
        "steps": len(built),
        "mean_batch_shape": [
            round(sum(b[0].shape[1] for b in built) / len(built), 1),
            round(sum(b[1].shape[1] for b in built) / len(built), 1),
        ],
        "ms_per_step_alone": 1000 * alone / len(built),
        "ms_per_step_fed": 1000 * fed / len(built),
        "data_share": max(0.0, (fed - alone) / fed),
        "target_tokens_per_s": tokens / fed,
        "achieved_gflops": flops / fed / 1e9,
        # what a recipe's 20-minute budget trains at this rate: the epochs `--set` changes
        "batches_per_epoch": len(whole),
        "epochs_in_20_min": 1200 / (fed / len(built)) / len(whole),
        **traced,
    }


def read_back(losses: list[Any]) -> float:
    """The losses' sum on the host: waits for every step that produced them."""
    return sum(float(loss) for loss in losses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=[c.name for c in corpora()])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of every corpus's config (repeat it); with --variant "
                             "NAME=K=V,K=V more rows with other settings, in the same run")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=SETTINGS")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also trace N of the steps with tf.profiler and print where "
                             "their time goes by kind of op (benchmarks.op_profile)")
    args = parser.parse_args()
    chosen = [c for c in corpora() if not args.only or c.name in args.only]
    peaks = [run_isolated(matmul_peak, 2048, 10, "float32")]
    variants = [("as set", list(args.set))] + [
        (name, [*args.set, *settings.split(",")])
        for name, _, settings in (text.partition("=") for text in args.variant)
    ]
    rows = []
    for corpus in chosen:
        if not corpus.present():
            print(f"{corpus.name}: not found, skipped")
            continue
        for name, extra in variants:
            measured = run_isolated(measure, corpus, args.steps, extra, args.profile)
            rows.append({"variant": name, **measured})
            print(rows[-1], flush=True)
    peaks.append(run_isolated(matmul_peak, 2048, 10, "float32"))
    peak = max(peaks)  # the shares are then lower bounds
    for row in rows:
        row["peak_share"] = row["achieved_gflops"] / peak
    print(f"matmul peak (2048^3 float32): {peaks[0]:.0f} GFLOP/s before, {peaks[1]:.0f} after")
    print(format_table(rows, [
        ("corpus", "corpus"), ("variant", "variant"), ("training_examples", "training pairs"),
        ("products", "products in"), ("prepare_s", "prepare s"),
        ("mean_batch_shape", "mean source x target"),
        ("ms_per_step_alone", "ms/step, steps only"), ("ms_per_step_fed", "ms/step, as fit"),
        ("data_share", "data share"), ("target_tokens_per_s", "target tokens/s"),
        ("achieved_gflops", "GFLOP/s"), ("peak_share", "peak share"),
        ("epochs_in_20_min", "epochs in 20 min"),
    ]))
    profiled = [row for row in rows if "profile" in row]
    if profiled:
        from benchmarks.op_profile import print_profiles

        print_profiles(profiled, [("corpus", "corpus"), ("variant", "variant")])
    write_json(args.out, {"matmul_peak_gflops": peaks, "steps": args.steps, "rows": rows})


if __name__ == "__main__":
    main()
