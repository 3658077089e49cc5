"""Rated sense of what the bot sends: a blinded sheet for a rater, then its rates.

`make` draws a seeded sample of test posts across conversations (`nlp.metrics.sampling`, as
every chat figure does), answers each as the bot does (`nlp.chat.offline.bot_choices`: the
bundle's tuned settings, or `--decoding` over them), and writes a sheet (the turns before each
post in its conversation, the post, one reply; the bot's and the person's shuffled under
random ids, neither drawn from the seed) with its instructions into the rater's folder, and
the key (whose reply each is, and from which reply source: retrieved, generated, refined,
fallback) to a file kept outside it. Give the rater the folder only. `score` turns the
filled-in `ratings.tsv` and the key into sensibleness, specificity and SSA per source, the
people's control beside them (Adiwardana et al. 2020; `nlp.evaluation.sense`), prints a table
and writes JSON.

`make --pool` also puts on the sheet every retrieved reply the first configuration chose
among (source "pool"): rated in the same sitting as the picks, so rankers are compared on
the same candidates, and the pool's "best a post" says what a perfect ranker would reach
(whether sense is lost in the ranking or in what retrieval finds). `rank-pool` then rates any
configuration's picks from such a sheet without rating again, as long as it chooses among the
same candidates (it counts the picks the sheet does not hold).

    python -m benchmarks.sense_sheet make --model runs/chat --corpus dd-test.jsonl \
        --posts 100 --seed 0 --out sheets/dd --key keys/dd.json \
        [--decoding 'tuned={}' --decoding 'beam={"strategy": "beam"}' \
         --decoding 'old@runs/old-chat={}' ...]
    python -m benchmarks.sense_sheet score --key keys/dd.json --ratings sheets/dd/ratings.tsv \
        [--json benchmarks/results/sense_dd.json]
    python -m benchmarks.sense_sheet make --model runs/chat --corpus runs/chat/valid.jsonl \
        --posts 60 --seed 4 --pool --decoding 'retrieval={"rerank": "retrieval"}' \
        --decoding 'dual-encoder={"rerank": "dual-encoder"}' --out sheets/pool --key keys/pool.json
    python -m benchmarks.sense_sheet compare --key keys/dd.json --ratings sheets/dd/ratings.tsv \
        tuned beam [--json benchmarks/results/compare_dd.json]
    python -m benchmarks.sense_sheet rank-pool --key keys/pool.json \
        --ratings sheets/pool/ratings.tsv --decoding 'fused={"rerank": "dual-encoder+bm25"}'
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from benchmarks.common import format_table, write_json
from nlp.evaluation.sense import (
    CONTROL_RANGE,
    SourceRates,
    check_key_apart,
    context_before,
    key_ratings,
    rates,
    score_sheet,
    sheet_rows,
    write_sheet,
)
from nlp.generation.retrieved_fit import SENTENCE_ENCODER, SIGNALS, RatedGate
from nlp.metrics.calibration import Calibration
from nlp.text.normalize import last_turn_text, normalize_text
from nlp.util.config import DataConfig

CONTEXT_TURNS = 3  # turns shown before each post: enough to judge a reply in context
POOL = "pool"  # the source name of every candidate the first configuration chose among
POOL_SOURCE = f"{POOL} retrieved"  # as the key lists it


@dataclass(frozen=True)
class DialogueFile:
    """A test file's pairs and their texts as the reader and the bots see them: each row's
    conversation, normalised source and reply; the turns before a message are those of its
    conversation (`turns_before`), not the rows before it."""

    pairs: list[Any]
    groups: list[str]
    sources: list[str]
    targets: list[str]

    def message(self, row: int) -> str:
        """Row `row`'s message, apart from the earlier turns a file converted with
        `--context-turns` joins into its source."""
        return last_turn_text(self.sources[row], FILE_SEPARATOR)

    def turns_before(self, row: int, turns: int) -> tuple[str, ...]:
        return context_before(self.groups, self.sources, self.targets, row, turns,
                              FILE_SEPARATOR)


FILE_SEPARATOR = DataConfig().turn_separator  # what `s2s corpus convert` joins turns with


def _read(corpus: str) -> DialogueFile:
    from nlp.corpus.readers import read_pairs
    from nlp.corpus.records import ReadReport

    every = list(read_pairs(corpus, "jsonl", report=ReadReport()))
    return DialogueFile(every, [pair.group for pair in every],
                    [normalize_text(pair.source) for pair in every],
                    [normalize_text(pair.target) for pair in every])


def _bots(configs: dict[str, tuple[str, dict[str, Any]]], model: str, test: DialogueFile,
          rows: Sequence[int]) -> dict[str, tuple[Any, Any, list[str]]]:
    """Per configuration its generator, its decode options and what it reads for each row."""
    from nlp.generation.decode_args import layered_options
    from nlp.generation.loading import load_generator

    generators = {path: load_generator(path)
                  for path in {bundle or model for bundle, _ in configs.values()}}
    bots = {}
    for name, (bundle, changes) in configs.items():
        generator = generators[bundle or model]
        settings = generator.bundle.decoding
        data = generator.bundle.config.data
        bots[name] = (
            generator, layered_options(settings, changes),  # a `rerank`: its tuned weights
            [bot_input(test, row, data.context_turns, data.turn_separator) for row in rows])
    return bots


def written_form(bots: dict[str, tuple[Any, Any, list[str]]]) -> Callable[[str], str]:
    """How every reply on a sheet is shown: as the (first) configuration's model writes text
    (`TextCodec.as_output`: spacing, case). Why: people's replies and retrieved ones keep
    their corpus's form ("Sure ."), the model's own are detokenised and truecased ("Sure."),
    so a rater could tell the model's replies from people's by their spacing alone, and one
    reply from two sources in two forms was rated twice. Shown in one form they are blind,
    and the same reply is one row credited to every source that sent it."""
    generator = next(iter(bots.values()))[0]
    return cast(Callable[[str], str], generator.codec.as_output)


def make(args: argparse.Namespace) -> None:
    """Answer the sampled posts as the bot does and write the sheet and its key."""
    from nlp.chat.offline import bot_choices
    from nlp.metrics.sampling import sample_rows

    configs = _configurations(args.decoding or ["bot={}"])
    parts = max(1, args.parts)
    keys = [Path(args.key).with_suffix(f".part{part + 1}.json") if parts > 1 else Path(args.key)
            for part in range(parts)]
    try:  # before any work; the raters are handed --out, which holds every part
        for key in keys:
            check_key_apart(key, Path(args.out))
    except ValueError as error:
        raise SystemExit(f"--key: {error}") from None
    test = _read(args.corpus)
    rows = sample_rows(test.groups, args.posts, args.seed)
    posts = [test.message(row) for row in rows]
    contexts = [test.turns_before(row, args.context) for row in rows]
    references = [test.targets[row] for row in rows]
    sent = {}
    answered: dict[str, list[str]] = {}  # per configuration, the post each retrieved reply answered
    pools: dict[str, list[list[tuple[str, str]]]] = {}
    bots = _bots(configs, args.model, test, rows)
    shown = written_form(bots)
    references = [shown(reference) for reference in references]
    for name, (generator, options, inputs) in bots.items():
        said = bot_choices(generator, inputs, options)
        sent[name] = [(shown(r.text), r.provenance) for r in said]
        answered[name] = [r.post for r in said]
        if args.pool and POOL not in pools:
            pools[POOL] = [[(shown(text), provenance) for text, provenance in pool]
                           for pool in candidate_pools(generator, inputs, options)]
    turns = sheet_rows(posts, contexts, references, sent, pools)
    meta: dict[str, Any] = {
        "model": str(args.model),
        "corpus": str(args.corpus),
        "posts": len(rows),
        "seed": args.seed,
        "configurations": configs,
        "rows": rows,
        "answered": answered,
    }
    for part, key in enumerate(keys):
        # a post's rows stay in one part, so each rater sees the person's reply beside the bot's
        own = [turn for turn in turns if turn.post_index % parts == part]
        folder = Path(args.out) / f"part{part + 1}" if parts > 1 else Path(args.out)
        files = write_sheet(own, folder, key, meta, handed=Path(args.out))
        print(f"sheet: {files.folder} ({len(own)} replies to rate); key: {files.key}")


def candidate_pools(generator: Any, inputs: Sequence[str],
                    options: Any) -> list[list[tuple[str, str]]]:
    """Every reply a bot with `options` chooses among for each input, retrieved ones only
    (the decoder's are not sent by a bot with an index), as (text, provenance)."""
    import dataclasses

    from nlp.chat.offline import bot_candidates

    decode = dataclasses.replace(options, generated=False)
    return [[(g.text, g.provenance) for g in n_best]
            for _, _, n_best in bot_candidates(generator, inputs, decode)]


def bot_input(test: DialogueFile, row: int, turns: int, separator: str) -> str:
    """What a chat model trained with `turns` earlier turns reads for row `row`'s message:
    those turns of its conversation and the message, as the chat joins them
    (`nlp.chat.context.DialogueContext.join`)."""
    from nlp.chat.context import DialogueContext

    return DialogueContext(turns, separator).join(test.turns_before(row, turns), test.message(row))


def _configurations(texts: Sequence[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each `--decoding` by its name; a name given twice is an error (the later one would
    replace the earlier one, and its replies be rated under the other's name)."""
    configs: dict[str, tuple[str, dict[str, Any]]] = {}
    for text in texts:
        name, config = _configuration(text)
        if name in configs:
            raise SystemExit(f"--decoding: the name {name!r} is given twice")
        configs[name] = config
    return configs


def _configuration(text: str) -> tuple[str, tuple[str, dict[str, Any]]]:
    """`NAME[@MODEL]=JSON` -> (NAME, (MODEL or "" for --model, the decoding options over
    that bundle's own))."""
    label, sep, options = text.partition("=")
    name, _, model = label.partition("@")
    if not sep or not name or " " in name:
        raise SystemExit(
            f"--decoding: expected NAME[@MODEL]=JSON (a name without spaces), got {text!r}"
        )
    changes = json.loads(options or "{}")
    if not isinstance(changes, dict):
        raise SystemExit(f"--decoding {name}: expected a JSON object, got {options!r}")
    return name, (model, changes)


def post_marks(keys: Sequence[Path], ratings: Sequence[Path]
               ) -> dict[tuple[int, object], dict[str, tuple[str, tuple[int, int]]]]:
    """Per post (part, post index), each source's (provenance, marks) on a rated sheet, from
    its parts' keys and ratings; "people" has provenance ""."""
    posts: dict[tuple[int, object], dict[str, tuple[str, tuple[int, int]]]] = {}
    for part, (key_path, ratings_path) in enumerate(zip(keys, ratings, strict=True)):
        rows = json.loads(Path(key_path).read_text("utf-8"))["rows"]
        marks = key_ratings(rows, Path(ratings_path))
        for identifier, row in rows.items():
            for source in row["sources"]:
                name, _, provenance = source.partition(" ")
                posts.setdefault((part, row["post_index"]), {})[name] = (
                    provenance, marks[identifier])
    return posts


def compare(args: argparse.Namespace) -> None:
    """Two sources of one rated sheet, post by post: how often each rates better (sensible;
    SSA), the sign test, the better of the two a post (known only after rating), and each
    source's rates on the posts where the first sent a reply of each provenance (what a gate
    chose)."""
    from benchmarks.significance import sign_test_p

    posts = post_marks([Path(k) for k in args.key], [Path(r) for r in args.ratings])
    first, second = args.first, args.second
    paired = [(by[first], by[second]) for by in posts.values() if first in by and second in by]
    if not paired:
        raise SystemExit(f"no post has replies of both {first!r} and {second!r}")

    def ssa(marks: tuple[int, int]) -> float:
        return sum(marks) / 2  # (specific only where sensible: `read_ratings`)

    def mean(values: Sequence[float]) -> float:
        return round(sum(values) / len(values), 4) if values else float("nan")

    sensible_better = sum(a[1][0] > b[1][0] for a, b in paired)
    sensible_worse = sum(a[1][0] < b[1][0] for a, b in paired)
    ssa_better = sum(ssa(a[1]) > ssa(b[1]) for a, b in paired)
    ssa_worse = sum(ssa(a[1]) < ssa(b[1]) for a, b in paired)
    by_provenance = []
    for provenance in sorted({a[0] for a, _ in paired}):
        here = [(a, b) for a, b in paired if a[0] == provenance]
        by_provenance.append({
            "provenance": provenance, "posts": len(here),
            first: mean([ssa(a[1]) for a, _ in here]), second: mean([ssa(b[1]) for _, b in here])})
    result = {
        "first": first, "second": second, "posts": len(paired),
        "ssa": {first: mean([ssa(a[1]) for a, _ in paired]),
                second: mean([ssa(b[1]) for _, b in paired])},
        "better_of_the_two": mean([max(ssa(a[1]), ssa(b[1])) for a, b in paired]),
        "sensible": {"better": sensible_better, "worse": sensible_worse,
                     "sign_test_p": sign_test_p(sensible_worse, sensible_better)},
        "ssa_paired": {"better": ssa_better, "worse": ssa_worse,
                       "sign_test_p": sign_test_p(ssa_worse, ssa_better)},
        "by_provenance_of_first": by_provenance,
    }
    print(f"{len(paired)} posts: SSA {first} {result['ssa'][first]}, {second} "
          f"{result['ssa'][second]}; the better of the two a post {result['better_of_the_two']}")
    print(f"{first} against {second}: sensible better on {sensible_better} posts, worse on "
          f"{sensible_worse} (sign test p {result['sensible']['sign_test_p']:.3f}); SSA better "
          f"on {ssa_better}, worse on {ssa_worse}")
    print(format_table(by_provenance, [("provenance", f"{first}'s reply"), ("posts", "posts"),
                                       (first, f"{first} SSA"), (second, f"{second} SSA")]))
    if args.json:
        write_json(Path(args.json), result)


def score(args: argparse.Namespace) -> None:
    """Print and write the rates per source."""
    report = score_sheet([Path(k) for k in args.key], [Path(r) for r in args.ratings])
    rows = [{"source": name, **vars(rates)} for name, rates in report.sources.items()]
    print(
        format_table(
            rows,
            [
                ("source", "source"),
                ("replies", "replies"),
                ("share", "share of the bot's"),
                ("sensible", "sensible"),
                ("specific", "specific"),
                ("ssa", "SSA"),
                ("best_ssa", "best a post"),
            ],
        )
    )
    if not report.control_ok:
        low, high = CONTROL_RANGE
        print(f"WARNING: people's replies rated outside {low:.2f}-{high:.1f} SSA: the rating is "
              "not to be trusted")
    if args.json:
        key = json.loads(Path(args.key[0]).read_text("utf-8"))
        write_json(Path(args.json), {"meta": key["meta"], **report.as_dict()})


def rank_pool(args: argparse.Namespace) -> None:
    """Each configuration's picks among a rated pool sheet's candidates (`make --pool`),
    rated from that sheet: rankers compared on the same rated candidates without rating
    again. A pick not on the sheet (the configuration found other candidates: another
    index, another `retrieve`) has no rating and is counted apart; the rates are then those
    of the rated picks only, and not comparable."""
    from nlp.chat.offline import bot_choices

    keys = [json.loads(Path(k).read_text("utf-8")) for k in args.key]
    meta = keys[0]["meta"]
    test = _read(meta["corpus"])
    configs = _configurations(args.decoding)
    bots = _bots(configs, meta["model"], test, meta["rows"])
    shown = written_form(bots)
    rated: dict[int, dict[str, tuple[int, int]]] = {}
    for key, ratings in zip(keys, args.ratings, strict=True):
        marks = key_ratings(key["rows"], Path(ratings))
        lines = (Path(ratings).parent / "sheet.jsonl").read_text("utf-8").splitlines()
        texts = {row["id"]: row["reply"] for row in map(json.loads, lines)}
        for identifier, row in key["rows"].items():
            if POOL_SOURCE in row["sources"]:  # (every id is rated: `key_ratings`)
                # in the written form (pools rated before db4920c hold replies as sent)
                text = shown(texts[identifier])
                rated.setdefault(row["post_index"], {})[text] = marks[identifier]
    table = []
    for name, (generator, options, inputs) in bots.items():
        said = bot_choices(generator, inputs, options)
        picked = {i: rated.get(i, {}).get(shown(reply.text)) for i, reply in enumerate(said)}
        found = {str(i): mark for i, mark in picked.items() if mark is not None}
        own = rates({index: {"sources": [name], "post_index": index} for index in found},
                    found).sources.get(name, SourceRates())
        table.append({"configuration": name, "posts": len(found),
                      "unrated": len(picked) - len(found), "sensible": round(own.sensible, 3),
                      "specific": round(own.specific, 3), "ssa": round(own.ssa, 3)})
    print(format_table(table, [(k, k) for k in table[0]]))
    if args.json:
        write_json(Path(args.json), {"meta": meta, "configurations": table})


@dataclass(frozen=True)
class GatePost:
    """One post of a sheet rated with a retrieved and a generated configuration: the
    similarity of the message and the post the retrieved reply answered, and each reply's
    (sensible, specific); None where that configuration sent no reply of its kind."""

    similarity: float
    retrieved: tuple[int, int] | None
    generated: tuple[int, int] | None


def gate_posts(keys: Sequence[Path], ratings: Sequence[Path], retrieved: str,
               generated: str, signal: str) -> list[GatePost]:
    """The rated posts of a sheet (`make` with a `retrieved` and a `generated`
    configuration; its parts' keys and ratings in the same order), each with the signal
    `nlp.generation.retrieved_fit` calibrates: the tf-idf cosine of the message and the post
    the retrieved reply answered, or the sentence encoder's cosine (`signal`)."""
    from nlp.generation.bundle import load_bundle
    from nlp.generation.candidates import Candidates

    by_post: dict[int, dict[str, tuple[int, int]]] = {}
    for key_path, ratings_path in zip(keys, ratings, strict=True):
        key = json.loads(Path(key_path).read_text("utf-8"))
        meta, marks = key["meta"], key_ratings(key["rows"], Path(ratings_path))
        for identifier, row in key["rows"].items():
            for source in row["sources"]:
                name, _, provenance = source.partition(" ")
                if (name, provenance) in (
                        (retrieved, "retrieved"), (generated, "generated")):
                    by_post.setdefault(row["post_index"], {})[name] = marks[identifier]
    candidates = Candidates(load_bundle(meta["model"]))  # the index and codec: no decoder
    test = _read(meta["corpus"])
    posts = []
    for index, row in enumerate(meta["rows"]):
        answered = meta["answered"][retrieved][index]
        (similarity,) = candidates.post_similarities(test.message(row), [answered], signal)
        mine = by_post.get(index, {})
        posts.append(GatePost(similarity, mine.get(retrieved), mine.get(generated)))
    return posts


def rated_gate(posts: Sequence[GatePost], calibration: Calibration, signal: str) -> RatedGate:
    """The `nlp.generation.retrieved_fit.RatedGate` these rated posts give (what
    `DEFAULT_FIT` or a bundle's details hold): the calibration, P(specific | sensible) of
    the retrieved replies, and the generated replies' SSA."""
    retrieved = [p.retrieved for p in posts if p.retrieved is not None]
    generated = [p.generated for p in posts if p.generated is not None]
    sensible = sum(m[0] for m in retrieved)
    specific = sum(m[1] for m in retrieved)
    ssa = sum(m[0] + m[1] for m in generated) / (2 * max(1, len(generated)))
    return RatedGate(calibration, round(specific / max(1, sensible), 4), round(ssa, 4), signal)


def _sheets(values: Sequence[str]) -> list[list[Path]]:
    """Sheets as given on the command line: each a key (or ratings) file, or its parts'
    files joined by commas."""
    return [[Path(part) for part in value.split(",")] for value in values]


def gated(posts: Sequence[GatePost], fit_of: Callable[[float], float],
          threshold: float) -> dict[str, Any]:
    """What the gate sends to each post (the retrieved reply where its fit, `fit_of` its
    post's similarity, reaches `threshold`, else the generated one; the other where one is
    missing), rated."""
    sent: dict[str, list[tuple[int, int]]] = {"retrieved": [], "generated": []}
    for post in posts:
        fit = fit_of(post.similarity)
        take = "retrieved" if post.retrieved and (fit >= threshold or not post.generated) \
            else "generated"
        mark = post.retrieved if take == "retrieved" else post.generated
        if mark is not None:
            sent[take].append(mark)
    everything = sent["retrieved"] + sent["generated"]

    def rate(marks: list[tuple[int, int]]) -> dict[str, float]:
        n = max(1, len(marks))
        sensible, specific = sum(m[0] for m in marks) / n, sum(m[1] for m in marks) / n
        return {"replies": len(marks), "sensible": round(sensible, 3),
                "specific": round(specific, 3), "ssa": round((sensible + specific) / 2, 3)}

    return {"threshold": threshold, **rate(everything),
            **{f"{k} {m}": v for k in sent for m, v in rate(sent[k]).items()}}


def gate(args: argparse.Namespace) -> None:
    """Fit the retrieved reply's calibration (P(sensible) | post similarity) on a rated
    validation sheet, choose the threshold by the gated replies' SSA there, and with
    `--test-key` rate the same gate on a test sheet (nothing fitted or chosen on it).
    `--shipped LANG`: instead, replay the gate the product ships for that language
    (`nlp.generation.retrieved_fit.DEFAULT_FIT`, at its threshold 0.5) on every sheet given."""
    from nlp.metrics.calibration import fit_calibration

    if args.shipped:
        from nlp.generation.retrieved_fit import DEFAULT_FIT

        shipped = DEFAULT_FIT[args.shipped]
        rows = []
        for keys, ratings in zip(_sheets([args.key, *args.test_key]),
                                 _sheets([args.ratings, *args.test_ratings]), strict=True):
            posts = gate_posts(keys, ratings, args.retrieved, args.generated, shipped.signal)
            rows.append({"sheet": ",".join(map(str, keys)), **gated(posts, shipped.fit, 0.5)})
        print(format_table(rows, [(k, k) for k in rows[0]]))
        if args.json:
            write_json(Path(args.json), {"language": args.shipped, "rows": rows})
        return
    [valid_keys], [valid_ratings] = _sheets([args.key]), _sheets([args.ratings])
    valid = gate_posts(valid_keys, valid_ratings, args.retrieved, args.generated, args.signal)
    # other rated validation sheets of the same index: their retrieved replies join the
    # calibration (what a retrieved reply's fit depends on is the index, not the model)
    also = [replace(post, generated=None)
            for keys, ratings in zip(_sheets(args.also_key), _sheets(args.also_ratings),
                                     strict=True)
            for post in gate_posts(keys, ratings, args.retrieved, args.generated, args.signal)]
    usable = [p for p in valid + also if p.retrieved is not None]
    calibration = fit_calibration([p.similarity for p in usable],
                               [p.retrieved[0] for p in usable if p.retrieved is not None])
    grid = [round(0.05 * i, 2) for i in range(21)]
    fitted = rated_gate(valid + also, calibration, args.signal)
    # the grid on the product's scale: the fit `retrieved_threshold` reads (the share of the
    # two expected ratings), not P(sensible), so the threshold chosen is the one to set
    fit = fitted.fit
    table = [gated(valid, fit, t) for t in grid]
    best = max(table, key=lambda row: (row["ssa"], -row["threshold"]))
    print(f"calibration on {len(usable)} rated retrieved replies: P(sensible) = "
          f"sigmoid({calibration.slope:.4f} x similarity + {calibration.intercept:.4f})")
    print(format_table(table, [(k, k) for k in table[0]]))
    print(f"chosen on validation: retrieved_threshold {best['threshold']} (SSA {best['ssa']})")
    print(f"the gate these ratings give (retrieved_fit.RatedGate): {json.dumps(fitted.to_json())}")
    result: dict[str, Any] = {"calibration": calibration.to_json(), "validation": table,
                              "threshold": best["threshold"], "rated_gate": fitted.to_json()}
    if args.test_key:
        for test_keys, test_ratings in zip(_sheets(args.test_key), _sheets(args.test_ratings),
                                           strict=True):
            test = gate_posts(test_keys, test_ratings, args.retrieved, args.generated,
                              args.signal)
            rows = [gated(test, fit, t) for t in (0.0, best["threshold"], 1.01)]
            for row, name in zip(rows, ("retrieved only", "gated", "generated only"),
                                 strict=True):
                row["sent"] = name
            name = ",".join(map(str, test_keys))
            print(f"test {name}:")
            print(format_table(rows, [(k, k) for k in rows[0]]))
            result[name] = rows
    if args.json:
        write_json(Path(args.json), result)


@dataclass(frozen=True)
class RatedRetrieved:
    """A retrieved reply rated on a sheet: the message, the post it answered, the reply and
    its marks, and which bundle's index and model found it."""

    model: str
    message: str
    post: str
    reply: str
    marks: tuple[int, int]


def rated_retrieved(keys: Sequence[Path], ratings: Sequence[Path]) -> list[RatedRetrieved]:
    """Every retrieved reply a sheet's parts rated (any configuration's pick; `make --pool`'s
    other candidates keep no post), once per message and reply; the texts from the sheet
    beside each ratings file."""
    found: dict[tuple[str, str], RatedRetrieved] = {}
    for key_path, ratings_path in zip(keys, ratings, strict=True):
        key = json.loads(Path(key_path).read_text("utf-8"))
        meta, marks = key["meta"], key_ratings(key["rows"], Path(ratings_path))
        lines = (Path(ratings_path).parent / "sheet.jsonl").read_text("utf-8").splitlines()
        sheet = {row["id"]: row for row in map(json.loads, lines)}
        for identifier, row in key["rows"].items():
            names = [source.partition(" ")[0] for source in row["sources"]  # not a pool's:
                     if source.endswith(" retrieved")                      # no post kept
                     and source.partition(" ")[0] in meta["answered"]]
            if not names:
                continue
            text = sheet[identifier]
            post = meta["answered"][names[0]][row["post_index"]]
            found.setdefault((text["post"], text["reply"]), RatedRetrieved(
                meta["model"], text["post"], post, text["reply"], marks[identifier]))
    return list(found.values())


def auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """The probability that a positive scores above a negative (ties count half): the
    Mann-Whitney form of the ROC curve's area."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return float("nan")
    total = sum(rank for rank, label in zip(ranks, labels, strict=True) if label)
    return float((total - positives * (positives + 1) / 2) / (positives * negatives))


def retrieved_signals(rows: Sequence[RatedRetrieved]) -> dict[str, list[float]]:
    """Each candidate signal of whether a retrieved reply fits, per rated reply: how well the
    post the reply answered matches the message (the tf-idf cosine; BM25 normalised by the
    message's score against itself, so that it is on one scale for every message; the share
    of the message's words the post holds, coverage; the sentence encoder's cosine, the
    gate's signal), the encoder's cosine of message and reply and the sum of the two
    (`rerank=sentence-encoder`), the bundle's dual encoder's cosine of message and reply
    (where every bundle has one), and the chat model's log-probability of the reply per
    token."""
    from nlp.corpus.records import Pair
    from nlp.generation.bundle import load_bundle
    from nlp.generation.candidates import Candidates, ranking_ids
    from nlp.ranking.sentence_encoder import DIMENSION, SentenceEncoder

    encoder = SentenceEncoder()
    pools = {model: Candidates(load_bundle(model)) for model in {row.model for row in rows}}
    dual = all(pool.has_dual_encoder for pool in pools.values())
    signals: dict[str, list[float]] = {name: [] for name in (
        "tf-idf cosine (message, post)", "BM25 normalised (message, post)",
        "coverage (message's words in the post)", "encoder cosine (message, post)",
        "encoder cosine (message, reply)", "encoder sum",
        *(("dual encoder cosine (message, reply)",) if dual else ()),
        "likelihood per token")}
    likelihood = {model: iter(pool.forward.token_log_probs(
        [Pair(row.message, row.reply) for row in rows if row.model == model]))
        for model, pool in pools.items()}  # one scoring pass a model
    dual_cosines: dict[str, Any] = {}  # one batched pass a model, read in the rows' order
    for model, pool in pools.items() if dual else ():
        mine = [row for row in rows if row.model == model]
        codec = pool.bundle.codec
        dual_cosines[model] = iter(float(cosines[0]) for cosines in pool.dual_encoder.scores(
            [ranking_ids(codec, row.message) for row in mine],
            [[ranking_ids(codec, row.reply)] for row in mine]))
    vectors = encoder.encode([text for row in rows for text in (row.message, row.post, row.reply)])
    triples = vectors.reshape(len(rows), 3, DIMENSION)  # message, post, reply
    for row, (message, post, reply) in zip(rows, triples, strict=True):
        candidates = pools[row.model]
        message_words = candidates.query_tokens(row.message)
        post_words = candidates.query_tokens(row.post)
        signals["tf-idf cosine (message, post)"].append(
            candidates.index.post_similarity(message_words, post_words))
        itself, matched = candidates.index.candidate_scores(
            message_words, [message_words, post_words])
        signals["BM25 normalised (message, post)"].append(
            float(matched / itself) if itself > 0 else 0.0)
        distinct = set(message_words)
        signals["coverage (message's words in the post)"].append(
            len(distinct & set(post_words)) / len(distinct) if distinct else 0.0)
        signals["encoder cosine (message, post)"].append(float(message @ post))
        signals["encoder cosine (message, reply)"].append(float(message @ reply))
        signals["encoder sum"].append(float(message @ post + message @ reply))
        if dual:
            signals["dual encoder cosine (message, reply)"].append(next(dual_cosines[row.model]))
        signals["likelihood per token"].append(float(np.mean(next(likelihood[row.model]))))
    return signals


def signals(args: argparse.Namespace) -> None:
    """How well each candidate signal tells a sensible retrieved reply from one that is not,
    on the retrieved replies of rated validation sheets: the area under the ROC curve for
    sensible, and for specific."""
    rows = [row for keys, ratings in zip(_sheets(args.key), _sheets(args.ratings), strict=True)
            for row in rated_retrieved(keys, ratings)]
    values = retrieved_signals(rows)
    sensible = [row.marks[0] for row in rows]
    specific = [row.marks[1] for row in rows]
    table = [{"signal": name, "replies": len(rows), "sensible": sum(sensible),
              "AUC sensible": round(auc(scores, sensible), 3),
              "AUC specific": round(auc(scores, specific), 3)}
             for name, scores in values.items()]
    print(format_table(table, [(k, k) for k in table[0]]))
    if args.json:
        write_json(Path(args.json), {"sheets": args.key, "rows": table})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    maker = commands.add_parser("make", help="write a blinded sheet and its key")
    maker.add_argument("--model", required=True)
    maker.add_argument("--corpus", required=True, help="test (or validation) pairs, JSONL")
    maker.add_argument(
        "--posts", type=int, default=100,
        help="posts to answer, drawn one a conversation (`nlp.metrics.sampling`); asked for "
        "more than the file has conversations, a second round only once every conversation "
        "has one (a later post's turns may then hold an earlier one's reply)")
    maker.add_argument("--seed", type=int, default=0,
                       help="the sample's seed (the sheet's ids and order are never seeded)")
    maker.add_argument(
        "--context", type=int, default=CONTEXT_TURNS, help="turns shown before a post"
    )
    maker.add_argument(
        "--decoding",
        action="append",
        metavar="NAME=JSON",
        help="a configuration to rate: a name, optionally another bundle than --model, and "
        "decoding options over that bundle's (repeatable; a reply two send is rated once; "
        "default: bot={}, --model's own settings)",
    )
    maker.add_argument("--out", required=True, help="the rater's folder")
    maker.add_argument(
        "--parts", type=int, default=1, help="split the posts into N sheets for N raters"
    )
    maker.add_argument("--key", required=True,
                       help="the key's file, outside --out (KEY.partI.json with --parts)")
    maker.add_argument(
        "--pool", action="store_true",
        help=f"also rate every retrieved reply the first configuration chose among (source "
        f"{POOL!r}: its mean is a random pick's, 'best a post' the best pick's), so rankers' "
        "picks are compared within one rating")
    maker.set_defaults(func=make)
    scorer = commands.add_parser("score", help="rates per source from a key and its ratings")
    scorer.add_argument("--key", required=True, nargs="+", help="one key per part")
    scorer.add_argument("--ratings", required=True, nargs="+", help="in the keys' order")
    scorer.add_argument("--json", help="write the rates here too")
    scorer.set_defaults(func=score)
    comparer = commands.add_parser(
        "compare", help="two sources of one rated sheet, post by post (better, worse, sign "
        "test, the better of the two, by the first's provenance)")
    comparer.add_argument("--key", required=True, nargs="+", help="one key per part")
    comparer.add_argument("--ratings", required=True, nargs="+", help="in the keys' order")
    comparer.add_argument("first", help="a configuration's name (or people)")
    comparer.add_argument("second", help="another's")
    comparer.add_argument("--json", help="write the comparison here too")
    comparer.set_defaults(func=compare)
    ranker = commands.add_parser(
        "rank-pool", help="configurations' picks among a rated pool sheet's candidates, rated "
        "from it (no new rating)")
    ranker.add_argument("--key", required=True, nargs="+", help="the pool sheet's keys")
    ranker.add_argument("--ratings", required=True, nargs="+",
                        help="in the keys' order, each beside its sheet.jsonl")
    ranker.add_argument("--decoding", required=True, action="append", metavar="NAME=JSON",
                        help="a configuration, as `make` takes it (the key's --model)")
    ranker.add_argument("--json", help="write the rates here too")
    gater = commands.add_parser("gate", help="fit and choose the retrieved-or-generated gate")
    gater.add_argument("--key", required=True,
                       help="a rated validation sheet's key (its parts' keys joined by commas)")
    gater.add_argument("--ratings", required=True, help="its ratings (per part, by commas)")
    gater.add_argument("--retrieved", default="retrieved",
                       help="the configuration that sent retrieved replies")
    gater.add_argument("--generated", default="beam",
                       help="the configuration that sent the model's own replies")
    gater.add_argument("--also-key", nargs="*", default=[],
                       help="more validation sheets (as --key) whose retrieved replies join the "
                       "calibration; their generated ones are not read (an older model's)")
    gater.add_argument("--also-ratings", nargs="*", default=[])
    gater.add_argument("--test-key", nargs="*", default=[], help="test sheets' keys, as --key")
    gater.add_argument("--test-ratings", nargs="*", default=[])
    gater.add_argument("--signal", choices=SIGNALS, default=SENTENCE_ENCODER,
                       help="the similarity of message and post the fit reads")
    gater.add_argument("--shipped", choices=["en", "zh"],
                       help="replay the product's gate for this language on the sheets given")
    gater.add_argument("--json")
    signaller = commands.add_parser(
        "signals", help="how well each signal separates sensible retrieved replies (AUC)")
    signaller.add_argument("--key", nargs="+", required=True,
                           help="rated validation sheets' keys (each its parts' joined by commas)")
    signaller.add_argument("--ratings", nargs="+", required=True, help="their ratings, as --key")
    signaller.add_argument("--json")
    gater.set_defaults(func=gate)
    ranker.set_defaults(func=rank_pool)
    signaller.set_defaults(func=signals)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
