"""The bundles one server serves: `NAME=DIR` specs, loading, and what `/v1/models` shows.

Each served model gets its own `ChatResponder`, whose micro-batcher (one worker thread) is
also where the model's headline and attention requests are decoded: all of a model's
TensorFlow work goes through one queue and one thread, as in the bot, whatever the endpoint.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlp.chat.responder import ChatResponder, ResponderLimits
from nlp.chat.settings import ChatSettings, SettingsStore
from nlp.decoding import DecodeOptions
from nlp.decoding.options import XLA_BY_DEFAULT, option_maximums
from nlp.generation.decode_args import describe_options
from nlp.generation.decode_settings import DecodeSettings, recommended_options
from nlp.generation.loading import load_model
from nlp.generation.stage_clock import StageClock
from nlp.generation.text_generator import GuardedGenerator, TextGenerator
from nlp.serving.http.budget import REPLY_TOKENS, request_cost
from nlp.serving.http.config import ServeConfig

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# The endpoints each task answers (a chat model writes no headlines and the reverse).
TASK_ENDPOINTS: dict[str, tuple[str, ...]] = {
    "chat": ("chat", "attention"),
    "headline": ("headlines", "attention"),
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    directory: Path


def parse_model_spec(text: str) -> ModelSpec:
    """`NAME=DIR` -> ModelSpec; the name is what the URLs use, so it is kept URL-safe."""
    name, sep, directory = text.partition("=")
    if not sep or not directory:
        raise ValueError(f"--model {text!r}: expected NAME=DIR, e.g. news=runs/zh-headlines")
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"--model {text!r}: the name must be 1-64 letters, digits, '_', '.' or '-' "
            "starting with a letter or digit"
        )
    return ModelSpec(name, Path(directory))


def check_unique(specs: Sequence[ModelSpec]) -> None:
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"--model: the name {duplicates[0]!r} is given twice")
    if not specs:
        raise ValueError("give at least one --model NAME=DIR")


def _observing(observe: Callable[[int], None]) -> Callable[[int], AbstractContextManager[object]]:
    """The `GuardedGenerator` hook that reports every model call's batch size (to /metrics)."""

    def around(batch_size: int) -> AbstractContextManager[object]:
        observe(batch_size)
        return nullcontext()

    return around


@dataclass
class ServedModel:
    """One bundle as the server sees it."""

    name: str
    directory: Path
    task: str
    settings: DecodeSettings | None  # the bundle's decoding.json (None: built-in defaults)
    responder: ChatResponder
    generator: TextGenerator  # the one the responder calls (headline warm-up uses it too)
    metadata: dict[str, Any] = field(default_factory=dict)
    languages: tuple[str, ...] = ()
    clock: StageClock | None = None  # the generator's time per stage (/metrics)
    # The most tokens it scores a retrieved reply with: a request's cost reads it
    reply_tokens: int = REPLY_TOKENS

    @property
    def options(self) -> DecodeOptions:
        """The decoding every request starts from: the bundle's tuned settings."""
        return self.responder.base_options

    def cost(self, options: DecodeOptions, inputs: int = 1) -> int:
        """What `inputs` texts generated with `options` cost this model (`request_cost`): a
        retrieve-and-refine model decodes whatever `generated` says."""
        return request_cost(options, inputs, refines=self.responder.model_reads.refines,
                            reply_tokens=self.reply_tokens)

    @property
    def endpoints(self) -> tuple[str, ...]:
        return TASK_ENDPOINTS[self.task]

    def describe(self) -> dict[str, Any]:
        """The `/v1/models` entry: enough for a client to choose a model and its options;
        for a chat model, what chooses its replies in the words its `/settings` uses (which
        decode options matter depends on it)."""
        decoding = {
            "origin": self.settings.origin if self.settings else "built-in defaults",
            "summary": describe_options(self.options, self.responder.model_reads),
            "options": dataclasses.asdict(self.options),
            "maximums": option_maximums(),  # what a request's `decoding` may ask at most
        }
        if self.task == "chat":
            decoding["replies"] = self.responder.replies_text()
        return {
            "name": self.name,
            "task": self.task,
            "languages": list(self.languages),
            "endpoints": list(self.endpoints),
            "context_turns": self.responder.context.turns,
            "decoding": decoding,
            "metadata": public_metadata(self.metadata),
        }

    def warm_up(self) -> None:
        """Build the decoder graph for the default settings, and compile its code for every
        batch size the micro-batcher can form, before the first request: the responder's
        warm-up, whatever the task, since its batcher decodes headlines too."""
        self.responder.warm_up()


def load_served_model(
    spec: ModelSpec,
    config: ServeConfig,
    *,
    observe_batch: Callable[[int], None] = lambda size: None,
    jit_compile: bool = XLA_BY_DEFAULT,
) -> ServedModel:
    """Load one bundle (TensorFlow loads here) and build its responder.

    Per-conversation settings live in an in-memory SQLite store: conversations expire
    (`serve.conversations`), so there is nothing worth keeping across restarts.
    """
    loaded = load_model(spec.directory, jit_compile=jit_compile)
    directory = loaded.directory or spec.directory
    task = loaded.data.task
    if task not in TASK_ENDPOINTS:
        raise ValueError(
            f"--model {spec.name}={spec.directory}: a {task!r} model is not served (it is a "
            "companion for re-ranking); serve the chat or headline model that names it"
        )
    clock = getattr(loaded.generator, "clock", None)
    experiment = getattr(loaded.generator, "config", None)  # a bundle's ExperimentConfig
    reply_tokens = experiment.train.max_target_length if experiment else REPLY_TOKENS
    loaded = dataclasses.replace(
        loaded, generator=GuardedGenerator(loaded.generator, _observing(observe_batch))
    )
    base = recommended_options(loaded.decoding)
    responder = ChatResponder(
        loaded,
        store=SettingsStore(":memory:", ChatSettings.from_options(base),
                            max_cached=config.max_conversations),
        base_options=base,
        batching=config.batching,
        limits=ResponderLimits(
            max_input_chars=config.max_text_chars, max_chats=config.max_conversations
        ),
    )
    return ServedModel(
        spec.name, directory, task, loaded.decoding, responder, loaded.generator,
        dict(loaded.metadata), loaded.languages, clock, reply_tokens=reply_tokens,
    )


def public_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """What `/v1/models` shows of a bundle's `metadata.json`: what a client can use to choose
    and trust a model (when it was made, its task, how well it fitted its validation pairs,
    its context, its training data and word vectors by checksum), and no local paths.

    Why a list of what to keep rather than of what to drop: the corpus files, the validation
    files, the bundle it was retrained from and the vectors' file are paths of the server's
    disk, and a field added to the metadata later stays private until someone decides a
    client needs it."""
    shown = {key: metadata[key] for key in ("created", "task", "pairs", "recurrence", "metrics")
             if key in metadata}
    corpus = metadata.get("corpus", {}).get("train", [])
    shown["corpus_sha256"] = [entry["sha256"] for entry in corpus if "sha256" in entry]
    shown["retrained"] = "retrained_from" in metadata
    vectors = metadata.get("pretrained_embeddings")
    if vectors:
        shown["pretrained_embeddings"] = {
            key: vectors[key] for key in ("format", "sha256", "vocab_coverage", "token_coverage")
            if key in vectors
        }
    return shown
