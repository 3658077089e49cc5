"""Rated sense: blinded rating sheets of chat replies, and the rates that come out of them.

Why people rate at all: BLEU, embedding averages and Hits did not show that the bot's replies
make sense a third of the time; a reader did. This follows the static evaluation of Adiwardana
et al. 2020 ("Towards a Human-like Open-Domain Chatbot", Meena): each reply to a context is
rated **sensible** (it makes sense as a reply here: logical, on point, consistent; anything
confusing, illogical or out of context is 0) and, if sensible, **specific** (it is about this
context, not a reply to anything: "I don't know", "OK", "That's nice" are not). SSA is the mean
of the two rates.

Why blinded and mixed with people's replies: a rater who knows which reply is the bot's rates it
differently, and ratings mean something only beside a control rated in the same sheet. People's
own replies to the same posts are that control (about 0.85-0.95 SSA); far from it, the rating
is not to be trusted. So a sheet holds, for each post, the turns before it, the post and one
reply, the bot's and the person's under random ids in a random order; where each reply came
from is in a key kept apart from the sheet (the rater is given the sheet and `INSTRUCTIONS`
only).
"""

from __future__ import annotations

import csv
import json
import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nlp.text.normalize import last_turn_text, split_turns
from nlp.util.fsutil import write_text_atomic

PEOPLE = "people"  # the source of the person's own reply, the sheet's control
BOT = "bot"  # the configuration's name when a sheet rates one

INSTRUCTIONS = """\
# Rating chat replies

Each row of `sheet.jsonl` (the same rows, easier to read, in `sheet.txt`) is one turn of a
conversation: the turns before it (`context`, oldest first; may be empty), a message (`post`)
and one reply to it (`reply`). Rate every reply on its own, as a reply to that message in that
conversation. You do not know who wrote a reply; do not guess, judge the text.

- **sensible** (1 or 0): does the reply make sense as an answer to the message, in its context?
  Use common sense: it must be logical, on point, and consistent with what was said before.
  Anything confusing, illogical, out of context, ungrammatical to the point of being unclear,
  or contradicting the context is 0. A reply need not be the best one to be sensible.
- **specific** (1 or 0): only if sensible; is the reply specific to this message rather than a
  reply that would fit almost anything? "I don't know.", "OK.", "That's nice.", "Me too." are
  not specific; a reply that takes up what the message is about is. A reply that is not
  sensible is never specific (rate it 0).

Write your ratings into `ratings.tsv`: one line per id, `id<TAB>sensible<TAB>specific`, with 1
or 0 in each column (the file has the ids already; fill in the two columns). Every id must be
rated.
"""


@dataclass(frozen=True)
class Turn:
    """One reply to rate: the turns before the post, the post, the reply, and (kept in the
    key, never in the sheet) who sent it: PEOPLE, or "CONFIG PROVENANCE" for each bot
    configuration that sent this very text (retrieved, generated, refined, fallback...)."""

    context: tuple[str, ...]
    post: str
    reply: str
    sources: tuple[str, ...]
    post_index: int  # which post of the sample (a post's rows share it)


@dataclass(frozen=True)
class SheetFiles:
    """Where a sheet was written: the rater's folder and the key, kept apart from it."""

    folder: Path
    key: Path


ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)
ID_LENGTH = 5


def check_key_apart(key: Path, handed: Path) -> None:
    """Refuse a key anywhere under the folder handed to the rater (a sheet in parts hands
    over the folder holding every part, so a key beside the parts is inside it), symbolic
    links followed."""
    if Path(key).resolve().is_relative_to(Path(handed).resolve()):
        raise ValueError(
            f"{key}: the key must not be inside the rater's folder {handed}: put it elsewhere")


def write_sheet(
    turns: Sequence[Turn], folder: Path, key: Path, meta: dict[str, object],
    handed: Path | None = None,
) -> SheetFiles:
    """Write the rater's folder (`sheet.jsonl`, `sheet.txt`, `ratings.tsv` to fill in,
    `INSTRUCTIONS.md`) and the key (id -> source and post, plus `meta`: the model, the test
    file, the seed) to `key`, which must lie outside the folder handed to the rater (`handed`,
    which holds `folder`; `folder` itself by default: `check_key_apart`).

    The ids and the order of the rows come from the system's unpredictable source
    (`secrets`), never from the sampling seed, which is printed beside the figures: whoever
    has the sheet and the seed must not be able to rebuild the key. Only the key says which
    id is whose reply.
    """
    folder, key = Path(folder), Path(key)
    for place in (folder, folder if handed is None else Path(handed)):
        check_key_apart(key, place)
    ids: set[str] = set()
    while len(ids) < len(turns):
        ids.add("".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH)))
    rows = list(zip(ids, turns, strict=True))
    secrets.SystemRandom().shuffle(rows)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        folder / "sheet.jsonl",
        "".join(
            json.dumps(
                {"id": i, "context": list(t.context), "post": t.post, "reply": t.reply},
                ensure_ascii=False,
            )
            + "\n"
            for i, t in rows
        ),
    )
    write_text_atomic(folder / "sheet.txt", "\n".join(_readable(i, t) for i, t in rows))
    write_text_atomic(folder / "ratings.tsv", "".join(f"{i}\t\t\n" for i, _ in rows))
    write_text_atomic(folder / "INSTRUCTIONS.md", INSTRUCTIONS)
    entries = {i: {"sources": list(t.sources), "post_index": t.post_index} for i, t in rows}
    key.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(
        key, json.dumps({"meta": meta, "rows": entries}, ensure_ascii=False, indent=1) + "\n"
    )
    return SheetFiles(folder, key)


def _readable(identifier: str, turn: Turn) -> str:
    lines = [f"## {identifier}"]
    lines += [f"  (before) {text}" for text in turn.context]
    lines += [f"  MESSAGE: {turn.post}", f"  REPLY:   {turn.reply}", ""]
    return "\n".join(lines)


@dataclass
class SourceRates:
    """Sensibleness, specificity and SSA of the replies of one source."""

    replies: int = 0
    sensible: float = 0.0
    specific: float = 0.0
    ssa: float = 0.0
    share: float = 0.0  # of its configuration's replies (1 for a configuration and PEOPLE)
    # Per post the best-rated of the source's replies, averaged over the posts it replied
    # to: a configuration's own rates (one reply a post); for a pool, what a ranker choosing
    # among its candidates could reach at best
    best_sensible: float = 0.0
    best_ssa: float = 0.0


@dataclass
class SenseReport:
    """The rates per source (PEOPLE, each configuration, and each configuration's reply
    sources) and whether the control is in its normal range."""

    sources: dict[str, SourceRates] = field(default_factory=dict)
    posts: int = 0
    control_ok: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "posts": self.posts,
            "control_ok": self.control_ok,
            "sources": {name: asdict(rates) for name, rates in self.sources.items()},
        }


# People's SSA outside it: the rating is not to be trusted (people rate about 0.85-0.95)
CONTROL_RANGE = (0.85, 1.0)


class RatingError(ValueError):
    """A ratings file that cannot be scored; str() names the file and line."""


def read_ratings(path: Path) -> dict[str, tuple[int, int]]:
    """id -> (sensible, specific) from a `ratings.tsv`; a missing, non-binary or inconsistent
    rating (specific without sensible) is an error naming its line."""
    ratings: dict[str, tuple[int, int]] = {}
    # utf-8-sig: a file saved by a spreadsheet starts with a byte-order mark, which would
    # otherwise become part of the first id
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or not row[0].strip():
                continue
            cells = [cell.strip() for cell in row] + ["", ""]
            identifier, sensible, specific = cells[0], cells[1], cells[2]
            if sensible not in ("0", "1") or specific not in ("0", "1"):
                raise RatingError(
                    f"{path}:{number}: {identifier}: rate sensible and specific 0 or 1"
                )
            if sensible == "0" and specific == "1":
                raise RatingError(f"{path}:{number}: {identifier}: specific but not sensible")
            if identifier in ratings:
                raise RatingError(f"{path}:{number}: {identifier} rated twice")
            ratings[identifier] = (int(sensible), int(specific))
    return ratings


def key_ratings(rows: dict[str, Any], path: Path) -> dict[str, tuple[int, int]]:
    """`read_ratings` of a sheet part whose key holds `rows`: every id of the key rated and no
    other, else an error naming the file (a rating left out must not vanish from a figure)."""
    marks = read_ratings(path)
    missing = sorted(set(rows) - set(marks))
    unknown = sorted(set(marks) - set(rows))
    if missing or unknown:
        raise RatingError(
            f"{path}: {len(missing)} ids of the key not rated {missing[:5]}, "
            f"{len(unknown)} ids not in the key {unknown[:5]}"
        )
    return marks


def score_sheet(
    key_path: Path | Sequence[Path], ratings_path: Path | Sequence[Path]
) -> SenseReport:
    """The rates per source from keys and their filled-in ratings, in the same order (every
    id must be rated): one sheet, or the parts of one sheet given to several raters."""
    keys = [key_path] if isinstance(key_path, Path | str) else list(key_path)
    files = [ratings_path] if isinstance(ratings_path, Path | str) else list(ratings_path)
    if len(keys) != len(files):
        raise RatingError(f"{len(keys)} keys but {len(files)} ratings files")
    rows: dict[str, dict[str, Any]] = {}
    ratings: dict[str, tuple[int, int]] = {}
    for part, (key, rated) in enumerate(zip(keys, files, strict=True)):
        own: dict[str, dict[str, Any]] = json.loads(Path(key).read_text("utf-8"))["rows"]
        marks = key_ratings(own, Path(rated))
        # parts number their posts alike: keep them apart
        rows |= {
            f"{part}:{i}": row | {"post_index": (part, row["post_index"])} for i, row in own.items()
        }
        ratings |= {f"{part}:{i}": mark for i, mark in marks.items()}
    return rates(rows, ratings)


def rates(rows: dict[str, dict[str, Any]], ratings: dict[str, tuple[int, int]]) -> SenseReport:
    """Sensible, specific and SSA per source: PEOPLE, each configuration ("bot" when there is
    one) over all its replies, and each configuration's reply sources ("bot retrieved"). A
    row several configurations sent counts once for each."""
    by_source: dict[str, list[tuple[int, int]]] = defaultdict(list)
    by_post: dict[str, dict[object, list[tuple[int, int]]]] = defaultdict(
        lambda: defaultdict(list))
    configs: set[str] = set()
    posts: set[object] = set()
    for identifier, row in rows.items():
        posts.add(row["post_index"])
        named = set(row["sources"])
        named |= {source.split(" ", 1)[0] for source in row["sources"] if source != PEOPLE}
        configs |= named - set(row["sources"])
        for source in named:
            by_source[source].append(ratings[identifier])
            by_post[source][row["post_index"]].append(ratings[identifier])
    report = SenseReport(posts=len(posts))
    order = sorted(by_source, key=lambda s: (s != PEOPLE, s.split(" ", 1)[0], " " in s, s))
    for source in order:
        values = by_source[source]
        sensible = sum(s for s, _ in values) / len(values)
        specific = sum(p for _, p in values) / len(values)
        whole = source == PEOPLE or source in configs
        share = 1.0 if whole else len(values) / len(by_source[source.split(" ", 1)[0]])
        best = [max(marks, key=sum) for marks in by_post[source].values()]
        report.sources[source] = SourceRates(
            len(values), sensible, specific, (sensible + specific) / 2, share,
            sum(s for s, _ in best) / len(best), sum(s + p for s, p in best) / 2 / len(best),
        )
    people = report.sources.get(PEOPLE)
    report.control_ok = people is not None and CONTROL_RANGE[0] <= people.ssa <= CONTROL_RANGE[1]
    return report


def context_before(
    groups: Sequence[str], sources: Sequence[str], targets: Sequence[str], row: int,
    turns: int, separator: str,
) -> tuple[str, ...]:
    """The last `turns` turns before row `row`'s message, oldest first, as far as the file
    says them for certain (`groups` are the rows' conversations, `sources` and `targets`
    their normalised texts).

    A source converted with `--context-turns` holds earlier turns joined before its message:
    those are the turns before it. Further back, a pair's reply is the next pair's message,
    so the turn before a message is the message of the conversation's row before it, if that
    row's reply *is* this message. A file may lack pairs from inside a conversation
    (`valid.jsonl` leaves out repeats, `--exclude-corpus` what training saw): then the row
    before answers another turn, and the context stops at the gap. Fewer turns are shown
    rather than a turn from further back as if it came just before.
    """
    if turns <= 0:
        return ()
    newest_first: list[str] = []
    current = row
    while len(newest_first) < turns:
        own = split_turns(sources[current], separator)
        before = current - 1
        if not (groups[current] and before >= 0 and groups[before] == groups[current]
                and targets[before] == own[-1]):
            newest_first += reversed(own[:-1])
            break
        newest_first.append(last_turn_text(sources[before], separator))
        current = before
    return tuple(reversed(newest_first[:turns]))


def sheet_rows(
    posts: Sequence[str],
    contexts: Sequence[tuple[str, ...]],
    references: Sequence[str],
    configs: Mapping[str, Sequence[tuple[str, str]]],
    pools: Mapping[str, Sequence[Sequence[tuple[str, str]]]] | None = None,
) -> list[Turn]:
    """The sheet's rows: each post's person's reply, each configuration's (text,
    provenance) and every (text, provenance) of each post's `pools` (the candidates a ranker
    chose among, under the pool's name), a text sent by several (or equal to the person's)
    rated once for all. Names must not contain spaces (`rates` splits on the first)."""
    names = [*configs, *(pools or {})]
    if any(" " in name or name == PEOPLE for name in names) or len(set(names)) < len(names):
        raise ValueError(f"distinct names without spaces, not {PEOPLE!r}: {names}")
    turns: list[Turn] = []
    for index, (post, context, reference) in enumerate(
        zip(posts, contexts, references, strict=True)
    ):
        senders: dict[str, list[str]] = {reference: [PEOPLE]}
        offers = [(name, replies[index]) for name, replies in configs.items()]
        offers += [(name, each) for name, pool in (pools or {}).items() for each in pool[index]]
        for name, (text, provenance) in offers:
            who = senders.setdefault(text, [])
            if f"{name} {provenance}" not in who:
                who.append(f"{name} {provenance}")
        turns += [Turn(context, post, text, tuple(who), index) for text, who in senders.items()]
    return turns
