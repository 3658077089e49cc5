"""`Model`: one trained bundle used from a program, through the code the commands run.

Why a class over the existing pieces rather than new ones: a headline here must be the
headline `s2s headlines` writes and a reply the reply `s2s chat` and the bot send. So the
model is loaded by `nlp.generation.loading.load_model` (the one loader), headlines are
decoded by the batch job's `decode_batch` in the job's batches, replies come from the
`ChatResponder` that `s2s chat`, `s2s bot` and `s2s serve` use (built by the same
`nlp.chat.setup.make_responder`), decoding overrides are resolved by `layered_options` (the rule
behind every decoding flag and the server's `decoding` objects), and reply scores are the
ones Hits@1 ranks by (`nlp.generation.reply_scores`).

Thread safety: a `Model` may be shared by threads and by asyncio tasks. Every call into the
network holds the model's lock (TensorFlow already uses every core inside one call, so
nothing is lost), the conversations' state lives in one event-loop thread of the model's
own, and a conversation answers its messages one at a time in the order they arrive. Outputs
do not depend on what else runs: headlines are decoded in the batches of their own call, and
a reply depends on the conversation's name, turn, context and settings (sampling is seeded
per conversation and turn, as in the bot), so concurrent use gives what the same calls give
one after another. One exception, kept from the bot: where several candidates compete (beam
search, re-ranking), a reply sent often lately in any conversation is penalised, so the
order of conversations can matter; `Model.load(..., shared_reply_memory=False)` removes it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import math
import os
import secrets
import threading
import warnings
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import numpy as np
import numpy.typing as npt
from anyio.from_thread import BlockingPortal

from nlp.api.errors import InputError, OptionError, TaskError
from nlp.chat.attention_plot import plot_text, render_attention_png, shown_tokens
from nlp.chat.batcher import BatchLimits
from nlp.chat.context import DialogueContext
from nlp.chat.messages import chat_messages
from nlp.chat.rerank import ReplyRanker, RerankWeights
from nlp.chat.responder import ChatResponder
from nlp.chat.settings import SETTING_NAMES, ChatSettings
from nlp.chat.setup import make_responder
from nlp.decoding.options import DecodeOptions
from nlp.generation.decode_args import describe_options, layered_options
from nlp.generation.decode_settings import DecodeSettings
from nlp.generation.loading import LoadedModel, load_model
from nlp.generation.reply_choice import NOTHING_TO_SEND, ModelReads, reply_choice, yields_nothing
from nlp.generation.text_generator import GuardedGenerator
from nlp.headlines.job import decode_batch
from nlp.headlines.readers import make_article
from nlp.headlines.writers import Result
from nlp.metrics.hits import DEFAULT_K

if TYPE_CHECKING:
    from nlp.generation.generator import Generator

PathLike = str | os.PathLike[str]
T = TypeVar("T")

# What each task's model does (as `s2s serve` answers per task); an "lm" model is a
# re-ranking companion and is used through the chat model that names it.
TASK_USES: dict[str, tuple[str, ...]] = {
    "chat": ("reply", "attention", "evaluate"),
    "headline": ("headlines", "attention", "evaluate"),
    "lm": ("evaluate",),
}

USE_NOUNS = {"headlines": "headlines", "reply": "replies", "attention": "attention pictures",
             "evaluate": "scores"}


@dataclass(frozen=True)
class Candidate:
    """One hypothesis: its text and its score (the decoder's, or the ranker's)."""

    text: str
    score: float


@dataclass(frozen=True)
class Headline:
    """The headline of one article, as `s2s headlines` writes it: the best candidate's text
    and score and the whole n-best list, or `error` (e.g. "empty article"), no headline and
    the score -inf, so results stay aligned with the articles."""

    headline: str
    score: float
    n_best: tuple[Candidate, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class ChatReply:
    """What the bot would send: text, or a picture (`/why`) with `text` as its caption;
    `provenance` says where a reply came from ("generated", "retrieved", "refined", or
    "fallback": no candidate was likely to fit, `DecodeOptions.fallback_threshold`; "" for a
    command's answer) and `pair` the training pair of a retrieved or refined one."""

    text: str
    provenance: str = ""
    pair: str = ""
    picture: bytes | None = None


@dataclass(frozen=True)
class ScoredReply:
    """One candidate reply and each ranker's score of it (higher is better): "likelihood"
    (the model's log-probability per reply token), "mmi-antilm" / "mmi-bidi" (with
    companions), "dual-encoder" (cosine) and "bm25" (when the bundle has them)."""

    text: str
    scores: Mapping[str, float]


@dataclass(frozen=True)
class Attention:
    """The attention of the output for one input: `weights[i, j]` is how much output token
    i attended to source token j. Tokens are shown as people read them (a placeholder as
    the string it stands for). `provenance` as in `ChatReply`: for a "retrieved" reply,
    which the model did not write, the weights are the model's while it reads the input and
    is fed the reply's tokens (teacher-forced, as when it scores the reply)."""

    text: str  # the output
    source_tokens: tuple[str, ...]
    output_tokens: tuple[str, ...]
    weights: npt.NDArray[np.float32]  # [len(output_tokens), len(source_tokens)]
    task: str = field(default="chat", repr=False)
    provenance: str = "generated"

    def png(self) -> bytes:
        """The heatmap `s2s attention` and `/why` draw, as PNG bytes."""
        return render_attention_png(
            self.source_tokens, self.output_tokens, self.weights,
            text=plot_text(self.task, self.provenance),
        )

    def save(self, path: PathLike) -> Path:
        """Write `png()` to `path` (what `s2s attention --out` writes); returns the path."""
        target = Path(path)
        target.write_bytes(self.png())
        return target


class _Portal:
    """anyio's blocking portal: an event loop in a thread of its own, where the responder's
    coroutines run, whichever thread or event loop the caller is in (the responder and its
    micro-batcher belong to one loop).

    Why not `anyio.from_thread.start_blocking_portal`: its thread is an executor's, which
    Python joins before `atexit` handlers run, so a program that never closes its model
    would hang at exit (the model's finalizer, which stops the portal, runs too late). Here
    the thread is a daemon."""

    def __init__(self) -> None:
        started: concurrent.futures.Future[BlockingPortal] = concurrent.futures.Future()

        async def serve() -> None:
            async with BlockingPortal() as portal:
                started.set_result(portal)
                await portal.sleep_until_stopped()

        def run() -> None:
            try:
                anyio.run(serve)
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                raise

        self.thread = threading.Thread(target=run, name="s2s-api-loop", daemon=True)
        self.thread.start()
        self.portal = started.result()

    def call(self, function: Callable[..., Awaitable[T]], *args: object) -> T:
        """`await function(*args)` in the portal's loop; RuntimeError when called from
        inside that loop (it would wait for itself)."""
        return self.portal.call(function, *args)

    async def acall(self, function: Callable[..., Awaitable[T]], *args: object) -> T:
        """`call` for a caller in another event loop, which stays free meanwhile."""
        return await asyncio.wrap_future(self.portal.start_task_soon(function, *args))

    def stop(self) -> None:
        self.portal.call(self.portal.stop)
        self.thread.join()


@dataclass
class _ChatLock:
    """A conversation's lock and how many of its messages hold or await it: kept only while
    one does, since a service that opens a conversation per user would otherwise keep a lock
    per name it ever saw (the responder's own state is bounded)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def _resolved(settings: DecodeSettings | None, *layers: Mapping[str, object]) -> DecodeOptions:
    """`layered_options`, every mistake an `OptionError` naming the option."""
    try:
        return layered_options(settings, *layers)
    except OptionError:
        raise
    except (TypeError, ValueError) as exc:  # a value of the wrong type
        raise OptionError(str(exc)) from exc


class Model:
    """A trained chat or headline model, loaded once, used from any thread or event loop.

    `Model.load(path)` takes a bundle directory or a training run directory (`RUN/model`).
    Decoding starts from the bundle's tuned settings (`decoding`), as every command does;
    `Model.load(path, decoding={...})` and the keyword overrides of each call change single
    options (`DecodeOptions`' field names, e.g. `beam_size=3, n_best=2`). Close it (or use
    `with`) to finish pending replies and stop its thread.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        overrides: Mapping[str, object] | None = None,
        state: PathLike = ":memory:",
        context_turns: int | None = None,
        max_batch: int = BatchLimits.max_batch,
        max_wait: float = BatchLimits.max_wait_ms / 1000.0,
        shared_reply_memory: bool = True,
    ) -> None:
        """Use `Model.load`; this wraps a model `load_model` already loaded, with the load's
        decoding `overrides` (`OptionError` for a bad one)."""
        self._loaded = loaded
        self._overrides = dict(overrides or {})
        self._options = _resolved(loaded.decoding, self._overrides)
        self._lock = lock = threading.Lock()
        # the responder's worker thread and the callers' threads never run the network at once
        # (`lock`, not `self`: the loop thread holds the guard, and a guard holding the model
        # would keep an unclosed model from ever being collected and its thread stopped)
        self._generator = GuardedGenerator(loaded.generator, lambda _: lock)
        self._chat_locks: dict[str, _ChatLock] = {}  # touched in the loop thread only
        self._closed = False
        self._loop = _Portal()
        make = functools.partial(
            make_responder,
            dataclasses.replace(loaded, generator=self._generator),
            self._options,
            state=os.fspath(state),
            context_turns=context_turns,
            batching=BatchLimits(max_batch, max_wait * 1000.0),
            ranker=None if shared_reply_memory else ReplyRanker(
                RerankWeights(global_frequency=0.0)
            ),
            warm_up=False,
        )
        try:
            self._responder: ChatResponder = self._loop.call(_in_loop, make)
        except BaseException:
            self._loop.stop()
            raise
        # closed by `close`, or when garbage-collected or at exit if never closed
        self._finalizer = weakref.finalize(self, _shut_down, self._loop, self._responder)

    @classmethod
    def load(
        cls,
        path: PathLike,
        *,
        decoding: Mapping[str, object] | None = None,
        companions: Sequence[PathLike] = (),
        state: PathLike = ":memory:",
        context_turns: int | None = None,
        xla: bool = False,
        max_batch: int = BatchLimits.max_batch,
        max_wait: float = BatchLimits.max_wait_ms / 1000.0,
        shared_reply_memory: bool = True,
    ) -> Model:
        """Load the bundle at `path` (or in the run directory `path`), checksums verified.

        `decoding`: overrides of the bundle's settings for every call (as decoding flags
        do); `companions`: LM / reverse bundles for MMI re-ranking (default: those the
        bundle names); `state`: an SQLite file keeping per-conversation settings across
        runs (default: kept in memory); `context_turns`: fewer earlier turns than the model
        was trained with; `xla`: compile the decoder with XLA; `max_batch`, `max_wait`: the
        replies' micro-batching, as in the bot; `shared_reply_memory`: the bot's penalty on
        a reply sent often lately in any conversation (False: each conversation's replies
        depend on itself alone, whatever the others were sent and in which order). Raises
        `BundleNotFoundError`, `ChecksumError` or `BundleError`, and `OptionError` for a bad
        override.
        """
        loaded = load_model(Path(path), [Path(c) for c in companions], jit_compile=xla)
        return cls(
            loaded, overrides=decoding, state=state, context_turns=context_turns,
            max_batch=max_batch, max_wait=max_wait, shared_reply_memory=shared_reply_memory,
        )

    # what the model is

    @property
    def task(self) -> str:
        """"chat", "headline" or "lm" (a re-ranking companion)."""
        return self._loaded.data.task

    @property
    def languages(self) -> tuple[str, ...]:
        """What the model reads, from its vocabulary: "zh" and/or "en"."""
        return self._loaded.languages

    @property
    def directory(self) -> Path | None:
        """The bundle directory (a run directory's `model/`)."""
        return self._loaded.directory

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The bundle's verified `metadata.json`: metrics, corpus hashes, versions."""
        return self._loaded.metadata

    @property
    def decoding(self) -> DecodeOptions:
        """The options every call starts from: the bundle's, with the load's overrides."""
        return dataclasses.replace(self._options)

    @property
    def decoding_origin(self) -> str:
        """Where the bundle's settings came from ("tuned by s2s tune-decoding: ...")."""
        settings = self._loaded.decoding
        return settings.origin if settings else "built-in defaults"

    @property
    def context_turns(self) -> int:
        """Earlier turns of a conversation fed to the model with each message."""
        return self._responder.context.turns

    def options(self, **overrides: object) -> DecodeOptions:
        """`decoding` with `overrides` merged as a decoding flag would merge them
        (`OptionError` for an unknown name, a bad value or a contradiction): the bundle's
        settings, the load's overrides, then these (`layered_options`)."""
        return _resolved(self._loaded.decoding, self._overrides, overrides)

    def describe(self, **overrides: object) -> str:
        """The one line the commands print about their decoding ("beam 5, ...")."""
        return describe_options(self.options(**overrides), ModelReads.of(self._loaded.data))

    def replies(self, **overrides: object) -> str:
        """What chooses a chat model's replies, in the words `/settings` uses ("Replies: one
        of the replies people wrote to the 10 training posts nearest your message, ...; the
        model does not generate."), with `overrides` merged as `options` merges them."""
        self._require("reply")
        words = chat_messages(self.languages)
        return words.replies_text(self.options(**overrides), ModelReads.of(self._loaded.data))

    # headlines

    def headlines(
        self, articles: Sequence[str], *, batch_size: int = 64, **decoding: object
    ) -> list[Headline]:
        """A `Headline` per article, in order: what `s2s headlines` writes for the same
        articles with the same options (decoded in the same batches of `batch_size`)."""
        self._require("headlines")
        if isinstance(articles, str):
            raise TypeError("articles: a list of texts, not one string")
        if batch_size < 1:
            raise OptionError(f"batch_size must be >= 1, got {batch_size}")
        options = self.options(**decoding)
        records = [make_article(i + 1, i, text) for i, text in enumerate(articles)]
        results: list[Result] = []
        for start in range(0, len(records), batch_size):
            results += decode_batch(self._generator, records[start : start + batch_size], options)
        return [_headline(result) for result in results]

    async def aheadlines(
        self, articles: Sequence[str], *, batch_size: int = 64, **decoding: object
    ) -> list[Headline]:
        """`headlines` for asyncio code: decoded in a worker thread, the loop stays free."""
        call = functools.partial(self.headlines, articles, batch_size=batch_size, **decoding)
        return await asyncio.to_thread(call)

    # chat

    def conversation(self, name: str | None = None) -> Conversation:
        """A conversation with its own context and settings. `name` identifies it: the same
        name continues the same conversation, and (as in the bot) seeds its sampling, so a
        conversation replayed under its name gets the same replies; default: a new random
        name."""
        self._require("reply")
        return Conversation(self, name if name is not None else secrets.token_hex(8))

    def score_replies(
        self, message: str, replies: Sequence[str], *, context: Sequence[str] = ()
    ) -> list[ScoredReply]:
        """Each reply to `message` (after the earlier turns `context`, oldest first) scored
        by every ranker the model has, as Hits@1 scores candidates (`s2s evaluate --metric
        hits`); MMI with the weights the bundle's tuning chose. In the order given."""
        self._require("reply")
        if isinstance(replies, str):
            raise TypeError("replies: a list of texts, not one string")
        from nlp.generation.reply_scores import score_replies

        post = self._encoder_input(message, context)
        with self._lock:
            scored = score_replies(self._real_generator(), post, replies)
        tables = scored.ranker_tables(self._options, self._loaded.decoding)
        tables["likelihood"] = tables.pop("model")
        return [
            ScoredReply(reply, {name: float(table[0, column]) for name, table in tables.items()})
            for column, reply in enumerate(replies)
        ]

    # attention

    def attention(self, text: str, **decoding: object) -> Attention:
        """The output for `text` and its attention, as `s2s attention` draws it (`png()`).
        `InputError` when no token of `text` is one the model reads."""
        self._require("attention")
        options = self.options(**decoding)
        [n_best] = self._generator.generate([text], options)
        if not n_best:
            if yields_nothing(options, ModelReads.of(self._loaded.data)):
                raise OptionError(NOTHING_TO_SEND)
            raise InputError(f"{text!r} has no tokens to attend to")
        best = self._generator.with_attention(n_best[0])
        return Attention(
            best.text,
            tuple(shown_tokens(best.source_tokens, best.slots)),
            tuple(shown_tokens(best.tokens, best.slots)),
            np.asarray(best.attention, dtype=np.float32),
            self.task,
            best.provenance,
        )

    # evaluation

    def evaluate(
        self,
        corpus: PathLike | Sequence[PathLike],
        metrics: Sequence[str] = ("loss",),
        *,
        corpus_format: str = "auto",
        limit: int = 0,
        hits_k: int = DEFAULT_K,
        hits_seed: int = 0,
        similarity_vectors: str = "auto",
        batch_size: int = 64,
        **decoding: object,
    ) -> dict[str, Any]:
        """What `s2s evaluate --metric M ...` prints, per metric: "loss", "accuracy",
        "exact", "bleu", "rouge", "chat" (what the bot sends) or "hits" (Hits@1 of
        `hits_k`: how often each ranker prefers a post's true reply to `hits_k - 1` others).
        `limit`: a seeded sample of that many pairs across conversations."""
        self._require("evaluate")
        from nlp.evaluation.evaluate import METRICS, evaluate_metrics
        from nlp.metrics.hits import HitsDraw
        from nlp.training.corpus_io import CorpusSpec, load_pairs

        unknown = [metric for metric in metrics if metric not in METRICS]
        if unknown or isinstance(metrics, str):
            raise OptionError(f"metrics: {unknown or metrics!r}; choose among {', '.join(METRICS)}")
        options = self.options(**decoding)
        spec = CorpusSpec(_paths(corpus), corpus_format)
        generator = self._real_generator()
        pairs = load_pairs(spec, generator.bundle.config.data)
        draw = HitsDraw(hits_k, hits_seed, limit)
        with self._lock:
            return evaluate_metrics(generator, pairs, metrics, options, batch_size, draw,
                                    similarity_vectors)

    # lifetime

    def close(self) -> None:
        """Finish the replies being decoded, close the settings file, stop the thread."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> Model:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # inside

    def _require(self, use: str) -> None:
        if self._closed:
            raise RuntimeError("the model is closed")
        if use in TASK_USES.get(self.task, ()):
            return
        if self.task == "lm":
            raise TaskError(f"{self.directory}: an lm model is a re-ranking companion; load "
                            "the chat model that names it (s2s companion)")
        raise TaskError(f"{self.directory}: a {self.task} model writes no {USE_NOUNS[use]}")

    def _real_generator(self) -> Generator:
        from nlp.generation.generator import Generator

        generator = self._loaded.generator
        if not isinstance(generator, Generator):
            raise TypeError("scoring needs a model loaded from a bundle")
        return generator

    def _encoder_input(self, message: str, context: Sequence[str]) -> str:
        """What the model reads for `message` after `context`: the last turns it was
        trained with, joined and sanitised as the responder joins a conversation's."""
        if isinstance(context, str):
            raise TypeError("context: a list of earlier turns, not one string")
        turns = self._responder.context.turns
        return DialogueContext(turns, self._loaded.data.turn_separator).join(context, message)

    async def _respond(self, name: str, message: str) -> ChatReply:
        # in the loop thread: one message of a conversation at a time, in arrival order
        chat = self._chat_locks.setdefault(name, _ChatLock())
        chat.users += 1
        try:
            async with chat.lock:
                reply = await self._responder.respond(name, message, is_admin=True)
        finally:
            chat.users -= 1
            if not chat.users:
                del self._chat_locks[name]
        return ChatReply(reply.text, reply.provenance, reply.pair, reply.photo)

    async def _settings(self, name: str, changes: Mapping[str, object]) -> ChatSettings:
        store = self._responder.store
        settings = store.get(name)
        if not changes:
            return settings
        unknown = sorted(set(changes) - set(SETTING_NAMES))
        if unknown:
            raise OptionError(
                f"unknown chat setting {unknown[0]!r}; known: {', '.join(SETTING_NAMES)}")
        try:
            return self._responder.change_settings(name, **changes)
        except OptionError:
            raise
        except (TypeError, ValueError) as exc:  # SettingsError: out of the range users may set
            raise OptionError(str(exc)) from exc

    async def _replies(self, name: str) -> str:
        return self._responder.replies_text(name)

    async def _unused(self, name: str) -> str | None:
        """What a change of `name`'s decoding settings is, where it has no effect (the
        decoder does not run), else None."""
        options = self._responder.chat_options(name)
        if reply_choice(options, ModelReads.of(self._loaded.data)).decodes:
            return None
        return self._responder.messages(name).unused_text(options)

    async def _history(self, name: str) -> list[str]:
        return self._responder.context.previous(name)

    async def _forget(self, name: str) -> None:
        self._responder.forget(name)


class Conversation:
    """One conversation with a chat model: context (the turns the model was trained to
    read) and settings of its own, answered by the bot's responder, commands included
    ("/beam 3", "/sample 0.8", "/why", "/reset"). Use from any thread (`reply`) or from
    asyncio (`await areply`); messages are answered one at a time, in order."""

    def __init__(self, model: Model, name: str) -> None:
        self.model = model
        self.name = name

    def reply(self, message: str) -> ChatReply:
        """The reply the bot would send to `message` in this conversation."""
        self.model._require("reply")
        return self.model._loop.call(self.model._respond, self.name, message)

    async def areply(self, message: str) -> ChatReply:
        """`reply` for asyncio code."""
        self.model._require("reply")
        return await self.model._loop.acall(self.model._respond, self.name, message)

    @property
    def settings(self) -> ChatSettings:
        """This conversation's decoding settings (strategy, beam_size, temperature,
        max_length), starting from the model's."""
        self.model._require("reply")
        return self.model._loop.call(self.model._settings, self.name, {})

    def configure(self, **changes: object) -> ChatSettings:
        """Change this conversation's settings, within the ranges a bot user may set
        (`OptionError` otherwise); as `/beam 3` etc. do. Returns the new settings. Where the
        model does not generate (only retrieved replies are sent) the settings are kept but
        change nothing, and a `UserWarning` says so, as `/beam 3` does."""
        self.model._require("reply")
        settings = self.model._loop.call(self.model._settings, self.name, changes)
        unused = self.model._loop.call(self.model._unused, self.name) if changes else None
        if unused is not None:
            warnings.warn(unused, UserWarning, stacklevel=2)
        return settings

    @property
    def replies(self) -> str:
        """What chooses this conversation's replies, as its `/settings` says it."""
        self.model._require("reply")
        return self.model._loop.call(self.model._replies, self.name)

    @property
    def history(self) -> list[str]:
        """The earlier turns the next message is read with (user and bot alternating)."""
        self.model._require("reply")
        return self.model._loop.call(self.model._history, self.name)

    def reset(self) -> None:
        """Forget the context and the last reply (`/reset`); settings stay."""
        self.reply("/reset")

    def forget(self) -> None:
        """Forget everything about this conversation, its settings included."""
        self.model._require("reply")
        self.model._loop.call(self.model._forget, self.name)


def _shut_down(loop: _Portal, responder: ChatResponder) -> None:
    try:
        loop.call(responder.aclose)
    finally:
        loop.stop()


async def _in_loop(make: functools.partial[ChatResponder]) -> ChatResponder:
    """Build the responder inside the loop that will run it."""
    return make()


def _headline(result: Result) -> Headline:
    if result.error:
        return Headline("", -math.inf, (), result.error)
    n_best = tuple(Candidate(c.headline, float(c.score)) for c in result.candidates)
    return Headline(n_best[0].text, n_best[0].score, n_best)


def _paths(corpus: PathLike | Sequence[PathLike]) -> tuple[Path, ...]:
    if isinstance(corpus, str | os.PathLike):
        return (Path(corpus),)
    return tuple(Path(path) for path in corpus)
