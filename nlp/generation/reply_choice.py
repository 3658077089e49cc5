"""What chooses a chat's reply under some decode options: the one definition of the modes.

Why a definition of its own: the decode options name many settings, and which of them matter
depends on a few others. With `generated=False` the decoder never runs for a plain model, so
a beam size or a temperature changes nothing; saying "beam search, beam size 5" to the user
then describes a bot that does not exist. Every description of how replies are chosen (the
chat's and the bot's words in each language, `nlp.chat.messages`; the compact line the
commands print, `nlp.generation.decode_args.describe_options`; `s2s serve`'s model list and
`nlp.api`) starts from `reply_choice`, and the generator decides with it whether to decode.

A new mode is a name in `REPLY_MODES` and its condition in `reply_choice`; each table of
`nlp.chat.messages` must then say it in its language (a table without it does not construct).
"""

from __future__ import annotations

from dataclasses import dataclass

from nlp.decoding.options import POST_RANKERS, DecodeOptions
from nlp.util.config import DataConfig

# The model's own replies only (its n-best or samples, ranked).
GENERATED = "generated"
# Only what people wrote to the training posts nearest the message: the decoder never runs.
# With a `retrieved_threshold` the ones whose fit reaches it compete where any does, else all
# (`nlp.generation.retrieved_fit.competing`, with no reply of the model's to fall back on).
RETRIEVED = "retrieved"
# Both compete, and the ranker chooses among them.
EITHER = "either"
# A retrieved reply where its fit (`nlp.generation.retrieved_fit`) reaches
# `retrieved_threshold`, the model's own elsewhere.
GATED = "gated"
# Neither: the model does not generate and nothing is retrieved, so every reply is the
# chat's fallback line (`nlp.chat.responder.falls_back`).
NOTHING = "nothing"
REPLY_MODES: tuple[str, ...] = (GENERATED, RETRIEVED, EITHER, GATED, NOTHING)


@dataclass(frozen=True)
class ModelReads:
    """What a chat model reads beside the message, which changes what its own replies are and
    how they are said: a retrieved reply (`refines`: `data.retrieve_refine`; its decoder runs
    even with `generated=False`, since its replies are refined, not generated alone) and a
    specificity marker (`controls`: `data.specificity_buckets`; the reply is asked to be as
    specific as `DecodeOptions.specificity`)."""

    refines: bool = False
    controls: bool = False

    @classmethod
    def of(cls, data: DataConfig) -> ModelReads:
        return cls(data.retrieve_refine, data.controls_specificity)


PLAIN = ModelReads()  # a model that reads the message (and earlier turns) alone


@dataclass(frozen=True)
class ReplyChoice:
    """What chooses the reply: the `mode`, how many retrieved replies compete, which ranker
    orders the candidates (`DecodeOptions.rerank`), the fallback threshold (0: none), and
    whether the model's own replies are written by reading a retrieved one (`refines`), and
    the fit from which a retrieved reply is preferred (`GATED`: to the model's own;
    `RETRIEVED`: to the retrieved replies below it; 0 elsewhere)."""

    mode: str
    retrieved: int
    ranker: str
    fallback_threshold: float
    refines: bool = False
    retrieved_threshold: float = 0.0

    @property
    def decodes(self) -> bool:
        """Whether the decoder runs, so that its settings (strategy, beam, temperature,
        lengths) change the reply."""
        return self.mode in (GENERATED, EITHER, GATED)


def reply_choice(options: DecodeOptions, reads: ModelReads = PLAIN) -> ReplyChoice:
    """The choice `options` make for a model that `reads` what it reads beside the message."""
    refines = reads.refines
    decodes = options.generated or refines
    if decodes and options.retrieve and options.retrieved_threshold:
        mode = GATED
    elif decodes:
        mode = EITHER if options.retrieve else GENERATED
    else:
        mode = RETRIEVED if options.retrieve else NOTHING
    # a ranker of the posts retrieved replies answered orders nothing among the model's own
    # replies alone: there the decoder's order stands (`rankers`), and is what is said
    ranker = "none" if not options.retrieve and options.rerank in POST_RANKERS else options.rerank
    return ReplyChoice(mode, options.retrieve, ranker, options.fallback_threshold,
                       refines,
                       options.retrieved_threshold if mode in (GATED, RETRIEVED) else 0.0)


# Said where the options, not the text, leave no output (a heatmap of nothing)
NOTHING_TO_SEND = ("these options neither write nor retrieve a reply (generated false, "
                   "retrieve 0): there is nothing to draw")


def yields_nothing(options: DecodeOptions, reads: ModelReads = PLAIN) -> bool:
    """Whether `options` can give no candidate whatever the text: no decoding for a model
    that `reads` what it reads, and nothing retrieved."""
    return reply_choice(options, reads).mode == NOTHING
