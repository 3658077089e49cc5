"""Per-chat decoding settings and the SQLite file that keeps them across restarts.

Why SQLite: one file, atomic writes, no server, in the standard library; a bot restart (or a
/reload) must not make every user re-type /beam 3.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlp.decoding import STRATEGY_NAMES, DecodeOptions
from nlp.decoding.options import beam_in_groups, option_maximums
from nlp.util.lru import MAX_CHATS, LruDict
from nlp.util.private import create_private

log = logging.getLogger(__name__)

RERANK_CANDIDATES = 5  # n-best size asked for whenever the strategy can produce several
# What a user may set: up to the options' maximums (the HTTP API's bounds too); at least
# what DecodeOptions accepts, and a temperature that still samples rather than picks.
_MAXIMUMS = option_maximums()
BEAM_RANGE = (1, int(_MAXIMUMS["beam_size"]))
LENGTH_RANGE = (1, int(_MAXIMUMS["max_length"]))
TEMPERATURE_RANGE = (0.05, float(_MAXIMUMS["temperature"]))


class SettingsError(ValueError):
    """A user-supplied setting outside its allowed range: `field` (ChatSettings' name) and
    its bounds, which `nlp.chat.messages` puts in the chat's language for the user."""

    def __init__(self, field: str, value: object, low: float, high: float) -> None:
        super().__init__(f"{field} = {value!r} is outside [{low:g}, {high:g}]")
        self.field, self.value, self.low, self.high = field, value, low, high


@dataclass(frozen=True)
class ChatSettings:
    """What a user may change about decoding in one chat."""

    strategy: str = "beam"
    beam_size: int = 5
    temperature: float = 1.0
    max_length: int = 30

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGY_NAMES:  # no command sets one: a stored value
            raise ValueError(f"unknown strategy {self.strategy!r}")

    @classmethod
    def from_options(cls, options: DecodeOptions) -> ChatSettings:
        """The per-chat defaults matching the model's decode options, as the owner set them
        (the command line's, a bundle's tuned ones): the ranges bound what users set, not
        what the machine's owner chose (`option_maximums`)."""
        return cls(
            strategy=options.strategy,
            beam_size=options.beam_size,
            temperature=options.temperature,
            max_length=options.max_length,
        )

    def replace(self, **changes: Any) -> ChatSettings:
        """These settings with `changes` a user asked for (or a chat stored): SettingsError
        for a value outside the range users may set."""
        ranges = {"beam_size": BEAM_RANGE, "max_length": LENGTH_RANGE,
                  "temperature": TEMPERATURE_RANGE}
        for name, value in changes.items():
            if name in ranges:
                _check_range(name, value, ranges[name])
        return dataclasses.replace(self, **changes)

    def decode_options(self, base: DecodeOptions) -> DecodeOptions:
        """Options for one model call: `base` plus these settings and an n-best size that
        gives the re-ranker several candidates whenever the strategy can produce them."""
        if self.strategy == "greedy":
            n_best = 1
        elif self.strategy in ("beam", "diverse_beam"):
            n_best = min(self.beam_size, RERANK_CANDIDATES)
        elif base.strategy == "sample":  # the model's own sampling setup, as tuned
            # Re-ranking N draws by their summed score picks the shortest (a short reply has
            # fewer log-probabilities to add up), so a model tuned to single samples (n_best 1)
            # gets single samples, and one tuned to N draws re-ranked per reply token (MMI,
            # `mmi_per_token`) gets its N.
            n_best = base.n_best
        else:  # sampling chosen in the chat: N draws as rows of one call, re-ranked
            n_best = RERANK_CANDIDATES
        beam_size = self.beam_size
        if self.strategy == "diverse_beam":  # whole groups of the model's group count
            beam_size = beam_in_groups(beam_size, base.beam_groups)
            n_best = min(beam_size, RERANK_CANDIDATES)
        return dataclasses.replace(
            base,
            strategy=self.strategy,
            beam_size=beam_size,
            temperature=self.temperature,
            max_length=self.max_length,
            min_length=min(base.min_length, self.max_length),
            no_repeat_ngram=min(base.no_repeat_ngram, self.max_length),
            n_best=n_best,
        )


# The fields a chat may set, the one list of them (the state file's rows, `nlp.api`)
SETTING_NAMES = tuple(field.name for field in dataclasses.fields(ChatSettings))


@dataclass(frozen=True)
class _Stored:
    """A chat's row: the fields the chat set itself, and its settings over the defaults."""

    own: dict[str, Any]
    settings: ChatSettings


def _read_row(raw: str, defaults: ChatSettings) -> _Stored:
    """A stored row over `defaults`: unknown fields are skipped, and an unreadable row or an
    invalid value gives the defaults, quietly, so a settings file written by an older
    version never stops the bot (nor a later change of another field)."""
    try:
        stored = json.loads(raw)
        own = {k: v for k, v in stored.items() if k in SETTING_NAMES}
        return _Stored(own, defaults.replace(**own))
    except (ValueError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable stored settings %r: %s", raw[:200], exc)
        return _Stored({}, defaults)


def _check_range(field: str, value: float, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise SettingsError(field, value, low, high)


def default_state_path(name: str) -> Path:
    """`$XDG_STATE_HOME/s2s/<name>` (~/.local/state/s2s/<name>): outside any repository."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "s2s" / name


class SettingsStore:
    """Chat id -> ChatSettings, write-through to SQLite, reads from an in-memory cache.

    Calls are synchronous: each is one indexed row on a local file (well under a millisecond
    with WAL), cheaper than handing it to a thread. Also keeps a few named secrets (the salt
    that anonymises chat ids in conversation logs) so they survive restarts too.
    """

    def __init__(
        self, path: Path | str, defaults: ChatSettings | None = None, *, max_cached: int = MAX_CHATS
    ) -> None:
        self.defaults = defaults or ChatSettings()
        if str(path) != ":memory:":  # it holds the log's salt: private (`nlp.util.private`)
            create_private(Path(path))
        # check_same_thread=False: the store is built before the event loop that uses it
        # starts, and `s2s serve`'s loop may run in another thread (tests); it is still used
        # by one thread at a time, the loop's.
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS chat_settings (chat TEXT PRIMARY KEY, settings TEXT)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT)")
        # Bounded: a bot in many groups meets ever more chats and members; an evicted chat's
        # settings are one indexed read away.
        self._cache: LruDict[str, _Stored] = LruDict(max_cached)

    def get(self, chat: str) -> ChatSettings:
        return self._stored(chat).settings

    def _stored(self, chat: str) -> _Stored:
        if chat not in self._cache:
            row = self._db.execute(
                "SELECT settings FROM chat_settings WHERE chat = ?", (chat,)
            ).fetchone()
            self._cache[chat] = (
                _read_row(row[0], self.defaults) if row else _Stored({}, self.defaults)
            )
        return self._cache[chat]

    def change_defaults(self, defaults: ChatSettings) -> None:
        """New defaults (a reloaded model's) for every chat that set nothing; a chat's own
        settings stay."""
        self.defaults = defaults
        self._cache.clear()  # chats without a row of their own cached the old defaults

    def update(self, chat: str, **changes: Any) -> ChatSettings:
        """`chat`'s settings with `changes`, kept: only the fields the chat itself set are
        stored, so the others follow the defaults (a retuned or reloaded model's) rather than
        staying as they were when the chat changed one."""
        own = self._stored(chat).own | changes  # the row a `get` just read, cached
        settings = self.defaults.replace(**own)  # validates
        self._db.execute(
            "INSERT INTO chat_settings (chat, settings) VALUES (?, ?) "
            "ON CONFLICT(chat) DO UPDATE SET settings = excluded.settings",
            (chat, json.dumps(own, sort_keys=True)),
        )
        self._cache[chat] = _Stored(own, settings)
        return settings

    def forget(self, chat: str) -> None:
        """Back to the defaults for `chat`, and its row gone from the file."""
        self._db.execute("DELETE FROM chat_settings WHERE chat = ?", (chat,))
        self._cache.pop(chat, None)

    def secret(self, name: str) -> str:
        """A random value created on first use and stable for the life of the state file."""
        row = self._db.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
        if row:
            return str(row[0])
        value = secrets.token_hex(16)
        self._db.execute("INSERT INTO secrets (name, value) VALUES (?, ?)", (name, value))
        return value

    def close(self) -> None:
        self._db.close()
