"""`s2s train` and `s2s retrain`: from corpora to a model bundle (a training resumable).

A run directory holds: `model/` (the best bundle so far, replaced atomically), `checkpoint/`
(the latest resumable state), `logs/` (TensorBoard), `run/` (the config and text pipeline
fixed at the start, so `--resume` uses the same vocabulary) and `valid.jsonl`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from nlp.control import SpecificityBuckets, marked_groups
from nlp.corpus.pipeline import write_jsonl
from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.filtering import EntropyFilter
from nlp.generation.bundle import (
    MODEL_SUBDIR,
    Bundle,
    load_bundle,
    save_bundle,
    store_companions,
)
from nlp.generation.codec import TextCodec, count_tokens
from nlp.generation.decode_settings import DecodeSettings, task_defaults
from nlp.model import Seq2Seq
from nlp.model.language_models import EncoderLMHeads
from nlp.model.seq2seq import check_config
from nlp.retrieval import INDEX_DIR, ReplyIndex
from nlp.tokenizers.specials import UNK_ID
from nlp.training.checkpoint import TrainState, variable_paths
from nlp.training.corpus_io import (
    CorpusSpec,
    check_context,
    corpus_fingerprint,
    load_pairs,
    run_validation_pairs,
    sample,
    split,
    train_valid,
    without,
)
from nlp.training.data import Example, cut_targets
from nlp.training.objective import Objective, check_with_model, inverse_frequency_weights
from nlp.training.objective import check as check_objective
from nlp.training.optim import check_schedule
from nlp.training.precision import Precision, ProductSizes, policy_scope, the_chiefs
from nlp.training.precision import resolve as resolve_precision
from nlp.training.prepare import (
    encode_examples,
    prepare_examples,
    tokenize_pairs,
    workers_for,
)
from nlp.training.pretrained import (
    Pretrained,
    check_compatible,
    initialise,
    load_heads,
    load_pretrained,
    pretrained_codec,
)
from nlp.training.reply_index import (
    added_parts,
    build_index,
    draft_replies,
    ranker_parts,
    store_rankers,
    with_drafts,
    without_logs,
)
from nlp.training.trainer import Hooks, LossMeter, Selection, Trainer, batching_for
from nlp.util.config import SAFE_ON_RESUME, DataConfig, ExperimentConfig
from nlp.util.fsutil import same_path, write_text_atomic

if TYPE_CHECKING:
    from nlp.vectors.rows import PretrainedRows

RUN_SUBDIR = "run"
VALID_FILE = "valid.jsonl"
SELECT_BY = ("loss", "rouge", "last")  # train.select_by
CONFIG_FILE = "config.json"
PRECISION_FILE = "precision.json"  # the dtypes the run computes in (training_precision)
OLD_VALID_FILE = "old_valid.jsonl"  # retrain: old pairs held out to measure forgetting
OLD_HOLDOUT_PURPOSE = "old-holdout"  # salts the split of the old pairs (`split_old_pairs`)
PRETRAINED_FILE = "pretrained_embeddings.json"  # run/: what the embedding started from
PRETRAINED_MODEL_FILE = "pretrained_model.json"  # run/: the weights the model started from
INPUTS_FILE = "inputs.json"  # run/: the training files' sha256, which --resume checks
DRAFTS_FILE = "drafts.json"  # run/: a retrieve-and-refine run's drafts, which --resume reads
RETRAIN_FILE = "retrained.json"  # run/: the run is a retrain's, which `train --resume` refuses


@dataclass
class RunOptions:
    """What `train` and `retrain` share beyond the config."""

    out: Path
    resume: bool = False
    verbose: int = 1
    multi_worker: bool = False  # one of several processes described by TF_CONFIG


def seed_everything(seed: int) -> None:
    """Same seed, same model: Python, NumPy, TF and Keras RNGs, deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def training_precision(
    config: ExperimentConfig,
    options: RunOptions,
    strategy: tf.distribute.Strategy | None = None,
    chief: bool = True,
) -> Precision:
    """What `train.precision` means here, said to the user (checked before any corpus is
    read, so a wrong value fails at once), and kept in the run directory: `--resume` computes
    as the run it continues even where a new race would choose the other dtype (a deleted
    cache, another user's, another machine, a near tie), since otherwise the resumed weights
    would drift from the uninterrupted run's (a resume cannot name another: `train.precision`
    is not among the settings a resume may change).
    Under `--multi-worker` every worker computes as the chief chose (`the_chiefs`)."""
    recorded = options.out / RUN_SUBDIR / PRECISION_FILE
    if options.resume and config.train.precision == "auto" and recorded.is_file():
        precision = Precision(**json.loads(recorded.read_text("utf-8")))
        why = "as the run it resumes"
    else:
        precision, race = resolve_precision(config.train.precision, ProductSizes.of(config))
        why = f"train.precision={config.train.precision}" + (
            f"; here the model's products ran at {race.bfloat16:.0f} GFLOP/s with bfloat16 "
            f"operands, {race.float32:.0f} in float32" if race is not None else "")
    agreed = the_chiefs(precision, strategy, chief)
    if agreed != precision:
        precision, why = agreed, "as the chief worker chose"
    recorded.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(recorded, json.dumps(asdict(precision)) + "\n")
    products = (
        f", {precision.products} operands in the large products" if precision.products else ""
    )
    _say(options, f"training computes in {precision.policy}{products} ({why})")
    return precision



def training_strategy(multi_worker: bool = False) -> tf.distribute.Strategy:
    """All local GPUs with MirroredStrategy when there are several; otherwise no distribution.

    `multi_worker`: MultiWorkerMirroredStrategy over the processes that `TF_CONFIG` lists (it
    must be created before other TensorFlow work in the process). Keras' `model.fit` is
    reported broken with it under Keras 3 (keras-team/keras#20585); the project's own loop
    (`strategy.run` + `strategy.reduce` in a tf.function) is what runs here.
    """
    if multi_worker:
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--multi-worker needs TF_CONFIG (cluster and task) in the environment")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def write_pairs(pairs: Sequence[Pair], path: Path) -> None:
    """The held-out pairs as JSONL, atomically (`nlp.corpus.pipeline.write_jsonl`)."""
    write_jsonl(pairs, path)


def train(
    config: ExperimentConfig,
    corpus: CorpusSpec,
    options: RunOptions,
    valid_corpus: CorpusSpec | None = None,
) -> TrainState:
    """Train a new model (or resume an interrupted run) and leave the best bundle in out/model."""
    strategy = training_strategy(options.multi_worker)
    worker = _worker_options(options, strategy)
    try:
        return _train(config, corpus, worker, valid_corpus, strategy, chief=worker is options)
    finally:
        if worker is not options:  # a non-chief's private directory is for the run only
            shutil.rmtree(worker.out, ignore_errors=True)


def _train(
    config: ExperimentConfig,
    corpus: CorpusSpec,
    options: RunOptions,
    valid_corpus: CorpusSpec | None,
    strategy: tf.distribute.Strategy,
    chief: bool,  # the one process that writes --out
) -> TrainState:
    run_dir = options.out / RUN_SUBDIR
    if options.resume:
        if (run_dir / RETRAIN_FILE).exists():
            # a retrain trains on its new pairs with old ones mixed in, keeps the old
            # bundle's index and says what it was retrained from: `train --resume` would
            # go on as a plain training of the corpus given, losing all three
            marker = run_dir / RETRAIN_FILE
            raise ValueError(f"--resume: {options.out} is a retrain's run ({marker}); run the "
                             "same s2s retrain again")
        config, changes = resume_settings(saved_config(options.out), config)
    # before minutes of tokenizing, before --out is written, and before a resume's changes
    # are saved (a refused one stays unsaved)
    check_settings(config)
    if options.resume and changes:
        print("resuming with " + ", ".join(changes), file=sys.stderr, flush=True)
        config.save(run_dir / CONFIG_FILE)
    if config.model.pretrained_embeddings and not options.resume:
        # a new run reads the vectors (a resume reads its run's record of them, a retrain
        # goes on without them if they moved): there, before --out is written
        from nlp.vectors.files import locate  # (gensim and the vectors' readers: lazily)

        locate(config.model.pretrained_embeddings)
    seed_everything(config.train.seed)
    precision = training_precision(config, options, strategy, chief)
    pretrained = None
    if config.model.pretrained and not options.resume:  # a resumed run has its checkpoint
        pretrained = load_pretrained(config.model.pretrained)
        check_compatible(config, pretrained)
    train_pairs, valid_pairs = train_valid(
        load_pairs(corpus, config.data),
        load_pairs(valid_corpus, config.data) if valid_corpus is not None else None,
        config.train.valid_fraction,
        config.train.seed,
    )
    fingerprint = corpus_fingerprint(corpus)
    if options.resume:
        check_same_inputs(options.out, fingerprint, valid_pairs)
    earlier = check_context(train_pairs, config.data)
    index_pairs = _index_pairs(config, corpus, train_pairs)
    filtered = _entropy_filtered(train_pairs, config, options)
    model_train, model_valid = filtered.kept, valid_pairs
    if config.data.retrieve_refine:
        model_train, model_valid = _refined(config, run_dir, options, index_pairs,
                                            filtered.kept, valid_pairs, pretrained)
    codec, train_examples, valid_examples, specificity = prepare_examples(
        config,
        model_train,
        model_valid,
        TextCodec.load(config, run_dir) if options.resume
        else pretrained_codec(config, pretrained) if pretrained is not None else None,
    )
    count = len(train_pairs) + len(valid_pairs)
    processes = workers_for(count)
    _say(options, f"tokenized {count} pairs in {processes} process{'es' * (processes > 1)}")
    if not options.resume:
        config = replace(config, model=replace(config.model, vocab_size=len(codec.vocab)))
        _write_run(run_dir, config, codec)
        (run_dir / RETRAIN_FILE).unlink(missing_ok=True)  # a new run, not the retrain's
        write_pairs(valid_pairs, options.out / VALID_FILE)
        write_text_atomic(run_dir / INPUTS_FILE, json.dumps({"train": fingerprint}, indent=1))
    with strategy.scope(), policy_scope(precision.policy):
        model = Seq2Seq(config.model, precision.products)
        heads = EncoderLMHeads(config.model) if config.train.lm_loss_weight > 0 else None
    metadata: dict[str, Any] = {
        "task": config.data.task,
        "corpus": {
            "train": fingerprint,
            "valid_file": str(options.out / VALID_FILE),
        },
        "pairs": pairs_record(config, earlier),
    }
    if specificity is not None:
        metadata["specificity"] = specificity.record()
    if filtered.on:
        metadata["entropy_filter"] = filtered.record()
    if config.model.pretrained:
        metadata["pretrained"] = _start_from(run_dir, model, heads, pretrained, options)
    rows = None
    if config.model.pretrained_embeddings:
        rows, record = _pretrained(config, codec, model, run_dir, options)
        metadata["pretrained_embeddings"] = record
    state = _fit(
        config,
        codec,
        model,
        train_examples,
        valid_examples,
        options,
        metadata,
        strategy,
        task_defaults(config.data.task),
        model_valid,
        rows,
        heads,
        # a new run's bundle keeps nothing of an old run's in --out
        keep=added_parts() if options.resume else (),
    )
    saved = state.best_epoch >= 0 and (options.out / MODEL_SUBDIR).is_dir()
    if chief and _replies_chat(config.data) and saved:  # a bundle to add them to
        store_rankers(
            options.out / MODEL_SUBDIR,
            index_pairs if config.retrieval.index or config.data.retrieve_refine else None,
            train_pairs,
            valid_pairs,
            config.retrieval.dual_encoder_minutes,
            kind=config.retrieval.dual_encoder_kind,
            seed=config.train.seed,
            verbose=options.verbose,
            add_only=True,
        )
    return state


def _entropy_filtered(
    pairs: Sequence[Pair], config: ExperimentConfig, options: RunOptions
) -> EntropyFilter:
    """The training pairs the model learns from (`data.entropy_filter`), said on the run's
    output when the filter is on."""
    filtered = EntropyFilter.apply(pairs, config.data)
    if filtered.on:
        _say(options, filtered.summary())
    return filtered


def _replies_chat(data: DataConfig) -> bool:
    """A model that answers messages (not a companion): the one that gets an index."""
    return data.task == "chat" and not data.reverse


def _index_pairs(
    config: ExperimentConfig, corpus: CorpusSpec, train_pairs: Sequence[Pair]
) -> list[Pair]:
    """The training pairs a chat model's retrieval index may hold (`nlp.training.reply_index`:
    never a conversation log's unless `retrieval.index_logs`)."""
    if config.data.retrieve_refine and not _replies_chat(config.data):
        raise ValueError("data.retrieve_refine applies to chat models (data.task=chat) only")
    if not _replies_chat(config.data):
        return []
    return without_logs(train_pairs, corpus, index_logs=config.retrieval.index_logs)


def _refined(
    config: ExperimentConfig,
    run_dir: Path,
    options: RunOptions,
    index_pairs: Sequence[Pair],
    train_pairs: Sequence[Pair],
    valid_pairs: Sequence[Pair],
    pretrained: Pretrained | None = None,
) -> tuple[list[Pair], list[Pair]]:
    """Retrieve-and-refine: the pairs with each source followed by its nearest indexed
    post's reply (a training pair never drafts from itself). The drafts are kept in the run
    directory (`DRAFTS_FILE`) and `--resume` reads them back: searching again would find the
    same ones, in minutes on a large corpus."""
    stored = run_dir / DRAFTS_FILE
    if options.resume and stored.is_file():
        kept = json.loads(stored.read_text("utf-8"))
        if (len(kept["train"]), len(kept["valid"])) == (len(train_pairs), len(valid_pairs)):
            _say(options, "retrieve-and-refine: the drafts of the run's start")
            return (with_drafts(train_pairs, kept["train"], config.data),
                    with_drafts(valid_pairs, kept["valid"], config.data))
    if options.resume:
        codec = TextCodec.load(config, run_dir)
    elif pretrained is not None:
        codec = pretrained_codec(config, pretrained)
    else:
        codec = TextCodec.untrained(config, train_pairs)
    index = build_index(codec, index_pairs)
    _say(options, f"retrieve-and-refine: drafts from an index of {len(index)} pairs")
    drafts = {
        "train": draft_replies(index, codec, train_pairs, config.data, skip_same_post=True,
                               gold_seed=config.train.seed),
        "valid": draft_replies(index, codec, valid_pairs, config.data, skip_same_post=False),
    }
    write_text_atomic(stored, json.dumps(drafts, ensure_ascii=False))
    return (with_drafts(train_pairs, drafts["train"], config.data),
            with_drafts(valid_pairs, drafts["valid"], config.data))


def _pretrained(
    config: ExperimentConfig, codec: TextCodec, model: Seq2Seq, run_dir: Path, options: RunOptions
) -> tuple[np.ndarray, dict[str, Any]]:
    """Initialise the embedding from `model.pretrained_embeddings` (a new run) or find what a
    resumed run was initialised with: (the rows taken from the vectors, the metadata record).

    On resume the weights come from the checkpoint, which also holds the frozen rows' mask;
    the record was written into the run directory when the run started."""
    from nlp.vectors.rows import report

    record_file = run_dir / PRETRAINED_FILE
    if options.resume:
        return np.zeros(len(codec.vocab), bool), json.loads(record_file.read_text("utf-8"))
    rows = _load_rows(config, codec, model)
    report(rows)
    record = rows.record()
    write_text_atomic(record_file, json.dumps(record, indent=2) + "\n")
    return rows.found, record


def _start_from(
    run_dir: Path,
    model: Seq2Seq,
    heads: EncoderLMHeads | None,
    pretrained: Pretrained | None,
    options: RunOptions,
) -> dict[str, Any]:
    """`model.pretrained`: a new run copies the pretrained weights into `model` (and
    `heads`) and records what it copied in the run directory; a resumed run, whose weights
    come from its checkpoint, reads that record. Returns it, for the bundle's metadata."""
    record_file = run_dir / PRETRAINED_MODEL_FILE
    if pretrained is None:
        return dict(json.loads(record_file.read_text("utf-8")))
    record = initialise(model, pretrained)
    if heads is not None:
        record["encoder_lm_heads"] = load_heads(heads, pretrained)
    kept = record["weights_kept_random"]
    _say(
        options,
        f"started from {pretrained.bundle.path}: {record['weights_copied']} weights copied"
        + (f", {len(kept)} kept their random start ({', '.join(kept)})" if kept else ""),
    )
    write_text_atomic(record_file, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return record


def pairs_record(config: ExperimentConfig, earlier: int) -> dict[str, Any]:
    """How the training pairs were built, for the bundle metadata: the context the chat
    responder must feed (`data.context_turns`, checked by `check_context`) and the most
    earlier turns a training source actually held."""
    return {
        "context_turns": config.data.context_turns,
        "turn_separator": config.data.turn_separator,
        "most_earlier_turns_seen": earlier,
    }


def saved_config(out: Path) -> ExperimentConfig:
    """The config a run in `out` started with (what `--resume` continues)."""
    return ExperimentConfig.load(out / RUN_SUBDIR / CONFIG_FILE)


def check_settings(config: ExperimentConfig) -> None:
    """A ValueError for a model, objective, schedule or selection setting training cannot
    use, raised before the corpus is read: each is otherwise found only where it is first
    used, after the tokenizing and after `--out`'s run files and validation pairs were
    replaced."""
    check_config(replace(config.model, vocab_size=max(config.model.vocab_size, UNK_ID + 1)))
    check_objective(config.train)
    check_with_model(config.train, config.model)
    check_schedule(config.train)
    if config.train.epochs < 1:
        raise ValueError(f"train.epochs must be >= 1, got {config.train.epochs}")
    if config.train.select_by not in SELECT_BY:
        raise ValueError(
            f"train.select_by must be one of {', '.join(SELECT_BY)}, got {config.train.select_by!r}"
        )
    if config.train.select_by == "rouge":
        if config.train.select_sample < 1:
            raise ValueError(
                f"train.select_sample must be >= 1, got {config.train.select_sample}")
        if config.data.task != "headline":  # the chat objective is not ROUGE, costs decodes
            raise ValueError(
                f"train.select_by=rouge: no objective for data.task={config.data.task!r} "
                "(ROUGE-L is the headline objective); use train.select_by=loss")


def check_same_inputs(
    out: Path, fingerprint: list[dict[str, str]], valid_pairs: Sequence[Pair]
) -> None:
    """Raise ValueError unless a resumed run reads the training files its run started with
    (their sha256, `INPUTS_FILE`) and holds out the same validation pairs (`VALID_FILE`).
    Why: the best epoch is chosen by comparing validation losses across the resume, and the
    batch plan follows the corpus; resuming without the `--valid` the run started with held
    part of the training corpus out instead, and an appended corpus trained on unseen order."""
    inputs, held = out / RUN_SUBDIR / INPUTS_FILE, out / VALID_FILE
    if inputs.exists():
        before = sorted(f["sha256"] for f in json.loads(inputs.read_text("utf-8"))["train"])
        if before != sorted(f["sha256"] for f in fingerprint):
            raise ValueError(
                f"--resume: the training corpus differs from the one {out} started with "
                f"(the files' sha256 in {inputs}); give the same --corpus files, unchanged, or "
                "train into a new --out (`s2s retrain` continues a model on new data)")
    if held.exists():
        kept = {(p.source, p.target) for p in load_pairs(CorpusSpec((held,), "jsonl"))}
        if kept != {(p.source, p.target) for p in valid_pairs}:
            raise ValueError(
                f"--resume: the validation pairs differ from the {len(kept)} the run started "
                f"with ({held}; now {len(valid_pairs)}): give the --valid it started with (or "
                "none, if it had none)")


def resume_settings(
    saved: ExperimentConfig, requested: ExperimentConfig
) -> tuple[ExperimentConfig, list[str]]:
    """The saved config with the changes `requested` makes to `SAFE_ON_RESUME` settings, and
    those changes as text. Any other difference is an error naming each setting.

    Why: a resumed run reuses its vocabulary, weights, optimizer state and batch order, so
    a changed model, tokenizer or seed cannot apply; ignoring it silently would train
    something other than what the user asked for.
    """
    old, new = _flat(saved), _flat(requested)
    new["model.vocab_size"] = old["model.vocab_size"]  # derived from the vocabulary
    changed = sorted(key for key in old if old[key] != new[key])
    unsafe = [f"{key} {old[key]!r} -> {new[key]!r}" for key in changed if key not in SAFE_ON_RESUME]
    if unsafe:
        raise ValueError(
            "--resume continues a run with the settings it started with, but these differ: "
            + ", ".join(unsafe)
            + f". Only {', '.join(SAFE_ON_RESUME)} can change on resume; "
            "train into a new --out to change the others"
        )
    resumed = saved.with_overrides([f"{key}={new[key]}" for key in changed])
    return resumed, [f"{key} {old[key]} -> {new[key]}" for key in changed]


def _flat(config: ExperimentConfig) -> dict[str, Any]:
    return {
        f"{section}.{name}": value
        for section, values in config.to_dict().items()
        for name, value in values.items()
    }


def _worker_options(options: RunOptions, strategy: tf.distribute.Strategy) -> RunOptions:
    """Only the chief writes into --out: other workers still run every save (checkpoints may
    need all workers) but into a private temporary directory, which `train` removes at its
    end. Resuming reads --out, so every worker needs it (a shared filesystem) and copies its
    run files from there."""
    resolver = strategy.cluster_resolver if options.multi_worker else None
    if resolver is None or resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    ):
        return options
    private = Path(tempfile.mkdtemp(prefix=f"s2s-{resolver.task_type}-{resolver.task_id}-"))
    if options.resume:
        shutil.copytree(options.out, private, dirs_exist_ok=True)
    return replace(options, out=private)


def _write_run(run_dir: Path, config: ExperimentConfig, codec: TextCodec) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / CONFIG_FILE)
    codec.save(run_dir)


def _fit(
    config: ExperimentConfig,
    codec: TextCodec,
    model: Seq2Seq,
    train_examples: Sequence[Example],
    valid_examples: Sequence[Example],
    options: RunOptions,
    metadata: dict[str, Any],
    strategy: tf.distribute.Strategy,
    decoding: DecodeSettings,
    valid_pairs: Sequence[Pair],
    pretrained_rows: np.ndarray | None = None,
    heads: EncoderLMHeads | None = None,
    keep: Collection[str] = (),
    keep_from: Path | None = None,
) -> TrainState:
    """Train and keep the best bundle, which recommends `decoding` to generating commands.
    `pretrained_rows`: see `Trainer`; `heads`: the encoder's language-model projections that
    `train.lm_loss_weight` trains (made here when it asks for them and none are given);
    `keep`, `keep_from`: the parts each better epoch's bundle keeps (`save_bundle`)."""
    if not train_examples or not valid_examples:
        raise ValueError("no training or validation pairs left after tokenization")
    selection = _selection(config, codec, model, decoding, valid_pairs)
    # what ran, for the bundle: the option alone does not say it ("auto" depends on the device)
    metadata = {**metadata, "recurrence": model.recurrence}
    _say(options, f"recurrence: {model.recurrence} (model.recurrence={config.model.recurrence})")
    _say(
        options,
        f"{len(train_examples)} training pairs, {len(valid_examples)} validation "
        f"pairs, vocabulary {len(codec.vocab)}, {model.count_params():,} parameters; "
        f"{cut_targets(train_examples)} training and {cut_targets(valid_examples)} validation "
        f"targets over train.max_target_length={config.train.max_target_length} tokens "
        "(cut, without an end token)",
    )
    weights = None
    if config.train.itf_power > 0:
        weights = inverse_frequency_weights(
            (target for _, target in train_examples), model.config.vocab_size,
            config.train.itf_power)
    with strategy.scope():
        objective = Objective(model, config.train, heads, weights)
    trainer = Trainer(
        model,
        config.train,
        options.out,
        verbose=options.verbose,
        strategy=strategy,
        pretrained_rows=pretrained_rows,
        objective=objective,
    )

    def save_best(state: TrainState) -> None:
        extra = {**metadata, "metrics": state.history[-1], "history": state.history}
        save_bundle(options.out / MODEL_SUBDIR, config, codec, model, extra, decoding,
                    keep=keep, keep_from=keep_from)

    hooks = Hooks(on_improved=save_best, selection=selection)
    state = trainer.fit(train_examples, valid_examples, resume=options.resume, hooks=hooks)
    if state.best_epoch < 0:  # only a time budget ends a run before its first epoch's end
        raise ValueError(
            f"train.max_minutes={config.train.max_minutes} ran out before the first epoch "
            f"ended, so there is no model yet; continue with --resume --out {options.out} "
            "and a larger --set train.max_minutes"
        )
    return state


def _selection(
    config: ExperimentConfig,
    codec: TextCodec,
    model: Seq2Seq,
    decoding: DecodeSettings,
    valid_pairs: Sequence[Pair],
) -> Selection | None:
    """What picks the best epoch: None for validation loss, else `rouge_selection`."""
    if config.train.select_by in ("loss", "last"):
        return None
    return rouge_selection(config, codec, model, decoding.options, valid_pairs)


def rouge_selection(
    config: ExperimentConfig,
    codec: TextCodec,
    model: Seq2Seq,
    options: DecodeOptions,
    valid_pairs: Sequence[Pair],
) -> Selection:
    """ROUGE-L of the current weights on the first `train.select_sample` validation pairs,
    decoded with the settings the bundle will recommend, through the shared decoder (plain
    ROUGE-L: `s2s tune-decoding` later also charges repetition, which decoding can stop)."""
    from nlp.generation.generator import Generator, generate_all
    from nlp.metrics.rouge import mean_rouge_l

    sample = list(valid_pairs[: config.train.select_sample])
    generator = Generator(Bundle(config, codec, model, {}, Path()))
    sources = [pair.source for pair in sample]

    def score() -> float:
        return mean_rouge_l(
            generate_all(generator, sources, options, config.train.batch_size), sample
        )

    return Selection("rouge", score)


@dataclass
class RetrainOptions:
    """`s2s retrain` specifics."""

    old_corpus: CorpusSpec | None = None  # default: the old run's validation file
    old_share: float = 0.0  # old pairs mixed in, as a share of the new training pairs
    old_holdout: float = 0.5  # with old_share > 0: share of the old pairs never mixed in
    extend_vocab: bool = False
    extend_min_freq: int = 2
    extend_max_new: int = 2000


def retrain(
    source: Path,
    corpus: CorpusSpec,
    options: RunOptions,
    retrain_options: RetrainOptions,
    overrides: Sequence[str] = (),
) -> dict[str, float]:
    """Continue training a bundle on new data, keeping its tokenizer (and learned rows)."""
    bundle = load_bundle(source)
    if same_path(bundle.path, options.out / MODEL_SUBDIR):
        # the new bundle would replace, at its first better epoch, the one it comes from
        raise ValueError(f"--out {options.out} holds the bundle it retrains ({source}); "
                         "retrain into a new --out")
    config = _retrain_config(bundle, overrides)
    check_settings(config)
    seed_everything(config.train.seed)
    precision = training_precision(config, options)
    codec = bundle.codec
    pairs = _retrain_pairs(bundle, corpus, config, options, retrain_options)
    # Each text is tokenized once: the new vocabulary words and every example come from these.
    groups = tokenize_pairs(
        codec, [pairs.train, pairs.valid, pairs.old_held, pairs.mixed_old]
    ).groups
    # the buckets of the replies it is now trained on: the new pairs' and the old mixed in
    specificity, (train_tokens, valid_tokens, old_tokens, mixed_tokens) = marked_groups(
        config.data, [reply for _, reply in [*groups[0], *groups[3]]], groups)
    if retrain_options.extend_vocab:
        config = _extend_vocab(codec, config, train_tokens, retrain_options, options)
    strategy = training_strategy()
    with strategy.scope(), policy_scope(precision.policy):
        model = rebuild_model(bundle.model, config, precision.products)
    grown = range(bundle.config.model.vocab_size, config.model.vocab_size)
    found, vectors = _grown_rows(config, codec, model, grown, options) if grown else (None, None)
    if config.train.freeze_pretrained_epochs:
        _say(options, f"train.freeze_pretrained_epochs={config.train.freeze_pretrained_epochs} "
             "freezes only the new rows taken from the vectors; the model's other rows train "
             "as learned rows")
    if pairs.mixing:
        _say(
            options,
            f"mixed in {len(pairs.mixed_old)} old pairs; {len(pairs.old_held)} other old "
            "pairs are held out to measure forgetting",
        )
    _write_run(options.out / RUN_SUBDIR, config, codec)
    write_text_atomic(options.out / RUN_SUBDIR / RETRAIN_FILE,
                      json.dumps({"from": str(source)}) + "\n")
    write_pairs(pairs.written_valid, options.out / VALID_FILE)
    write_pairs(pairs.written_old, options.out / OLD_VALID_FILE)
    old_examples = encode_examples(codec, old_tokens)
    new_examples = encode_examples(codec, valid_tokens)
    meter = LossMeter(model, batching_for(config.train))
    before = _old_new_losses(meter, old_examples, new_examples)
    _say(options, "before: " + _format_losses(before))
    _fit(
        config,
        codec,
        model,
        encode_examples(codec, [*train_tokens, *mixed_tokens]),
        new_examples,
        options,
        _retrain_metadata(bundle, config, corpus, options, pairs.earlier, vectors,
                          specificity, pairs.filtered),
        strategy,
        bundle.decoding or task_defaults(config.data.task),  # tuned settings survive retraining
        pairs.valid,
        found,  # the rows train.freeze_pretrained_epochs freezes
        keep=ranker_parts(),
        keep_from=bundle.path,
    )
    if bundle.companions:  # the decoding kept above may re-rank with them (MMI)
        store_companions(options.out / MODEL_SUBDIR, bundle.companions)
    best = load_bundle(options.out / MODEL_SUBDIR)
    after = _old_new_losses(
        LossMeter(best.model, batching_for(config.train)), old_examples, new_examples
    )
    _say(options, "after:  " + _format_losses(after))
    return {
        **{f"before_{k}": v for k, v in before.items()},
        **{f"after_{k}": v for k, v in after.items()},
    }


def _retrain_config(bundle: Bundle, overrides: Sequence[str]) -> ExperimentConfig:
    """The bundle's config with `overrides`, which may change train.* settings only."""
    config = bundle.config.with_overrides(list(overrides))
    fixed = [
        section
        for section in ("tokenizer", "vocab", "model", "data")
        if getattr(config, section) != getattr(bundle.config, section)
    ]
    if fixed:
        raise ValueError(
            "retrain keeps the model and how it reads text: only train.* settings may "
            f"change, not {', '.join(f'{section}.*' for section in fixed)}"
        )
    return config


@dataclass
class _RetrainPairs:
    """The pairs of a retraining run, each group as the model reads it (a
    retrieve-and-refine model's posts with their drafts)."""

    train: list[Pair]  # the new training pairs
    valid: list[Pair]  # the new validation pairs
    old_held: list[Pair]  # old pairs held out to measure forgetting
    mixed_old: list[Pair]  # old pairs mixed into training
    written_valid: list[Pair]  # `valid` as written, without drafts: what VALID_FILE holds
    written_old: list[Pair]  # `old_held` likewise, for OLD_VALID_FILE
    earlier: int  # the most earlier turns a new training source held (`check_context`)
    mixing: bool  # old pairs were asked for (`old_share`) and there were some to mix
    filtered: EntropyFilter  # `data.entropy_filter` on the new and mixed-in old pairs together


def _retrain_pairs(
    bundle: Bundle,
    corpus: CorpusSpec,
    config: ExperimentConfig,
    options: RunOptions,
    retrain_options: RetrainOptions,
) -> _RetrainPairs:
    """The new corpus split into training and validation pairs, and the old pairs
    (`_old_pairs`) split into those mixed into training and those held out."""
    new_train, new_valid = train_valid(
        load_pairs(corpus, config.data), None, config.train.valid_fraction, config.train.seed
    )
    earlier = check_context(new_train, config.data)
    mix_pool, old_held = split_old_pairs(
        _old_pairs(bundle, retrain_options, options, config.data),
        [*new_train, *new_valid],
        retrain_options.old_holdout if retrain_options.old_share > 0 else 1.0,
        config.train.seed,
    )
    mixed_old: list[Pair] = []
    if retrain_options.old_share > 0:
        count = round(len(new_train) * retrain_options.old_share)
        mixed_old = sample(mix_pool, count, config.train.seed)
        if not mixed_old:
            print(f"warning: --old-share {retrain_options.old_share} mixes in no old pairs "
                  f"({len(mix_pool)} to draw from, {len(old_held)} held out, "
                  f"{len(new_train)} new training pairs)", file=sys.stderr, flush=True)
    mixing = bool(mixed_old)
    # the filter reads the pairs the model is now trained on, new and old together
    filtered = _entropy_filtered([*new_train, *mixed_old], config, options)
    new_keep, old_keep = filtered.mask[:len(new_train)], filtered.mask[len(new_train):]
    new_train = [p for p, keep in zip(new_train, new_keep, strict=True) if keep]
    mixed_old = [p for p, keep in zip(mixed_old, old_keep, strict=True) if keep]
    written_valid, written_old = new_valid, old_held  # the files hold what a person wrote
    if config.data.retrieve_refine:
        new_train, new_valid, old_held, mixed_old = _drafted(
            bundle, bundle.codec, config.data, new_train, new_valid, old_held, mixed_old,
            config.train.seed)
    return _RetrainPairs(new_train, new_valid, old_held, mixed_old, written_valid, written_old,
                         earlier, mixing, filtered)


def _drafted(
    bundle: Bundle,
    codec: TextCodec,
    data: DataConfig,
    train: list[Pair],
    valid: list[Pair],
    old_held: list[Pair],
    mixed_old: list[Pair],
    seed: int,
) -> tuple[list[Pair], list[Pair], list[Pair], list[Pair]]:
    """A retrieve-and-refine model's pairs with their drafts, from the old model's index,
    which stays as it was; the pairs it trains on alpha-blended (`data.refine_gold_share`)."""
    # Old pairs (`--old-corpus` may be the old training corpus) may be in that index:
    # drafted from their own entry, they would measure forgetting with the answer in the
    # input, so they skip it as training pairs do.
    index = ReplyIndex.load(_index_dir(bundle))
    train, valid, old_held, mixed_old = (
        with_drafts(group, draft_replies(index, codec, group, data, skip_same_post=skip,
                                         gold_seed=gold), data)
        for group, skip, gold in ((train, True, seed), (valid, False, None),
                                  (old_held, True, None), (mixed_old, True, seed + 1))
    )
    return train, valid, old_held, mixed_old


def _extend_vocab(
    codec: TextCodec,
    config: ExperimentConfig,
    train_tokens: Sequence[tuple[list[str], list[str]]],
    retrain_options: RetrainOptions,
    options: RunOptions,
) -> ExperimentConfig:
    """`--extend-vocab`: the codec's vocabulary extended by the new training pairs'
    frequent words; the config with the model's vocabulary size to match."""
    added = codec.extend_vocab(
        count_tokens(train_tokens),
        retrain_options.extend_min_freq,
        retrain_options.extend_max_new,
    )
    _say(options, f"vocabulary extended by {len(added)} tokens to {len(codec.vocab)}")
    return replace(config, model=replace(config.model, vocab_size=len(codec.vocab)))


def _retrain_metadata(
    bundle: Bundle,
    config: ExperimentConfig,
    corpus: CorpusSpec,
    options: RunOptions,
    earlier: int,
    vectors: dict[str, Any] | None,
    specificity: SpecificityBuckets | None = None,
    filtered: EntropyFilter | None = None,
) -> dict[str, Any]:
    """The retrained bundle's metadata: where it came from, its data, its word vectors, the
    specificity buckets of the replies it was retrained on, what the entropy filter left out."""
    metadata = {
        "task": config.data.task,
        "retrained_from": str(bundle.path),
        "corpus": {
            "train": corpus_fingerprint(corpus),
            "valid_file": str(options.out / VALID_FILE),
            "old_valid_file": str(options.out / OLD_VALID_FILE),
        },
        "pairs": pairs_record(config, earlier),
    }
    if "pretrained_embeddings" in bundle.metadata:
        metadata["pretrained_embeddings"] = bundle.metadata["pretrained_embeddings"]
    if vectors is not None:
        metadata["pretrained_embeddings_new_rows"] = vectors
    if specificity is not None:
        metadata["specificity"] = specificity.record()
    if filtered is not None and filtered.on:
        metadata["entropy_filter"] = filtered.record()
    return metadata


def _index_dir(bundle: Bundle) -> Path:
    directory = bundle.part(INDEX_DIR)
    if directory is None:
        raise ValueError(f"{bundle.path}: a retrieve-and-refine model without its index")
    return directory


def _grown_rows(
    config: ExperimentConfig, codec: TextCodec, model: Seq2Seq, grown: range, options: RunOptions
) -> tuple[np.ndarray, dict[str, Any]] | tuple[None, None]:
    """`--extend-vocab` on a model initialised from word vectors: the new rows start from the
    same vectors (the old rows keep what they learned): (the rows taken from the vectors, the
    metadata record), as `_pretrained`. Vectors no longer at hand leave the new rows random,
    with a warning: retraining must not depend on a file that moved."""
    from nlp.vectors.files import VectorsError

    if not config.model.pretrained_embeddings:
        return None, None
    try:
        rows = _load_rows(config, codec, model, only=grown)
    except VectorsError as exc:
        print(f"warning: new rows keep a random start: {exc}", file=sys.stderr, flush=True)
        return None, None
    _say(options, f"new rows: {rows.describe()}")
    return rows.found, rows.record()


def _load_rows(
    config: ExperimentConfig, codec: TextCodec, model: Seq2Seq, only: range | None = None
) -> PretrainedRows:
    """The embedding rows `model.pretrained_embeddings` gives (`only` those ids, default every
    non-special one), written into the model's embedding (the one table when shared).

    With `model.share_embeddings=false` the target table gets the same vector rows written
    into its own values (`PretrainedRows.onto`), never a copy of the source table: on
    retraining its other rows are what it learned."""
    from nlp.vectors.rows import pretrained_rows

    rows = pretrained_rows(
        config.model.pretrained_embeddings,
        codec.vocab.tokens,
        np.asarray(model.source_embedding.embeddings.numpy()),
        lowercase=config.tokenizer.lowercase,
        counts=codec.token_counts,
        only=only,
        rescale=config.model.rescale_pretrained,
    )
    model.source_embedding.embeddings.assign(rows.matrix)
    if model.target_embedding is not model.source_embedding:
        target = model.target_embedding.embeddings
        target.assign(rows.onto(np.asarray(target.numpy())))
    return rows


def split_old_pairs(
    old: Sequence[Pair], new: Sequence[Pair], holdout: float, seed: int
) -> tuple[list[Pair], list[Pair]]:
    """(pool to mix into training, held out to measure forgetting) from the old pairs.

    Why: old pairs that are trained on (mixed in, or also in the new data) say nothing about
    forgetting; only held-out ones do. Pairs also in the new data are left out of both.
    The split has its own purpose salt: the old pairs are by default the old run's
    validation pairs, chosen by the same hash and seed below `train.valid_fraction`, so
    split unsalted they would all be held out and none mixed in.
    """
    return split(without(old, new), holdout, seed, purpose=OLD_HOLDOUT_PURPOSE)


def _old_pairs(
    bundle: Bundle,
    retrain_options: RetrainOptions,
    options: RunOptions,
    data: DataConfig,
) -> list[Pair]:
    if retrain_options.old_corpus is not None:
        return load_pairs(retrain_options.old_corpus, data)
    held = run_validation_pairs(bundle.metadata, bundle.path)
    if held is not None:
        return held
    _say(options, "old validation data not found; pass --old-corpus to compare on it")
    return []


def _old_new_losses(
    meter: LossMeter, old: Sequence[Example], new: Sequence[Example]
) -> dict[str, float]:
    losses = {"new_valid_loss": meter(new)}
    if old:
        losses["old_valid_loss"] = meter(old)
    return losses


def _format_losses(losses: dict[str, float]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in sorted(losses.items()))


def rebuild_model(
    old: Seq2Seq, config: ExperimentConfig, products: str | None = None
) -> Seq2Seq:
    """A new model for `config` (in the current distribution scope) with the old weights.

    Each weight is copied from the old weight at the same object path (see
    `nlp.training.checkpoint.variable_paths`), never by position. Weights whose shape did not
    change are copied; with a larger vocabulary, embedding and
    projection matrices are copied into the leading rows/columns, and the new rows keep
    their fresh initialisation, so every learned row survives. `products`: see `Seq2Seq`.
    """
    new = Seq2Seq(config.model, products)
    old_paths = variable_paths(old)
    for path, new_var in variable_paths(new).items():
        value = np.array(new_var.numpy())
        source = old_paths[path].numpy()
        value[tuple(slice(0, n) for n in source.shape)] = source
        new_var.assign(value)
    return new


def _say(options: RunOptions, message: str) -> None:
    if options.verbose:
        print(message, file=sys.stderr, flush=True)
