"""The chat responder: one line of user text in, one reply out.

Both front ends (the Telegram bot and `s2s chat`) call `ChatResponder.respond`, so commands,
settings, context, input cleaning, batching and re-ranking behave identically in both.
Callers must not run two `respond` calls for the same chat at once (the bot serialises per
chat; the terminal is sequential): a chat's context is updated after its reply is chosen.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from nlp.chat.attention_plot import plot_text, render_attention_png
from nlp.chat.batcher import BatchLimits, MicroBatcher
from nlp.chat.context import DialogueContext
from nlp.chat.conversation_log import ConversationLog, Rating
from nlp.chat.messages import Messages, chat_messages, public_reason
from nlp.chat.rerank import ReplyRanker
from nlp.chat.settings import ChatSettings, SettingsError, SettingsStore
from nlp.chat.slash_commands import COMMAND_NAMES, Command, parse_command
from nlp.chat.text_input import (
    TELEGRAM_CAPTION_LIMIT,
    TELEGRAM_TEXT_LIMIT,
    InputKind,
    classify,
    fit_reply,
    keep_tail,
)
from nlp.decoding import DecodeOptions
from nlp.decoding.options import OptionError, rows_per_input
from nlp.decoding.row_buckets import warm_up_batch_sizes
from nlp.generation.loading import LoadedModel, ModelLoader
from nlp.generation.reply_choice import ModelReads
from nlp.generation.retrieved_fit import competing
from nlp.generation.text_generator import Generation, TextGenerator
from nlp.text.cleaning import clean_message
from nlp.text.normalize import normalize_text
from nlp.text.scripts import LANGUAGE_SCRIPTS, script_languages
from nlp.util.lru import MAX_CHATS, LruDict

log = logging.getLogger(__name__)

SLOW_COMMANDS = frozenset({"why", "reload"})


@dataclass(frozen=True)
class Reply:
    """What to send back: text, or a PNG picture with `text` as its caption."""

    text: str
    photo: bytes | None = None
    # a chat reply's `Generation.provenance` and training pair ("" for commands' replies)
    provenance: str = ""
    pair: str = ""


@dataclass(frozen=True)
class Caller:
    """Who sent a command, as the reply's wording depends on it."""

    admin: bool = False  # administers the bot: /reload
    private: bool = True  # the reply is read by the sender alone, not a group

    @property
    def owner(self) -> bool:
        """May read what only the machine's owner should: an `OptionError`'s remedy, which
        may name the server's directories."""
        return self.admin and self.private


@dataclass(frozen=True)
class ResponderLimits:
    max_input_chars: int = 1000  # longer messages keep their last part (see keep_tail)
    max_reply_chars: int = TELEGRAM_TEXT_LIMIT
    max_chats: int = MAX_CHATS  # chats remembered: context, recent replies, /why's reply


class ChatResponder:
    """Turns a chat message or command into a `Reply`, keeping per-chat state."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        store: SettingsStore,
        context_turns: int | None = None,
        ranker: ReplyRanker | None = None,
        base_options: DecodeOptions | None = None,
        conversation_log: ConversationLog | None = None,
        loader: ModelLoader | None = None,
        batching: BatchLimits | None = None,
        limits: ResponderLimits | None = None,
        options_for: Callable[[LoadedModel], DecodeOptions] | None = None,
    ) -> None:
        """`options_for`: the base options of a model (its bundle's decoding settings under
        the caller's flags), which /reload reads from the bundle it loads; without it a
        reloaded model decodes with `base_options`."""
        self._options_for = options_for
        self._generator: TextGenerator = model.generator
        self.languages = model.languages  # what the model reads: the chat's own words follow
        self.model_reads = ModelReads.of(model.data)  # what it reads beside the message
        self._directory = model.directory  # kept out of what a chat is told
        self._turns_override = context_turns
        self.limits = limits or ResponderLimits()
        self.context = self._make_context(model)
        self.store = store
        self.ranker = ranker or ReplyRanker(max_chats=self.limits.max_chats)
        self.base_options = base_options or DecodeOptions()
        self.log = conversation_log
        self._loader = loader
        self._reload_lock = asyncio.Lock()
        self.batcher: MicroBatcher[Generation] = MicroBatcher(
            self._generate, batching
        )
        self._last: LruDict[str, Generation] = LruDict(self.limits.max_chats)
        self._turns: LruDict[str, int] = LruDict(self.limits.max_chats)  # replies since /reset
        self._user_languages: LruDict[str, str] = LruDict(self.limits.max_chats)
        # a chat's stored settings the model could not decode with: its next reply says so
        self._gave_way: LruDict[str, DecodeOptions] = LruDict(self.limits.max_chats)
        # a front end's bound on the options a chat may set (the HTTP server's cost of one
        # request): raises OptionError, so `change_settings` refuses what exceeds it
        self.settings_bound: Callable[[DecodeOptions], None] | None = None
        self._commands: dict[str, Callable[[str, Command, Caller], Awaitable[Reply]]] = {
            name: getattr(self, f"_cmd_{name}") for name in COMMAND_NAMES
        }

    def warm_up(
        self, generator: TextGenerator | None = None, base: DecodeOptions | None = None
    ) -> None:
        """Build the decoder's graph for the default settings and compile its code for every
        batch the micro-batcher can form (`warm_up_batch_sizes`; seconds), so nobody who
        writes waits for a compile, and no compile under load lets the queue snowball. Runs
        before serving and on /reload. Without the gate: "hello" may find a retrieved reply
        that fits, and the generator then leaves the decoder out (`Generator.pools`)."""
        base = base or self.base_options
        options = ChatSettings.from_options(base).decode_options(base)
        target = generator or self._generator
        every_text = replace(options, retrieved_threshold=0.0)
        for size in warm_up_batch_sizes(self.batcher.max_batch, rows_per_input(options)):
            target.generate(["hello"] * size, every_text)

    def _make_context(self, model: LoadedModel) -> DialogueContext:
        """The bundle's context size (how its training pairs were built); a smaller
        `--context-turns` is allowed, a larger one would feed turns the model never saw."""
        trained = model.data.context_turns
        turns = trained if self._turns_override is None else self._turns_override
        if turns > trained:
            raise ValueError(
                f"--context-turns {turns}: the model was trained with {trained} earlier turns "
                "(data.context_turns in its config.json) and cannot read more"
            )
        return DialogueContext(turns, model.data.turn_separator, max_chats=self.limits.max_chats)

    def _generate(
        self, texts: list[str], options: DecodeOptions, seeds: list[int | None]
    ) -> Sequence[Sequence[Generation]]:
        # runs on the batcher's worker thread
        return self._generator.generate(texts, options, seeds)

    async def aclose(self) -> None:
        """Finish replies being decoded, write pending log records, close the state file."""
        await self.batcher.aclose()
        if self.log is not None:
            self.log.close()
        self.store.close()

    def is_slow(self, text: str) -> bool:
        """Whether answering `text` takes model or drawing time (worth a typing indicator,
        and the only answers the HTTP server charges to a client's budget)."""
        command = parse_command(clean_message(text))
        return command is None or command.name in SLOW_COMMANDS

    def messages(self, chat: str, user_language: str | None = None) -> Messages:
        """The words `chat` is spoken to in (`nlp.chat.messages.chat_messages`): the model's
        language, or the user's app language (`user_language`, else the one last given)."""
        return chat_messages(self.languages, user_language or self._user_languages.get(chat))

    async def respond(
        self,
        chat: str,
        text: str,
        *,
        is_admin: bool = False,
        language: str | None = None,
        private: bool = True,
    ) -> Reply:
        """The reply to one message or command from `chat`. Never raises for bad input.
        `is_admin`: the sender administers the bot (/reload); `private`: the reply is read by
        the sender alone (False in a group chat, where an admin's refused setting must not
        show the owner's remedy, which may name the server's directories, to everyone).
        `language`: the user's app language if the front end knows it (Telegram's
        language_code), kept for the chat."""
        if language:
            self._user_languages[chat] = language
        reply = await self._answer(chat, text, Caller(admin=is_admin, private=private))
        gave_way = self._gave_way.pop(chat, None)
        if gave_way is None:
            return reply
        notice = self.messages(chat).gave_way_text(gave_way)
        return replace(reply, text=f"{notice}\n\n{reply.text}")

    async def _answer(self, chat: str, text: str, caller: Caller) -> Reply:
        cleaned = clean_message(text)
        command = parse_command(cleaned)
        if command is not None:
            handler = self._commands.get(command.name)
            if handler is None:
                return Reply(self.messages(chat).unknown_command.format(name=command.name))
            return await handler(chat, command, caller)
        kind = classify(cleaned)
        if kind is InputKind.EMPTY:
            return Reply(self.messages(chat).empty)
        if kind is InputKind.NO_WORDS:
            return Reply(self.messages(chat).no_words)
        if not self.reads(cleaned):
            words = self.messages(chat)
            return Reply(words.foreign_script.format(
                languages=words.language_names(self.languages)))
        return await self._chat(chat, keep_tail(cleaned, self.limits.max_input_chars))

    def reads(self, text: str) -> bool:
        """False when the text has letters and none is in a script of the model's languages
        (Chinese to an English model, Russian to either). Why ask before decoding: the model
        would answer its unknown-word ids with a fluent guess ("Yes, it's overdo it."), which
        reads as if it understood. A model of unknown languages is given everything."""
        languages = set(self.languages)
        if not languages or not languages <= LANGUAGE_SCRIPTS.keys():
            return True
        text = normalize_text(text)  # as the model reads it: full-width "ｏｋ" is "ok"
        if not any(char.isalpha() for char in text):  # digits and symbols: the model's call
            return True
        return bool(script_languages(text) & languages)

    async def _chat(self, chat: str, message: str) -> Reply:
        message = self.context.sanitize(message)
        encoder_input = self.context.encoder_input(chat, message)
        if self.log is not None:
            self.log.user(chat, message)
        options = self.chat_options(chat)
        turn = self._turns.get(chat) or 0
        seed = chat_seed(chat, turn, options.seed) if options.strategy == "sample" else None
        try:
            candidates = await self.batcher.submit(encoder_input, options, seed)
        except Exception:
            log.exception("generation failed for a message of %d characters", len(message))
            return Reply(self.messages(chat).failure)
        fallback = (self.messages(chat).fallback_reply(message, chat, turn)
                    if falls_back(options) else None)
        chosen = choose_reply(self.ranker, chat, candidates, message, self.limits.max_reply_chars,
                              threshold=options.fallback_threshold, fallback=fallback,
                              retrieved_threshold=options.retrieved_threshold)
        if chosen is None:
            return Reply(self.messages(chat).no_idea)
        reply, best = chosen
        if self.log is not None:
            self.log.bot(chat, reply)
        self.context.add_exchange(chat, message, reply)
        self._last[chat] = best
        self._turns[chat] = turn + 1
        return Reply(reply, provenance=best.provenance, pair=best.pair)

    def chat_options(self, chat: str | None) -> DecodeOptions:
        """The options a message of `chat` (None: a new chat) is answered with: its settings
        over the base options. Where the model cannot decode with its stored settings (set
        under another model: a `/reload`ed bundle whose fallback threshold's calibration
        holds for the default beam only), the defaults, and the stored settings dropped, so
        the chat is answered rather than failing every message until it changes them; its
        next reply says which settings gave way (`respond`)."""
        settings = self.store.get(chat) if chat is not None else self.store.defaults
        try:
            self._check(settings)
        except OptionError as exc:
            assert chat is not None  # the defaults are never refused (`_check`)
            log.info("a chat's stored settings do not serve the model (%s): defaults used", exc)
            self.store.forget(chat)
            self._gave_way[chat] = settings.decode_options(self.base_options)
            settings = self.store.defaults
        return settings.decode_options(self.base_options)

    def _check(self, settings: ChatSettings) -> None:
        """Raise OptionError where the model cannot decode with `settings`; the defaults
        always serve (the warm-up decodes with them). Not remembered: the check is a few
        lookups, and `generate` repeats it for every batch anyway."""
        if settings != self.store.defaults:
            self._generator.check(settings.decode_options(self.base_options))

    def replies_text(self, chat: str | None = None) -> str:
        """What chooses the replies of `chat` (None: a new chat's), in its words
        (`Messages.replies_text`): what `s2s chat` and `s2s bot` say at start."""
        words = self.messages(chat) if chat is not None else chat_messages(self.languages)
        return words.replies_text(self.chat_options(chat), self.model_reads)

    def change_settings(self, chat: str, **changes: object) -> ChatSettings:
        """`chat`'s settings with `changes`, kept. Raises SettingsError for a value out of
        the range users may set, and OptionError for settings the model cannot decode with
        (`TextGenerator.check`: a fallback threshold calibrated for the default beam's
        n-best holds for no other) or beyond `settings_bound`, keeping the old ones. Why
        refuse now: stored, such a setting would make every later message of the chat fail,
        across restarts."""
        settings = self.store.get(chat).replace(**changes)
        self._check(settings)
        if self.settings_bound is not None:
            self.settings_bound(settings.decode_options(self.base_options))
        return self.store.update(chat, **changes)

    def _update(self, chat: str, caller: Caller, **changes: object) -> Reply:
        words = self.messages(chat)
        try:
            settings = self.change_settings(chat, **changes)  # checked: they serve
        except SettingsError as exc:
            return Reply(words.refused_setting(exc))
        except OptionError as exc:  # the owner runs the remedy; anyone else reads the reason
            reason = str(exc) if caller.owner else public_reason(exc, self._directory, "the model")
            return Reply(words.refused_options.format(reason=reason))
        options = settings.decode_options(self.base_options)
        return Reply(words.changed_text(options, self.model_reads))

    async def _cmd_start(self, chat: str, command: Command, caller: Caller) -> Reply:
        return Reply(self.messages(chat).start_text())

    async def _cmd_help(self, chat: str, command: Command, caller: Caller) -> Reply:
        return Reply(self.messages(chat).help_text())

    async def _cmd_reset(self, chat: str, command: Command, caller: Caller) -> Reply:
        self._forget_conversation(chat)
        if self.log is not None:
            self.log.reset(chat)
        return Reply(self.messages(chat).reset)

    def _forget_conversation(self, chat: str) -> None:
        self.context.reset(chat)
        self.ranker.forget(chat)
        self._last.pop(chat, None)
        self._turns.pop(chat, None)

    def forget(self, chat: str) -> None:
        """Drop everything kept about `chat`, its settings included: for front ends whose
        conversations expire (the HTTP server), so an idle one costs no memory or state."""
        self._forget_conversation(chat)
        self.store.forget(chat)
        self._user_languages.pop(chat, None)
        self._gave_way.pop(chat, None)

    async def _cmd_settings(self, chat: str, command: Command, caller: Caller) -> Reply:
        if command.args[:1] == ("default",):  # back to the model's own settings
            self.store.forget(chat)
        turns, words = self.context.turns, self.messages(chat)
        memory = words.memory.format(turns=turns) if turns else words.no_memory
        described = words.settings_text(self.chat_options(chat), self.model_reads)
        return Reply(f"{described} {memory}")

    async def _cmd_beam(self, chat: str, command: Command, caller: Caller) -> Reply:
        size = _parse_number(command.args, int)
        if size is None:
            return Reply(self.messages(chat).usage_beam)
        return self._update(chat, caller, strategy="beam", beam_size=size)

    async def _cmd_greedy(self, chat: str, command: Command, caller: Caller) -> Reply:
        return self._update(chat, caller, strategy="greedy")

    async def _cmd_sample(self, chat: str, command: Command, caller: Caller) -> Reply:
        if not command.args:
            return self._update(chat, caller, strategy="sample")
        temperature = _parse_number(command.args, float)
        if temperature is None:
            return Reply(self.messages(chat).usage_sample)
        return self._update(chat, caller, strategy="sample", temperature=temperature)

    async def _cmd_length(self, chat: str, command: Command, caller: Caller) -> Reply:
        length = _parse_number(command.args, int)
        if length is None:
            return Reply(self.messages(chat).usage_length)
        return self._update(chat, caller, max_length=length)

    async def with_attention(self, reply: Generation) -> Generation:
        """`reply` with the attention to draw (`TextGenerator.with_attention`: a retrieved
        reply's is the model's while scoring it teacher-forced), computed on the model's
        thread after the batches already queued, as every model call is."""
        if not reply.unwritten:
            return reply
        return await self.batcher.call(functools.partial(self._generator.with_attention, reply))

    async def _cmd_why(self, chat: str, command: Command, caller: Caller) -> Reply:
        last = self._last.get(chat)
        words = self.messages(chat)
        if last is None:
            return Reply(words.nothing_to_explain)
        note = words.provenance(last, self.chat_options(chat))
        if last.provenance == "fallback":  # the chat's own line: the model chose nothing
            return Reply(note)
        looked = words.looked_at
        if last.unwritten:  # no decoder wrote it: the model reading it
            looked = words.read_retrieved
            try:
                last = await self.with_attention(last)
            except Exception as exc:
                log.exception("scoring a retrieved reply for /why failed")
                return Reply(f"{note} {words.cannot_draw.format(error=type(exc).__name__)}")
        try:
            png = await asyncio.to_thread(
                functools.partial(render_attention_png, slots=last.slots,
                                  text=plot_text("chat", last.provenance)),
                last.source_tokens, last.tokens, last.attention,
            )
        except ValueError as exc:
            return Reply(words.cannot_draw.format(error=exc))
        caption = fit_reply(
            " ".join(filter(None, [looked.format(reply=last.text), note])),
            TELEGRAM_CAPTION_LIMIT,
        )
        return Reply(caption, photo=png)

    async def _cmd_good(self, chat: str, command: Command, caller: Caller) -> Reply:
        return self._rate(chat, "good")

    async def _cmd_bad(self, chat: str, command: Command, caller: Caller) -> Reply:
        return self._rate(chat, "bad")

    def _rate(self, chat: str, rating: Rating) -> Reply:
        words = self.messages(chat)
        if self.log is None:
            return Reply(words.rating_not_kept)
        if not self.log.rate(chat, rating):
            return Reply(words.nothing_to_rate)
        return Reply(words.rated_good if rating == "good" else words.rated_bad)

    async def _cmd_reload(self, chat: str, command: Command, caller: Caller) -> Reply:
        words = self.messages(chat)
        if not caller.admin:
            return Reply(words.reload_admins_only)
        if self._loader is None:
            return Reply(words.reload_unavailable)
        async with self._reload_lock:
            try:
                model = await asyncio.to_thread(self._loader)
                base = self._options_for(model) if self._options_for else self.base_options
                fresh = self._make_context(model)
                await asyncio.to_thread(self.warm_up, model.generator, base)
            except Exception as exc:
                log.exception("reloading the model failed")
                return Reply(words.reload_failed.format(error=type(exc).__name__))
            self._generator = model.generator
            if base != self.base_options:  # the new bundle's decoding settings (tuned anew)
                self.base_options = base
                self.store.change_defaults(ChatSettings.from_options(base))
            self.languages = model.languages
            self.model_reads = ModelReads.of(model.data)
            if (fresh.turns, fresh.separator) != (self.context.turns, self.context.separator):
                self.context = fresh  # the old history is in a format the new model can't read
        return Reply(self.messages(chat).reloaded)


def falls_back(options: DecodeOptions) -> bool:
    """Whether a chat decoding with `options` may send its fallback line (`choose_reply`):
    with a threshold of fit, or with generated replies off (then a message nothing was
    retrieved for has no candidate at all)."""
    return options.fallback_threshold > 0 or not options.generated


def choose_reply(
    ranker: ReplyRanker,
    chat: str,
    candidates: Sequence[Generation],
    message: str,
    max_chars: int = TELEGRAM_TEXT_LIMIT,
    *,
    threshold: float = 0.0,
    fallback: str | None = None,
    retrieved_threshold: float = 0.0,
) -> tuple[str, Generation] | None:
    """The reply text the bot sends and the candidate it came from (None: no usable one);
    the ranker remembers it. Shared with `nlp.chat.offline`, which replays this choice on
    validation posts, so tuning and benchmarks measure what the bot sends.

    With a `fallback` line (`Messages.fallback_reply`, where `falls_back`), only candidates
    whose calibrated `confidence` reaches `threshold` compete (an uncalibrated one never
    does), and when none is left the fallback is sent as a candidate of provenance
    "fallback": a line that makes sense after any message beats the best keyword match
    that probably does not fit.

    With a `retrieved_threshold`, retrieved replies compete only when their `fit` (their
    share of their and the model's reply's expected ratings, `nlp.generation.retrieved_fit`)
    reaches it, and then only they (`nlp.generation.retrieved_fit.competing`); else the
    model's own. The confidence is asked first: a fitting retrieved reply that is not
    confident enough leaves the model's own reply, where that one is, not the fallback."""
    usable = list(candidates)
    if fallback is not None and threshold > 0:
        usable = [c for c in usable if c.confidence >= threshold]
    usable = competing(usable, retrieved_threshold)
    if fallback is not None and not usable:
        usable = [fallback_generation(fallback)]
    if not usable:
        return None
    best = ranker.choose(chat, usable, message)
    reply = fit_reply(clean_message(best.text), max_chars)
    ranker.remember(chat, reply)
    return reply, best


def fallback_generation(text: str) -> Generation:
    """The fallback line as the candidate `/why` explains: no tokens, no attention."""
    return Generation(text, math.nan, [], [], np.zeros((0, 0), np.float32),
                      provenance="fallback")


def chat_seed(chat: str, turn: int, base: int | None = None) -> int:
    """The sampling seed of a chat's `turn`-th reply (counted from the start or /reset).

    Why: sample-and-rerank should be repeatable (the same conversation replayed gets the same
    replies, so a report of a bad reply can be reproduced) yet differ between chats and
    turns, so two people writing "hi" do not get the same sample. `base` (the model's or the
    user's fixed seed) shifts every chat's stream."""
    digest = hashlib.sha256(f"{base}:{chat}:{turn}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _parse_number(args: tuple[str, ...], kind: type[int] | type[float]) -> int | float | None:
    if len(args) != 1:
        return None
    try:
        return kind(args[0])
    except ValueError:
        return None
