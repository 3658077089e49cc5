"""`s2s pretrain`: from unlabelled text to the weights `s2s train --set model.pretrained=OUT`
starts from, resumable.

The run directory is laid out as `s2s train`'s (`nlp.training.run`): `model/` (the best
pretrained model so far, a bundle with the encoder's language-model heads beside its
weights, `nlp.training.pretrained.HEADS_FILE`), `checkpoint/`, `logs/` and `run/` (the config,
tokenizer and vocabulary fixed at the start, and the objectives). The same trainer runs it:
progress line, checkpoints every `train.checkpoint_every` steps, `--resume` from the exact
batch after a kill, a time budget (`train.max_minutes`, which may end inside the first epoch
and still leaves a model), validation at each epoch's end, the plateau schedule.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nlp.generation.bundle import MODEL_SUBDIR, file_sha256, save_bundle, store_part
from nlp.generation.codec import TextCodec, count_tokens
from nlp.model import Seq2Seq
from nlp.model.language_models import EncoderLMHeads
from nlp.pretraining.objective import OBJECTIVES, PretrainingObjective, check_objectives
from nlp.pretraining.texts import (
    as_pairs,
    read_texts,
    split_texts,
    text_codec_config,
    windows,
)
from nlp.training.checkpoint import TrainState
from nlp.training.corpus_io import CorpusSpec, corpus_fingerprint
from nlp.training.data import EncodedExamples
from nlp.training.precision import policy_scope
from nlp.training.prepare import tokenize_pairs
from nlp.training.pretrained import HEADS_FILE
from nlp.training.run import (
    CONFIG_FILE,
    RUN_SUBDIR,
    RunOptions,
    resume_settings,
    saved_config,
    seed_everything,
    training_precision,
)
from nlp.training.trainer import Hooks, Trainer
from nlp.util.config import ExperimentConfig
from nlp.util.fsutil import write_text_atomic

PRETRAINING_FILE = "pretraining.json"  # run/: the objectives, fixed at the start
VALID_MOST = 2000  # validation texts at most: validating is paid at every epoch's end


@dataclass
class PretrainOptions:
    out: Path
    objectives: tuple[str, ...] = OBJECTIVES
    resume: bool = False
    verbose: int = 1
    valid_most: int = VALID_MOST


def pretrain(
    config: ExperimentConfig,
    corpus: CorpusSpec | None,
    text_files: Sequence[Path],
    options: PretrainOptions,
) -> TrainState:
    """Pretrain the model of `config` on the texts of `corpus` (both sides) and `text_files`
    (one document a line), or resume the run in `options.out`."""
    run_dir = options.out / RUN_SUBDIR
    objectives = check_objectives(options.objectives)
    corpus_files = corpus_fingerprint(corpus) if corpus is not None else []
    text_fingerprints = [{"path": str(p), "sha256": file_sha256(p)} for p in text_files]
    inputs = sorted(f["sha256"] for f in [*corpus_files, *text_fingerprints])
    if options.resume:
        config, changes = resume_settings(saved_config(options.out), config)
        started = json.loads((run_dir / PRETRAINING_FILE).read_text("utf-8"))
        if "inputs" in started and started["inputs"] != inputs:
            # the split, the windows and the batch plan follow the texts, and the best epoch
            # is chosen by validation losses that must be over the same held-out texts
            raise ValueError(f"--resume: the texts differ from those {options.out} started "
                             "with (their files' sha256); give the same --text and --corpus "
                             "files, unchanged, or pretrain into a new --out")
        # both in check_objectives' order: the same objectives given in another order agree
        if objectives not in (OBJECTIVES, check_objectives(started["objectives"])):
            raise ValueError(f"--resume: objectives {', '.join(objectives)} differ "
                             f"from the run's {', '.join(started['objectives'])}")
        if changes:
            _say(options, "resuming with " + ", ".join(changes))
            config.save(run_dir / CONFIG_FILE)
        objectives = tuple(started["objectives"])
    if config.model.pretrained:
        raise ValueError("model.pretrained is for `s2s train`: pretraining starts from scratch")
    if not corpus and not text_files:
        raise ValueError("give --corpus and/or --text: the unlabelled text to pretrain on")
    _one_op_at_a_time()
    seed_everything(config.train.seed)
    precision = training_precision(  # a resume computes in the dtypes the run started in
        config, RunOptions(options.out, resume=options.resume, verbose=options.verbose))
    texts = read_texts(corpus, text_files)
    train_texts, valid_texts = split_texts(
        texts, config.train.valid_fraction, config.train.seed, options.valid_most
    )
    if not train_texts or not valid_texts:
        raise ValueError(
            f"{len(texts)} distinct texts: too few for a training and a validation side "
            f"(train.valid_fraction={config.train.valid_fraction})"
        )
    reading = text_codec_config(config)
    train_pairs, valid_pairs = as_pairs(train_texts), as_pairs(valid_texts)
    codec = (
        TextCodec.load(reading, run_dir) if options.resume
        else TextCodec.untrained(reading, train_pairs)
    )
    tokenized = tokenize_pairs(codec, [train_pairs, valid_pairs], truecase=not options.resume)
    train_tokens, valid_tokens = tokenized.groups
    workers = tokenized.workers
    if not options.resume:
        codec.fit_vocabulary(count_tokens(train_tokens), tokenized.truecase)
        config = replace(config, model=replace(config.model, vocab_size=len(codec.vocab)))
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / CONFIG_FILE)
        codec.save(run_dir)
        write_text_atomic(
            run_dir / PRETRAINING_FILE,
            json.dumps({"objectives": list(objectives), "inputs": inputs}) + "\n",
        )
    length = config.train.max_target_length
    train_source, train_target, train_count = windows(codec, train_tokens, length)
    valid_source, valid_target, _ = windows(codec, valid_tokens, length)
    del train_tokens, valid_tokens, tokenized
    training = EncodedExamples.from_flat(*train_source, *train_target)
    validation = EncodedExamples.from_flat(*valid_source, *valid_target)
    _say(
        options,
        f"{len(train_texts)} training texts ({train_count} tokens, {len(training)} windows of "
        f"at most {length}), {len(valid_texts)} validation texts ({len(validation)} windows), "
        f"vocabulary {len(codec.vocab)}, tokenized in {workers} "
        f"process{'es' * (workers > 1)}; objectives: {', '.join(objectives)}",
    )
    with policy_scope(precision.policy):
        model = Seq2Seq(config.model, precision.products)
        heads = EncoderLMHeads(config.model) if "lm" in objectives else None
    _say(options, f"recurrence: {model.recurrence}; {model.count_params():,} parameters")
    trainer = Trainer(
        model,
        config.train,
        options.out,
        verbose=options.verbose,
        objective=PretrainingObjective(model, config.train, heads, objectives),
    )
    metadata = {
        "task": config.data.task,
        "pretraining": {
            "objectives": list(objectives),
            "corpus": corpus_files,
            "text_files": text_fingerprints,
            "texts": {"train": len(train_texts), "valid": len(valid_texts)},
            "train_tokens": train_count,
            "windows": {"train": len(training), "valid": len(validation), "length": length},
        },
    }

    def save_best(state: TrainState) -> None:
        extra: dict[str, Any] = {
            **metadata, "metrics": state.history[-1], "history": state.history
        }
        directory = options.out / MODEL_SUBDIR
        save_bundle(directory, config, codec, model, extra)
        if heads is not None:
            store_part(directory, HEADS_FILE, heads.save_weights)

    state = trainer.fit(
        training, validation, resume=options.resume, hooks=Hooks(on_improved=save_best)
    )
    if state.best_epoch < 0:
        raise ValueError(
            f"the time budget ran out before a model was kept; continue with --resume --out "
            f"{options.out} and more --minutes"
        )
    return state


def _one_op_at_a_time() -> None:
    """Independent ops run one after another (each still uses every core inside it). Fresh
    `s2s pretrain` processes sometimes crashed with a segmentation fault in their first
    compiled step, and did not with this set (issue 52): the step's objectives are parallel
    branches of one graph over the written-out loops' TensorArrays, and TensorFlow has a known
    crash of TensorArray ops run from parallel branches that inter-op parallelism 1 avoids
    (tensorflow/tensorflow#34744). It can only be set before TensorFlow's runtime starts, so
    a host that has started it (the test suite, calling the CLI in-process) keeps its own."""
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_inter_op_parallelism_threads(1)


def _say(options: PretrainOptions, message: str) -> None:
    if options.verbose:
        print(message, file=sys.stderr, flush=True)
