"""Typed experiment configuration, saved as JSON next to every model.

Why dataclasses and not a dict: a typo in `--set model.unitz=8` must fail loudly, and the
values must be of the declared type when the model is rebuilt from a bundle years later.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from nlp.util.fsutil import write_text_atomic

T = TypeVar("T")


# What `--resume` may change: limits of the run and its reporting, not what it trains or how.
# model.recurrence: both recurrences run the same weights, so a run may go on on another device
SAFE_ON_RESUME = (
    "train.epochs", "train.max_minutes", "train.patience", "train.log_every", "model.recurrence"
)


class ConfigError(ValueError):
    """A configuration file or override that does not fit the schema."""


@dataclass
class TokenizerConfig:
    """How raw text becomes tokens (see `nlp.tokenizers`)."""

    kind: str = "words"  # words | chars | jieba | sentencepiece | jieba+sentencepiece
    lowercase: bool = True
    sp_model_type: str = "unigram"  # unigram | bpe
    sp_vocab_size: int = 8000
    sp_character_coverage: float = 0.9995
    placeholders: bool = False  # mask numbers, dates, URLs, Latin words (see nlp.text.placeholders)
    latin_chars: bool = False  # kind=chars: Latin text one character a token too (translation)


@dataclass
class VocabConfig:
    """Vocabulary limits; special ids are fixed in `nlp.tokenizers.specials`."""

    min_freq: int = 1
    max_size: int = 8000


@dataclass
class ModelConfig:
    """The one seq2seq network (see `nlp.model.seq2seq`)."""

    vocab_size: int = 0  # filled in from the vocabulary
    embedding_dim: int = 256
    units: int = 256
    encoder_layers: int = 1
    decoder_layers: int = 1
    cell: str = "lstm"  # lstm | gru
    # recurrent | transformer: the encoder and decoder (`nlp.model.transformer`: self-
    # attention over every token at once, `heads` heads, layers as encoder_layers and
    # decoder_layers, width `units`; `decoder_positions` the longest reply it decodes). The
    # recurrent settings (cell, recurrence, attention, input_feeding, peek) are its
    # alternative's; copy and coverage need the recurrent model.
    architecture: str = "recurrent"
    heads: int = 4
    decoder_positions: int = 64
    # auto | keras | written: Keras' LSTM/GRU layers (cuDNN on a GPU) or the written-out
    # loops (faster on a CPU); auto picks by device when the model is built, and both run
    # the same weights (nlp.model.recurrence.resolve)
    recurrence: str = "auto"
    attention: str = "general"  # dot | general | bahdanau | none (basic encoder-decoder)
    input_feeding: bool = True  # feed back the previous output vector (attentional vector)
    peek: bool = False  # the encoder summary is part of the decoder input at every step
    dropout: float = 0.1
    share_embeddings: bool = True
    tie_output: bool = False
    copy: bool = False  # pointer-generator copying from the source
    coverage: bool = False  # attention coverage (See et al. 2017), loss: train.coverage_weight
    # word vectors for the embedding's first values: a file (word2vec text/binary, GloVe,
    # fastText .vec, gensim KeyedVectors) or a packaged name (nlp.vectors.files.PACKAGED)
    pretrained_embeddings: str = ""
    # true: those vectors scaled to the random rows' norm (nlp.vectors.rows); false, the
    # default: their own values (GloVe's rows are ~10x longer), with which the Reuters recipe
    # learned faster and wrote better headlines (docs/BENCHMARKS.md "Word vectors and extra
    # pairs")
    rescale_pretrained: bool = False
    # a `s2s pretrain` output (or any bundle): the embedding, encoder, decoder and output
    # projection start from its weights, and its tokenizer and vocabulary are this model's
    pretrained: str = ""


@dataclass
class TrainConfig:
    """Optimisation and data pipeline settings."""

    batch_size: int = 64
    epochs: int = 10
    learning_rate: float = 1e-3
    # constant | plateau | linear (to 0 where train.max_minutes or train.epochs ends) |
    # inverse_sqrt | exponential (nlp.training.optim)
    lr_schedule: str = "constant"
    # a linear warm-up of the rate over the first steps (constant, plateau, linear,
    # inverse_sqrt; `nlp.training.optim.warm_share`); 0: none
    warmup_steps: int = 0
    decay_rate: float = 0.5  # exponential: per decay_steps; plateau: per stalled epoch
    plateau_rewind: bool = True  # plateau: back to the lowest-loss epoch's weights first
    # decay of an exponential moving average of the weights (Polyak averaging), which
    # validation, selection and the saved bundle use while training goes on from the raw
    # weights (nlp.training.optim.WeightAverage); 0: none
    ema_decay: float = 0.0
    decay_steps: int = 10000
    label_smoothing: float = 0.0
    coverage_weight: float = 1.0  # weight of the coverage loss (models with model.coverage)
    # the encoder's and decoder's language-model losses kept beside the seq2seq loss, with
    # this weight (Ramachandran et al. 2017; nlp.training.objective); 0: none
    lm_loss_weight: float = 0.0
    # scheduled sampling (Bengio et al. 2015; nlp.training.objective): none | linear |
    # inverse_sigmoid, the schedule of the probability of feeding the model's own prediction
    scheduled_sampling: str = "none"
    sampling_steps: int = 10000  # linear: steps to reach sampling_max; inverse_sigmoid: its k
    sampling_max: float = 0.25  # the highest probability of feeding a prediction
    # target-side word dropout (Bowman et al. 2016; nlp.training.objective): each decoder
    # input after the first is read as <unk> with this probability in training; 0: none
    target_word_dropout: float = 0.0
    # a ranking loss beside the likelihood (nlp.training.objective, contrastive_loss): each
    # reply's mean token loss given its message must be this margin below another reply's
    # (the batch's previous row's), weighted by contrastive_weight; 0: none
    contrastive_weight: float = 0.0
    contrastive_margin: float = 1.0
    # the share of the run (of train.max_minutes, or of train.epochs' batches without a
    # budget) trained before the ranking loss joins: likelihood alone first, at its faster
    # step, then the ranking loss as a fine-tuning (Liu et al. 2022, BRIO); the bundle is
    # chosen among what validates after it joined (nlp.training.trainer). 0: from the start
    contrastive_from: float = 0.0
    # epochs in which the embedding rows taken from model.pretrained_embeddings stay as
    # loaded (the other rows and weights train); -1: never trained. A retrain takes only
    # its new rows (--extend-vocab) from them: those are the ones frozen
    freeze_pretrained_epochs: int = 0
    clip_norm: float = 5.0
    max_source_length: int = 100
    max_target_length: int = 30
    bucket_width: int = 8
    patience: int = 3
    valid_fraction: float = 0.05
    checkpoint_every: int = 200
    precision: str = "auto"  # auto | float32 | bfloat16 | float16 (nlp.training.precision)
    # wall-clock training budget; 0 = none. Stops at a batch, the part-epoch validated and
    # kept when better; --resume with a larger budget goes on from that batch.
    max_minutes: float = 0.0
    # sampled softmax in training (Jean et al. 2015; nlp.model.losses.sampled_logits):
    # the training loss over each target and this many sampled words instead of the whole
    # vocabulary; 0: the exact softmax. Validation, scoring and decoding are always exact.
    sampled_softmax: int = 0
    # Inverse token frequency loss (Nakamura et al. 2019; nlp.training.objective): each
    # target token's training loss times (its count in the training targets + 1) ** -this,
    # scaled so the training targets' mean weight is 1. Why: plain likelihood rewards the
    # replies every post gets ("I don't know."); this weighs the rarer words a specific reply
    # needs. 0: plain likelihood. Validation, scoring and decoding are unweighted.
    itf_power: float = 0.0
    # vocabulary unlikelihood (Li et al. 2020; nlp.training.objective): the weight of the
    # penalty on the words the model's predictions over-use relative to the batch's replies;
    # 0: none. Needs model.copy=false.
    unlikelihood_weight: float = 0.0
    # which word a position predicts, for the unlikelihood (nlp.model.losses.UNLIKELIHOOD_PICKS):
    # "model", the model's argmax; "sampled", the sampled softmax's argmax over its corrected
    # logits (needs train.sampled_softmax > 0)
    unlikelihood_pick: str = "model"
    log_every: int = 20  # steps between reading the loss back (progress bar, TensorBoard)
    jit_compile: bool = False  # XLA for the training step (see benchmarks/train_throughput.py)
    jit_optimizer: bool = True  # XLA for the optimizer update (one process, >= 1M weights)
    select_by: str = "loss"  # loss | rouge | last: what picks the bundle kept (last: no pick)
    select_sample: int = 200  # select_by=rouge: validation pairs decoded at each epoch end
    seed: int = 1234


# Which side of a training pair `data.entropy_filter` reads (`nlp.filtering.entropy`).
ENTROPY_FILTERS = ("off", "reply", "post", "both")


@dataclass
class DataConfig:
    """What the model reads: single pairs or multi-turn context."""

    task: str = "chat"  # chat | headline | lm (target-side language model: empty source)
    reverse: bool = False  # train p(source | target): the backward model of MMI-bidi
    context_turns: int = 0  # previous turns joined into the encoder input (chat only)
    turn_separator: str = " __eot__ "
    # Retrieve-and-refine (Weston, Dinan & Miller 2018; chat only): the encoder reads the
    # context, this separator, then the reply of the nearest training post (BM25, the
    # bundle's index; in training never the pair's own), so the decoder can attend to and
    # copy from a reply a person wrote
    retrieve_refine: bool = False
    refine_separator: str = " __ret__ "
    # Alpha-blending (Roller et al. 2020, section 2.3): this share of the training pairs
    # (seeded) read their own reply as the draft. Why: the nearest post's reply rarely fits,
    # so a refine model trained on drafts alone learns to ignore them; one that sometimes
    # reads the gold reply learns that the draft can be used. Validation reads retrieved
    # drafts only, as the model will.
    refine_gold_share: float = 0.0
    # Conditional training on the reply's specificity (See et al. 2019; `nlp.control`): the
    # training replies fall in this many equal-sized buckets of their tokens' mean NIDF, and
    # each source ends with its reply's bucket marker; at run time the decode option
    # `specificity` picks the bucket. Why: a model trained on likelihood alone answers every
    # post with what every post gets ("I don't know."). 0: off. Only a chat model that
    # answers uses it (not its companions: data.task=lm, data.reverse).
    specificity_buckets: int = 0
    # Entropy-based data filtering (Csáky, Purgai & Recski 2019; `nlp.filtering.entropy`):
    # the model does not train on the pairs whose reply (`reply`), post (`post`) or either
    # (`both`) has more than `entropy_max_bits` of entropy over what it is paired with: the
    # replies that follow any post ("Yeah.", "I don't know."). The index, the rankers and
    # validation keep every pair. 1 bit: a reply evenly spread over more than two posts.
    entropy_filter: str = "off"  # one of ENTROPY_FILTERS
    entropy_max_bits: float = 1.0

    def __post_init__(self) -> None:
        if self.entropy_filter not in ENTROPY_FILTERS:
            raise ValueError(f"data.entropy_filter must be one of {', '.join(ENTROPY_FILTERS)}, "
                             f"got {self.entropy_filter!r}")
        if not self.entropy_max_bits >= 0:
            raise ValueError(
                f"data.entropy_max_bits must be 0 or more, got {self.entropy_max_bits}")
        if not 0.0 <= self.refine_gold_share <= 1.0:
            raise ValueError(
                f"data.refine_gold_share must be within [0, 1], got {self.refine_gold_share}")
        if self.specificity_buckets == 1 or not 0 <= self.specificity_buckets <= 100:
            raise ValueError("data.specificity_buckets must be 0 (off) or within [2, 100], "
                             f"got {self.specificity_buckets}")

    @property
    def controls_specificity(self) -> bool:
        """Whether this model's sources end with a specificity marker (`nlp.control`): a chat
        model that answers, trained with specificity buckets."""
        return self.specificity_buckets > 0 and self.task == "chat" and not self.reverse


# What a dual-encoder ranker reads (`nlp.ranking`): a bag of words, or the words in order.
DUAL_ENCODER_KINDS = ("bag", "recurrent")
# Where a dual encoder's embedding tables start: the chat model's, or random.
DUAL_ENCODER_EMBEDDINGS = ("model", "random")


@dataclass
class RetrievalConfig:
    """What `s2s train --task chat` adds to the bundle for choosing replies (`nlp.retrieval`,
    `nlp.ranking`); `s2s index` rebuilds both for a trained model."""

    index: bool = True  # a BM25 index of the training pairs (reply retrieval)
    # Pairs read from conversation logs (`--format conversation-log`, what people wrote to
    # the bot) would be shown verbatim to other people: indexed only when set explicitly.
    index_logs: bool = False
    dual_encoder_minutes: float = 3.0  # the dual-encoder ranker's training budget (0: none)
    # The indexed replies' dual-encoder vectors in a nearest-neighbour index, so that
    # `retrieve` also finds replies by meaning (`nlp.retrieval.dense`). Off by default: with
    # the bag-of-words ranker its neighbours were rated less sensible than BM25's matches on
    # validation (docs/BENCHMARKS.md "Rated sense"). A bundle setting, not a decode option:
    # the graph holds every vector in memory (about 1.2 KB a reply at the default width).
    dense_index: bool = False
    # The indexed posts' sentence-encoder vectors in a nearest-neighbour index
    # (`nlp.retrieval.dense.POST_VECTORS`), so that `retrieve` also finds the training posts
    # that say what the message says in other words (the cosine the chat's gate reads). Off
    # by default: the posts it finds are closer to the message than BM25's, but their
    # replies were rated no better in English and worse in Chinese, where the gate then sent
    # them in place of the model's more sensible replies (docs/BENCHMARKS.md "Retrieved or
    # generated"). Building it encodes every distinct post (about a millisecond each).
    post_vectors: bool = False
    # Principal components the post vectors keep in the graph (0: all 512): 128 keep a post
    # in 512 bytes and the nearest posts nearly all among the first few found.
    post_vector_width: int = 128
    # What the ranker reads (`DUAL_ENCODER_KINDS`): "bag", a bag of words; "recurrent",
    # the words in order (a bidirectional GRU), slower to train
    dual_encoder_kind: str = "bag"
    # Hard negatives each training post brings to its batch (BM25's matches for it, its
    # conversation's other turns; `nlp.training.reply_index.hard_negatives`). 0, in-batch
    # negatives only, by default: searching for them costs the dual encoder epochs within its
    # budget, and no rating of sense has shown them to help yet.
    dual_encoder_hard_negatives: int = 0
    # Where the ranker's embedding tables start (`DUAL_ENCODER_EMBEDDINGS`): "model", the
    # chat model's (its encoder's for posts, its decoder's for replies, at the model's
    # width), which carry what the model learnt of the words (and of pretrained vectors it
    # started from), so the ranker does not relearn them from random in its few minutes and
    # rare words are not left where the random draw put them; or "random"
    dual_encoder_embeddings: str = "model"

    def __post_init__(self) -> None:
        # Checked here, as the config is read, not after the chat model's training.
        if self.post_vector_width < 0:
            raise ConfigError("retrieval.post_vector_width must be 0 (all) or more, "
                              f"got {self.post_vector_width}")
        if self.dual_encoder_kind not in DUAL_ENCODER_KINDS:
            raise ConfigError(
                f"retrieval.dual_encoder_kind must be one of {', '.join(DUAL_ENCODER_KINDS)}, "
                f"got {self.dual_encoder_kind!r}"
            )
        if self.dual_encoder_embeddings not in DUAL_ENCODER_EMBEDDINGS:
            raise ConfigError(
                "retrieval.dual_encoder_embeddings must be one of "
                f"{', '.join(DUAL_ENCODER_EMBEDDINGS)}, got {self.dual_encoder_embeddings!r}"
            )


@dataclass
class ExperimentConfig:
    """Everything needed to rebuild a model and its text pipeline."""

    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], origin: str = "<dict>") -> ExperimentConfig:
        return _from_dict(cls, _renamed(raw, origin), origin)

    def save(self, path: Path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> ExperimentConfig:
        return cls.from_dict(_parse_json(path.read_text("utf-8"), str(path)), str(path))

    def with_overrides(self, assignments: list[str]) -> ExperimentConfig:
        """Apply `section.key=value` strings, coercing each value to the field's type."""
        raw = self.to_dict()
        for item in assignments:
            key, sep, value = item.partition("=")
            parts = key.strip().split(".")
            if not sep or len(parts) != 2:
                raise ConfigError(f"--set {item!r}: expected section.key=value")
            section, name = parts
            if section not in raw or name not in raw[section]:
                raise ConfigError(f"--set {item!r}: unknown setting {key!r}")
            hint = _field_types(type(getattr(self, section)))[name]
            raw[section][name] = _coerce(value.strip(), hint, item)
        return ExperimentConfig.from_dict(raw, "--set")


# What `s2s train --task NAME` sets before --set: the settings that the task's benchmarks
# measured (benchmarks/headline_quality.py runs the README recipe, which uses --task), so a
# user who runs the README's short command gets them without copying a dozen flags.
# Headlines: Chinese as characters and English words whole (`chars`), numbers and names
# restored verbatim (placeholders), copying for words outside the vocabulary, the lead of
# the article (the first 100 tokens), the best epoch picked by validation ROUGE-L rather
# than loss. Coverage (`model.coverage`) is not in it: See et al. (2017) found that training
# with it from the first step hurts the main objective (they add it in a final phase), and
# short budgets are all first phase; the decoder's n-gram blocking (tuned per bundle by
# `s2s tune-decoding`) is what stops repetition here.
# Every task: the plateau schedule, which after an epoch that did not lower the validation
# loss goes back to the lowest-loss epoch's weights (`train.plateau_rewind`) and halves the
# rate. On small chat corpora the validation loss rises right after its minimum; from the
# best weights at half or a quarter of the rate it went lower (LCCC, benchmarks/results/
# chat_time_to_loss_lccc.json); on large ones the budget ends training before any stall.
PLATEAU = ("train.lr_schedule=plateau",)
TASK_PRESETS: dict[str, tuple[str, ...]] = {
    # a sampled softmax of 1,024 words: on the chat-en recipe's corpus 1.37x the batches in
    # the same minutes and a lower (exact) validation loss after 7 of them, the same at 20
    # (chat-zh learns less an epoch with it and ends its 20 minutes higher, so its recipe
    # sets train.sampled_softmax=0); and no input feeding, so the decoder's recurrence runs
    # over the whole reply at once instead of a step at a time: more batches in the same
    # minutes again, each epoch's validation loss no higher (docs/BENCHMARKS.md "Epochs in
    # a recipe's 20 minutes"); and the bundle is the weights' moving average, which ended
    # the chat-en and chat-zh recipes' 20 minutes lower ("A moving average of the weights")
    "chat": ("data.task=chat", *PLATEAU, "train.sampled_softmax=1024",
             "model.input_feeding=false", "train.ema_decay=0.999"),
    "lm": ("data.task=lm", *PLATEAU),  # companion of a chat model for MMI anti-LM re-ranking
    "headline": (
        "data.task=headline",
        "tokenizer.kind=chars",
        "tokenizer.placeholders=true",
        "vocab.min_freq=2",
        "vocab.max_size=12000",
        "model.embedding_dim=128",
        "model.dropout=0.2",
        "model.copy=true",
        "train.learning_rate=0.002",
        # the budget or patience ends training, not a fixed epoch count (a fast machine fits
        # more than 10 epochs of LCSTS in 20 min)
        *PLATEAU,
        "train.epochs=30",
        "train.max_source_length=100",
        "train.max_target_length=30",
        "train.select_by=rouge",
    ),
}


def task_preset(task: str) -> tuple[str, ...]:
    """The `section.key=value` settings of a task preset (ConfigError for an unknown task)."""
    try:
        return TASK_PRESETS[task]
    except KeyError:
        raise ConfigError(
            f"unknown task {task!r}; choose one of {', '.join(TASK_PRESETS)}"
        ) from None


def check_file_or_task(config_file: object, task: str | None) -> None:
    """A ConfigError for a config file and a task preset given together: the preset would go
    on top of the file, silently replacing what it sets (`s2s train` and `nlp.api` alike)."""
    if config_file and task:
        raise ConfigError(
            f"config {config_file} and task {task}: give one (a task's preset would replace "
            "settings the file holds); overrides (--set) change single settings on top of "
            "either")


def dataclass_from_json(cls: type[T], text: str, origin: str) -> T:
    """The dataclass `cls` saved as JSON `text`, by the rules of every config file here: a
    missing key takes its default (a file from before the key existed), an unknown key or a
    value of the wrong type is a `ConfigError` naming `origin` rather than a silently
    different model."""
    return _from_dict(cls, _parse_json(text, origin), origin)


def _parse_json(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}: line {exc.lineno}: invalid JSON: {exc.msg}") from exc


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(text: str, hint: Any, where: str) -> Any:
    try:
        if hint is bool:
            lowered = text.lower()
            if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(text)
            return lowered in {"true", "1", "yes"}
        if hint in (int, float, str):
            return hint(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: {text!r} is not a valid {hint.__name__}") from exc
    raise ConfigError(f"{where}: cannot set a value of type {hint}")


# Settings that were tried and removed, with the value that meant "off". A bundle saved while
# one existed still loads: its weights are what they are, and no such setting changes how a
# trained model decodes. Only a run that trains on from such a bundle with the setting on loses
# it, which it is warned of.
REMOVED_SETTINGS: dict[tuple[str, str], object] = {
    ("model", "word_dropout"): 0.0,  # word dropout, 9aca82e
}


def _renamed(raw: Any, origin: str) -> Any:
    """Configs saved by older code, in today's names (bundles outlive code).

    `train.mixed_precision` (bool, float16 on a GPU) became `train.precision`; the settings
    of `REMOVED_SETTINGS` are dropped."""
    if not isinstance(raw, dict):
        return raw
    raw = dict(raw)
    for (section, key), off in REMOVED_SETTINGS.items():
        values = raw.get(section)
        if isinstance(values, dict) and key in values:
            values = dict(values)
            value = values.pop(key)
            raw[section] = values
            if value != off:
                warnings.warn(
                    f"{origin}: {section}.{key}={value!r} is no longer a setting (tried and "
                    "removed); a run training on from this config goes on without it",
                    stacklevel=3,
                )
    train = raw.get("train")
    if not isinstance(train, dict) or "mixed_precision" not in train:
        return raw
    train = dict(train)
    legacy = train.pop("mixed_precision")
    train.setdefault("precision", "float16" if legacy is True else "auto")
    return {**raw, "train": train}


def _from_dict(cls: type[T], raw: Any, origin: str) -> T:
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected an object for {cls.__name__}")
    hints = _field_types(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{origin}: unknown keys for {cls.__name__}: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _from_dict(hint, value, f"{origin}:{name}")  # type: ignore[arg-type]
        else:
            values[name] = _check_type(value, hint, f"{origin}:{name}")
    return cls(**values)


def _check_type(value: Any, hint: Any, where: str) -> Any:
    if isinstance(hint, types.UnionType):
        hint = next(h for h in typing.get_args(hint) if h is not type(None))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
