"""What the caller asks of the decoder: one plain dataclass, free of TensorFlow.

The bot, the CLI and the headline script build `DecodeOptions` (argparse choices come from
`STRATEGY_NAMES`) without importing TensorFlow, so this module must stay TF-free; the
strategies themselves live in `nlp.decoding.strategies`, which checks that its registry covers
exactly these names.
"""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields
from typing import Any

STRATEGY_NAMES: tuple[str, ...] = ("greedy", "beam", "sample", "diverse_beam")
# How the candidates (the n-best list, and the retrieved replies with `retrieve`) are ranked
# after decoding, by the generator (`nlp.generation.ranking`): none (the decoder's own score),
# likelihood (the chat model's log-probability per reply token), MMI with a companion
# (`nlp.generation.mmi`), the dual encoder's fit of reply to message (`nlp.ranking`), that
# fit plus the reply's BM25 overlap with the message (`nlp.generation.candidates.fused`), or
# the retrieval's own order: how well the post a retrieved reply answered matches the message,
# or a pretrained sentence encoder's reading of retrieved replies and their posts
# (`nlp.ranking.sentence_encoder`).
RETRIEVAL = "retrieval"
SENTENCE_ENCODER = "sentence-encoder"
# The rankers that read the post each retrieved reply answered (the index must keep posts)
POST_RANKERS: tuple[str, ...] = (RETRIEVAL, SENTENCE_ENCODER)
RERANK_NAMES: tuple[str, ...] = (
    "none", "likelihood", "mmi-antilm", "mmi-bidi", "dual-encoder", "dual-encoder+bm25",
    RETRIEVAL, SENTENCE_ENCODER)
MODEL_SETTING = "default: the model's setting"
# Whether decoding compiles with XLA unless told otherwise (`--xla`, `jit_compile=`): off.
# XLA is faster per sentence (measured in `nlp.decoding.decoder.Decoder`) but compiles once per
# batch size, length bucket and max_length (seconds each): worth it for long batch jobs, not
# for a chatbot's first replies or for tests, where every call is a first one.
XLA_BY_DEFAULT = False
# The most any integer option may be: the compiled decoder takes them as int32 scalars (and
# sizes its loops with them), so a larger one would overflow before it could mean anything.
INT_MAXIMUM = 2**31 - 1
# The most a request from someone else (`s2s serve`, a chat user) may ask of the options that
# set how long decoding runs (lengths, and the n-grams and minimum they bound).
SERVED_MAX_LENGTH = 200


class OptionError(ValueError):
    """A decoding option that is unknown, out of range, contradicts another or asks for what
    the model lacks, the message naming it: the command line prints it, the HTTP server
    answers it as a 422 and `nlp.api` raises it to its caller.

    `reason` is what is wrong, for anyone; `remedy` (may be empty) is what the machine's
    owner would run to change it (`s2s index ...`), which a chat's user or an HTTP client
    cannot do, so they read the reason alone (`nlp.chat.messages.public_reason`)."""

    def __init__(self, reason: str, remedy: str = "") -> None:
        super().__init__(f"{reason}; {remedy}" if remedy else reason)
        self.reason, self.remedy = reason, remedy

    def __reduce__(self) -> tuple[type[OptionError], tuple[str, str]]:
        return type(self), (self.reason, self.remedy)  # across processes (Beam workers)


def option(
    default: object,
    help: str | None = None,
    *,
    tensor: str | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    served: int | None = None,
) -> Any:
    """A `DecodeOptions` field and everything else that follows from it, in one place.

    `help`: the field has its own command-line flag (`nlp.generation.decode_args`), ``--field-name``
    unless `flag` names another; a bool field's flag is a switch both ways (`--flag`,
    `--no-flag`): `--flag` sets True when named after the field, else (`--allow-unk`) the
    opposite of the default. Fields without help are set through the strategy flags (--beam,
    --greedy, --sample, --diverse-beam). `tensor`: a numeric option fed to the compiled
    decoder as a scalar of this dtype (`nlp.decoding.params.DecodeParams`), so changing it
    never retraces; the other fields change the graph's structure or are read outside it.
    `minimum` and `maximum`: the option's range (every number has one), which `validate`
    holds every caller to; a float must also be finite. `served`: where the cost of decoding
    grows with the option, the lower maximum someone else's request may ask for
    (`option_maximums`).
    """
    metadata = {"help": help, "tensor": tensor, "flag": flag, "metavar": metavar,
                "choices": choices, "minimum": minimum, "maximum": maximum, "served": served}
    return field(default=default, metadata={k: v for k, v in metadata.items() if v is not None})


@dataclass
class DecodeOptions:
    """How to decode. Structural fields (strategy, beam_size, n_best, no_repeat_ngram) pick a
    compiled graph; the fields marked `tensor` are fed to it as tensors, so changing them is
    free. A new option is one field here: its flag and its graph input follow."""

    strategy: str = option("beam")  # greedy | beam | sample | diverse_beam
    beam_size: int = option(  # diverse_beam: all groups together
        5, minimum=1, maximum=INT_MAXIMUM, served=16
    )
    beam_groups: int = option(  # diverse_beam: G groups of beam_size / G hypotheses each
        1, minimum=1, maximum=INT_MAXIMUM, served=16  # a beam is whole groups (`beam_in_groups`)
    )
    diversity_penalty: float = option(  # diverse_beam: lambda per earlier group's use of a token
        0.0, "diverse beam: penalty per earlier group's token", tensor="float32",
        minimum=0.0, maximum=100.0,  # log-probability units: 100 already forbids
    )
    temperature: float = option(  # below 0.01 sampling is greedy search, and far below it
        1.0, tensor="float32", minimum=0.01, maximum=5.0  # float32 overflows; beyond 5: noise
    )
    top_k: int = option(  # 0 = no top-k filter
        0, "sampling: only the K best tokens (0: all)", tensor="int32",
        minimum=0, maximum=INT_MAXIMUM,
    )
    top_p: float = option(  # 1.0 = no nucleus filter
        1.0, "sampling: nucleus mass P (1: all)", tensor="float32", minimum=0.01, maximum=1.0
    )
    seed: int | None = option(  # None = a fresh random seed per call
        None, "sampling: seed for repeatable output", flag="--sample-seed",
        minimum=0, maximum=INT_MAXIMUM,
    )
    max_length: int = option(
        30, f"at most this many output tokens ({MODEL_SETTING})", tensor="int32",
        minimum=1, maximum=INT_MAXIMUM, served=SERVED_MAX_LENGTH,
    )
    max_length_ratio: float = option(  # 0 = absolute only; else min(max_length, ceil(ratio*src))
        0.0, "also at most RATIO x source length tokens (0: off)", tensor="float32",
        minimum=0.0, maximum=100.0,
    )
    min_length: int = option(
        0, "the end token is suppressed before this many tokens", tensor="int32",
        minimum=0, maximum=INT_MAXIMUM, served=SERVED_MAX_LENGTH,
    )
    length_penalty: float = option(  # GNMT alpha; at 10 a 200-token output's divisor is 1e15
        0.0, "GNMT length penalty alpha (0: off; 0.6-1.0 favours longer outputs)",
        tensor="float32", minimum=0.0, maximum=10.0,
    )
    coverage_penalty: float = option(  # GNMT beta
        0.0, "GNMT coverage penalty beta (0: off)", tensor="float32", minimum=0.0, maximum=10.0
    )
    # Weighted decoding (See et al. 2019): each word's log-probability plus W x its rarity
    # (`nlp.decoding.constraints.rarity`) at every step, so the search prefers rarer words,
    # the ones a specific reply is made of, over the generic replies the model finds likeliest
    rare_word_weight: float = option(
        0.0, "add W x each word's rarity (0 for the commonest, 1 for the rarest) to its "
        "log-probability at every step (0: off)", tensor="float32", metavar="W",
        minimum=0.0, maximum=100.0,  # log-probability units: 100 already decides alone
    )
    # Conditional training on specificity (See et al. 2019; `nlp.control`): a model trained
    # with `data.specificity_buckets` reads the marker of the bucket holding this quantile of
    # its training replies' specificity, and writes a reply as specific as theirs
    specificity: float = option(
        0.7, "models trained on specificity buckets: write as specifically as this quantile "
        "of the training replies (0: the most generic, 1: the most specific)", metavar="Q",
        minimum=0.0, maximum=1.0,
    )
    no_repeat_ngram: int = option(
        0, "never produce the same N-gram twice in one output (0: off)", metavar="N",
        minimum=0, maximum=INT_MAXIMUM, served=SERVED_MAX_LENGTH,
    )
    suppress_unk: bool = option(
        True, "let the decoder emit <unk>", tensor="bool", flag="--allow-unk"
    )
    n_best: int = option(  # sampling: K draws
        1, "keep the K best outputs", minimum=1, maximum=INT_MAXIMUM, served=16
    )
    # Re-ranking of the n-best list (Li et al. 2016; the decoder itself ignores these):
    # mmi-antilm: log p(T|S) - mmi_lambda * log p_lm(first mmi_gamma tokens of T) + bonus*|T|
    # mmi-bidi:   log p(T|S) + mmi_lambda * log p(S|T) / |S| + bonus*|T|
    # (with mmi_per_token each term normalised once, by the tokens it sums over:
    # log p(T|S) / |T|, the LM's mean over the penalised tokens; see nlp.generation.mmi)
    rerank: str = option(
        "none", "rank the candidates: likelihood, MMI (needs the companion LM or reverse "
        "model), the dual encoder, or it with BM25, or retrieval: retrieved replies by how "
        "well the post each answered matches the message (these need the model's own)",
        choices=RERANK_NAMES,
    )
    # The replies of the training posts nearest the message (BM25, the bundle's index) join
    # the candidates; ranking then chooses among generated and retrieved replies alike.
    retrieve: int = option(
        0, "also rank the replies of the K training posts nearest the message (0: none; "
        "needs the model's retrieval index)", metavar="K", minimum=0, maximum=INT_MAXIMUM,
        served=50,
    )
    mmi_lambda: float = option(
        0.5, "MMI: weight of the companion score", minimum=0.0, maximum=100.0
    )
    mmi_gamma: int = option(  # 0 = every token of T
        0, "MMI anti-LM: penalise only the first N tokens (0: all)",
        minimum=0, maximum=INT_MAXIMUM,
    )
    length_bonus: float = option(
        0.0, "MMI: bonus per reply token", minimum=-100.0, maximum=100.0
    )
    # The sum favours short replies (fewer log-probabilities added up); per token is how
    # Hits@1 scores candidates (`nlp.metrics.hits`), so weights it chose rank alike here.
    mmi_per_token: bool = option(
        False, "MMI: rank by the score per reply token (as Hits@1 scores), not its sum"
    )
    # The model's own n-best ordered by PMI with the message before anything else ranks it
    # (`nlp.generation.pmi`): what the retrieved-or-generated gate and a chat without
    # re-ranking send of the model's; a ranker that scores every candidate itself
    # (likelihood, MMI, the dual encoder, none with retrieved replies) orders them its way.
    pmi_weight: float = option(
        0.0, "order the model's own replies by log p(T|S) - W log p(T) per token, p(T) the "
        "model's mean over a fixed sample of its training posts (needs the retrieval index; "
        "0: by the decoder's score)", metavar="W", minimum=0.0, maximum=10.0,
    )
    bm25_weight: float = option(
        1.0, "dual-encoder+bm25: weight of the BM25 score, scaled to the best candidate's",
        minimum=0.0, maximum=100.0,
    )
    # Which candidates a chat may send, and when it sends none of them: people rated every
    # generated reply the bot sent nonsense, and a keyword match in the wrong sense is no
    # better. Without a retrieved candidate (none found, `retrieve` 0) there is then nothing
    # to send but the fallback (`nlp.chat.responder.choose_reply`).
    generated: bool = option(
        True, "let replies the decoder wrote alone compete (--no-generated: only retrieved "
        "replies, and a retrieve-and-refine model's refined ones, compete; with "
        "--retrieved-threshold P, only the retrieved ones reaching P where any does; with "
        "none, the fallback reply)",
    )
    # Retrieved or generated: a retrieved reply fits where its post says what the message
    # says, and elsewhere the model's own reply is the more sensible one
    # (`nlp.generation.retrieved_fit`, `nlp.chat.responder.choose_reply`). Without the model's
    # own (`generated` off), the fit still says which retrieved replies probably make sense,
    # so those go first; turning every one away would leave the fallback, which is
    # `fallback_threshold`'s to decide.
    retrieved_threshold: float = option(
        0.0, "chat: send a retrieved reply only when its fit (its share of its and the model's "
        "own reply's expected ratings, from how well its post matches the message, calibrated "
        "on rated replies; 0.5: equal) reaches P, else the model's own reply; with "
        "--no-generated, the retrieved replies that reach P where any does, else any of them "
        "(0: the ranking alone decides)",
        metavar="P", minimum=0.0, maximum=1.0,
    )
    fallback_threshold: float = option(
        0.0, "chat: send a sensible fallback reply instead when no candidate's probability "
        "of being the fitting reply (the ranker's score as s2s tune-decoding calibrated it) "
        "reaches P (0: never)", metavar="P", minimum=0.0, maximum=1.0,
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise OptionError (a ValueError) naming the first bad field (also called again by
        the decoder, since the dataclass is mutable)."""
        if self.strategy not in STRATEGY_NAMES:
            raise OptionError(
                f"unknown decoding strategy {self.strategy!r}; choose one of "
                f"{', '.join(STRATEGY_NAMES)}"
            )
        if self.rerank not in RERANK_NAMES:
            raise OptionError(
                f"unknown re-ranking {self.rerank!r}; choose one of {', '.join(RERANK_NAMES)}"
            )
        for item in fields(self):
            if "minimum" in item.metadata:
                _check_range(item, getattr(self, item.name))
        if self.min_length > self.max_length:
            raise OptionError(
                f"min_length ({self.min_length}) must not exceed max_length ({self.max_length})"
            )
        if self.no_repeat_ngram > self.max_length:
            # The decoder's history buffer holds max_length tokens; a longer n-gram cannot
            # occur in it (and its windows would not fit the buffer).
            raise OptionError(
                f"no_repeat_ngram ({self.no_repeat_ngram}) must not exceed max_length "
                f"({self.max_length}): an output that short has no such n-gram to repeat"
            )
        if self.strategy == "greedy" and self.n_best != 1:
            raise OptionError("greedy search yields one hypothesis: n_best must be 1")
        if self.strategy == "diverse_beam" and self.beam_size % self.beam_groups:
            raise OptionError(
                f"beam_size ({self.beam_size}) must be a multiple of beam_groups "
                f"({self.beam_groups})"
            )
        if self.strategy in ("beam", "diverse_beam") and self.n_best > self.beam_size:
            raise OptionError(
                f"n_best ({self.n_best}) must not exceed beam_size ({self.beam_size})"
            )


def _check_range(item: Field[Any], value: object) -> None:
    """OptionError unless `value` is a number in the field's range (an integer for an int
    field, which also takes None where that is its default)."""
    if value is None and item.default is None:
        return
    low, high = item.metadata["minimum"], item.metadata["maximum"]
    if item.type == "float":  # the annotation as written (this module's annotations are lazy)
        if not _finite(value) or not low <= value <= high:
            raise OptionError(f"{item.name} must be in [{low:g}, {high:g}], got {value!r}")
    elif not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise OptionError(f"{item.name} must be an integer in [{low}, {high}], got {value!r}")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def beam_in_groups(beam_size: int, groups: int) -> int:
    """A diverse beam's width: `beam_size` rounded down to whole groups, one row each at least."""
    return groups * max(1, beam_size // groups)


def rows_per_input(options: DecodeOptions) -> int:
    """Rows of the decoding loop one input takes: its samples, its beam, or one. The one
    definition of a strategy's `width` (`nlp.decoding.strategies` builds each strategy with
    it), here because it must stay TensorFlow-free for code that plans batches without
    loading it (the bot's warm-up)."""
    if options.strategy == "sample":
        return options.n_best
    if options.strategy in ("beam", "diverse_beam"):
        return options.beam_size
    return 1


def option_ranges() -> dict[str, tuple[int | float, int | float]]:
    """Field name -> (minimum, maximum) of every numeric option: what `validate` accepts from
    anyone (the command line, `nlp.api`, a bundle's settings)."""
    return {
        f.name: (f.metadata["minimum"], f.metadata["maximum"])
        for f in fields(DecodeOptions) if "minimum" in f.metadata
    }


def option_maximums() -> dict[str, int | float]:
    """Field name -> the largest value a chat user (`/beam`, `/length`, `/sample`) or an HTTP
    request (`s2s serve`'s `decoding` object) may set: the option's `served` maximum where it
    has one, else the top of its range.

    Why the lower served ones: decoding time and memory grow with the beam, the length and the
    number of draws, and a model has one decoding thread, so one stranger's request for a beam
    of 100,000 would hold everyone's replies (or exhaust memory). `validate` does not enforce
    them: the command line's user owns the machine, and a bundle's tuned settings are the
    owner's too."""
    return {
        f.name: f.metadata.get("served", f.metadata["maximum"])
        for f in fields(DecodeOptions) if "minimum" in f.metadata
    }


def tensor_options() -> dict[str, str]:
    """Field name -> dtype name of the options fed to the compiled decoder as scalars."""
    return {f.name: f.metadata["tensor"] for f in fields(DecodeOptions) if "tensor" in f.metadata}
