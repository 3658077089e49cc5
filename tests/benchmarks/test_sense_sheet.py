"""The sense benchmark writes a blinded sheet of what the bot sends to sampled posts, with
the turns before each post, and scores it from a filled-in ratings file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks import sense_sheet

DIALOGUE = [
    ("hi, how are you?", "fine, thanks. and you?", "c1"),
    ("fine, thanks. and you?", "good. what are you doing today?", "c1"),
    ("good. what are you doing today?", "i am going to the park.", "c1"),
    ("do you like music?", "yes, i love jazz.", "c2"),
    ("yes, i love jazz.", "me too. who is your favourite?", "c2"),
]


def _main(monkeypatch: pytest.MonkeyPatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", ["sense_sheet", *argv])
    sense_sheet.main()


def test_make_then_score(
    tiny_bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corpus = tmp_path / "test.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"source": s, "target": t, "conversation": c}) + "\n" for s, t, c in DIALOGUE
        )
    )
    folder, key = tmp_path / "sheet", tmp_path / "keys" / "key.json"
    _main(
        monkeypatch,
        "make",
        "--model",
        str(tiny_bundle),
        "--corpus",
        str(corpus),
        "--posts",
        "4",
        "--seed",
        "0",
        "--out",
        str(folder),
        "--key",
        str(key),
    )
    rows = [json.loads(line) for line in (folder / "sheet.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    entries = json.loads(key.read_text())["rows"]
    people = [row for row in rows if "people" in entries[row["id"]]["sources"]]
    assert len(people) == 4
    by_post = {s: (t, c) for s, t, c in DIALOGUE}
    from nlp.generation.bundle import load_bundle

    shown = load_bundle(tiny_bundle).codec.as_output
    for row in people:  # the person's reply is the reference; the context its earlier turns
        # shown as the model writes text, so spacing and case tell no source apart
        assert row["reply"] == shown(by_post[row["post"]][0])
        turns = [s for s, _, c in DIALOGUE if c == by_post[row["post"]][1]]
        assert row["context"] == turns[: turns.index(row["post"])][-3:]
    bot_sources = {s for row in rows for s in entries[row["id"]]["sources"]} - {"people"}
    assert bot_sources <= {"bot generated", "bot retrieved", "bot refined", "bot apology"}
    ratings = folder / "ratings.tsv"
    ratings.write_text(
        "".join(
            f"{row['id']}\t1\t{int(entries[row['id']]['sources'] == ['people'])}\n" for row in rows
        )
    )
    out = tmp_path / "rates.json"
    _main(monkeypatch, "score", "--key", str(key), "--ratings", str(ratings), "--json", str(out))
    rates = json.loads(out.read_text())
    assert rates["sources"]["people"]["ssa"] == 1.0
    assert rates["sources"]["bot"]["ssa"] == 0.5
    assert rates["posts"] == 4 and rates["control_ok"]
    assert "people" in capsys.readouterr().out


def test_a_configuration_names_its_bundle_and_decoding() -> None:
    assert sense_sheet._configuration("tuned={}") == ("tuned", ("", {}))
    assert sense_sheet._configuration('old@runs/ab={"beam_size": 3}') == (
        "old",
        ("runs/ab", {"beam_size": 3}),
    )
    for bad in ("tuned", "my config={}", "x=[1]"):
        with pytest.raises(SystemExit):
            sense_sheet._configuration(bad)
    with pytest.raises(SystemExit, match="given twice"):  # the later one replaced the first
        sense_sheet._configurations(["beam={}", 'beam@runs/other={"beam_size": 3}'])


def test_a_context_joined_file_shows_the_message_apart_and_each_bot_reads_its_turns(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file converted with `--context-turns` holds each post's earlier turns in its source:
    the reader sees the message alone with the turns before it, and a bot reads as many
    earlier turns as its model was trained with (none for the tiny bundle)."""
    import nlp.chat.offline

    sep = " __eot__ "
    joined = [(sep.join(s for s, _, c2 in DIALOGUE[: i + 1] if c2 == c), t, c)
              for i, (s, t, c) in enumerate(DIALOGUE)]
    assert joined[2][0] == sep.join(s for s, _, _ in DIALOGUE[:3])
    corpus = tmp_path / "test.jsonl"
    corpus.write_text("".join(
        json.dumps({"source": s, "target": t, "conversation": c}) + "\n" for s, t, c in joined))
    read: list[str] = []
    choices = nlp.chat.offline.bot_choices

    def spy(generator: object, posts: list[str], *args: object, **kwargs: object) -> object:
        read.extend(posts)
        return choices(generator, posts, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(nlp.chat.offline, "bot_choices", spy)
    folder, key = tmp_path / "sheet", tmp_path / "key.json"
    _main(monkeypatch, "make", "--model", str(tiny_bundle), "--corpus", str(corpus),
          "--posts", "5", "--out", str(folder), "--key", str(key))
    rows = [json.loads(line) for line in (folder / "sheet.jsonl").read_text().splitlines()]
    posts = {s for s, _, _ in DIALOGUE}
    assert {row["post"] for row in rows} == posts
    third = next(row for row in rows if row["post"] == DIALOGUE[2][0])
    assert third["context"] == [DIALOGUE[0][0], DIALOGUE[1][0]]
    assert sorted(read) == sorted(posts)  # context_turns=0: the message alone


def _file(rows: list[tuple[str, str, str]]) -> sense_sheet.DialogueFile:
    return sense_sheet.DialogueFile([], [c for _, _, c in rows], [s for s, _, _ in rows],
                                    [t for _, t, _ in rows])


def test_bot_input_joins_as_many_earlier_turns_as_the_model_reads() -> None:
    test = _file(DIALOGUE)
    sources = [s for s, _, _ in DIALOGUE]
    sep = " __eot__ "
    assert sense_sheet.bot_input(test, 2, 0, sep) == sources[2]
    assert sense_sheet.bot_input(test, 2, 1, sep) == sep.join(sources[1:3])
    assert sense_sheet.bot_input(test, 2, 5, sep) == sep.join(sources[:3])
    assert sense_sheet.bot_input(test, 3, 2, sep) == sources[3]  # a new conversation
    # joined as the chat joins turns: one holding the model's separator cannot read as two
    forged = _file([("a | b", "c", "x"), ("c", "d", "x")])
    assert sense_sheet.bot_input(forged, 1, 2, " | ") == "a b | c"


def _write(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("".join(
        json.dumps({"source": s, "target": t, "conversation": c}) + "\n" for s, t, c in rows))
    return path


def test_a_pair_missing_from_a_conversation_is_not_bridged_by_the_one_before(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """valid.jsonl and --exclude-corpus drop single pairs from inside conversations: without
    (fine..., good...), the rows before "good. what are you doing today?" are (hi..., fine...)
    but the turn before it is "fine, thanks. and you?", which the file no longer holds. The
    sheet shows no turn before it rather than "hi, how are you?", and the bot reads none."""
    import nlp.chat.offline

    corpus = _write(tmp_path / "test.jsonl", [DIALOGUE[0], *DIALOGUE[2:]])
    read: list[str] = []
    choices = nlp.chat.offline.bot_choices

    def spy(generator: object, posts: list[str], *args: object, **kwargs: object) -> object:
        read.extend(posts)
        return choices(generator, posts, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(nlp.chat.offline, "bot_choices", spy)
    folder, key = tmp_path / "sheet", tmp_path / "key.json"
    _main(monkeypatch, "make", "--model", str(tiny_bundle), "--corpus", str(corpus),
          "--posts", "4", "--out", str(folder), "--key", str(key))
    rows = [json.loads(line) for line in (folder / "sheet.jsonl").read_text().splitlines()]
    context = {row["post"]: row["context"] for row in rows}
    assert context[DIALOGUE[2][0]] == []
    assert context[DIALOGUE[4][0]] == [DIALOGUE[3][0]]
    test = sense_sheet._read(str(corpus))
    assert sense_sheet.bot_input(test, 1, 2, " __eot__ ") == DIALOGUE[2][0]


def test_the_same_seed_gives_another_sheet_and_a_key_among_the_parts_is_refused(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed chooses the posts (the same ones again), never the ids nor their order; the
    raters get --out whole, so a key written beside the parts is refused before anything is
    written."""
    corpus = _write(tmp_path / "test.jsonl", DIALOGUE)
    sheets = []
    for n in range(2):
        folder = tmp_path / f"sheet{n}"
        _main(monkeypatch, "make", "--model", str(tiny_bundle), "--corpus", str(corpus),
              "--posts", "4", "--seed", "1", "--out", str(folder),
              "--key", str(tmp_path / f"key{n}.json"))
        lines = (folder / "sheet.jsonl").read_text().splitlines()
        sheets.append([(row["id"], row["post"], row["reply"]) for row in map(json.loads, lines)])
    assert sorted(p for _, p, _ in sheets[0]) == sorted(p for _, p, _ in sheets[1])
    assert {i for i, _, _ in sheets[0]} != {i for i, _, _ in sheets[1]}
    out = tmp_path / "sheets"
    for key in (out / "key.json", out / "part1" / "key.json"):
        with pytest.raises(SystemExit, match="must not be inside"):
            _main(monkeypatch, "make", "--model", str(tiny_bundle), "--corpus", str(corpus),
                  "--posts", "4", "--parts", "2", "--out", str(out), "--key", str(key))
        assert not out.exists()


def test_a_rated_pool_ranks_configurations_without_rating_again(
    tiny_bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`make --pool` puts every retrieved candidate on the sheet; `rank-pool` rates each
    configuration's picks from it: the configuration the sheet was made with gets the rates
    `score` gives it, and every pick among the same candidates is found rated."""
    corpus = tmp_path / "test.jsonl"
    corpus.write_text("".join(
        json.dumps({"source": s, "target": t, "conversation": c}) + "\n" for s, t, c in DIALOGUE))
    folder, key = tmp_path / "sheet", tmp_path / "keys" / "key.json"
    retrieved = '{"retrieve": 3, "generated": false, "rerank": "retrieval"}'
    _main(monkeypatch, "make", "--model", str(tiny_bundle), "--corpus", str(corpus),
          "--posts", "4", "--pool", "--decoding", f"bot={retrieved}",
          "--out", str(folder), "--key", str(key))
    rows = [json.loads(line) for line in (folder / "sheet.jsonl").read_text().splitlines()]
    entries = json.loads(key.read_text())["rows"]
    assert any("pool retrieved" in entries[row["id"]]["sources"] for row in rows)
    # a rater who finds the replies with a question mark sensible and specific
    ratings = folder / "ratings.tsv"
    ratings.write_text("".join(
        f"{row['id']}\t{int('?' in row['reply'])}\t{int('?' in row['reply'])}\n" for row in rows))
    scored = tmp_path / "rates.json"
    _main(monkeypatch, "score", "--key", str(key), "--ratings", str(ratings), "--json", str(scored))
    ranked = tmp_path / "ranked.json"
    _main(monkeypatch, "rank-pool", "--key", str(key), "--ratings", str(ratings),
          "--decoding", f"bot={retrieved}",
          "--decoding", 'encoder={"retrieve": 3, "generated": false, "rerank": "dual-encoder"}',
          "--json", str(ranked))
    bot = json.loads(scored.read_text())["sources"]["bot"]
    table = {row["configuration"]: row for row in json.loads(ranked.read_text())["configurations"]}
    assert (table["bot"]["posts"], table["bot"]["unrated"]) == (4, 0)
    assert table["bot"]["ssa"] == pytest.approx(bot["ssa"], abs=1e-3)
    assert table["encoder"]["unrated"] == 0  # the same candidates, another pick
    signals = tmp_path / "signals.json"
    _main(monkeypatch, "signals", "--key", str(key), "--ratings", str(ratings),
          "--json", str(signals))
    rows = json.loads(signals.read_text())["rows"]
    names = [row["signal"] for row in rows]
    assert names[:4] == ["tf-idf cosine (message, post)", "BM25 normalised (message, post)",
                         "coverage (message's words in the post)",
                         "encoder cosine (message, post)"]
    assert "dual encoder cosine (message, reply)" in names  # the tiny bundle has one
    assert all(0.0 <= auc <= 1.0 for row in rows for auc in (row["AUC sensible"],
                                                             row["AUC specific"]))
    assert {row["replies"] for row in rows} == {len(sense_sheet.rated_retrieved([key], [ratings]))}


def test_the_rated_gate_is_what_the_ratings_say() -> None:
    """P(specific | sensible) from the retrieved replies, the generated replies' SSA; posts
    missing a side count on the side they have."""
    from nlp.metrics.calibration import Calibration

    posts = [sense_sheet.GatePost(0.9, (1, 1), (1, 0)), sense_sheet.GatePost(0.2, (1, 0), (0, 0)),
             sense_sheet.GatePost(0.1, (0, 0), (1, 1)), sense_sheet.GatePost(0.5, None, (1, 0))]
    calibration = Calibration(slope=2.0, intercept=-1.0, pairs=3, positives=2)
    gate = sense_sheet.rated_gate(posts, calibration, "sentence-encoder")
    assert gate.signal == "sentence-encoder"  # what the calibration read
    assert gate.specific_if_sensible == 0.5  # 1 specific of 2 sensible
    assert gate.generated_ssa == pytest.approx((3 / 4 + 1 / 4) / 2)
    assert gate.sensible == calibration
    assert sense_sheet.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert sense_sheet._sheets(["a.part1.json,a.part2.json", "b.json"]) == [
        [Path("a.part1.json"), Path("a.part2.json")], [Path("b.json")]]


def test_compare_counts_posts_each_source_rated_better_and_by_provenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hand-made key and ratings: post 0 `now` sent a retrieved reply rated sensible and
    specific where `beam` wrote a generic one; post 1 both sent the same generated reply
    (one row, rated once); post 2 `now`'s retrieved reply made no sense, `beam`'s did."""
    rows = {
        "a": {"sources": ["now retrieved"], "post_index": 0},
        "b": {"sources": ["beam generated"], "post_index": 0},
        "c": {"sources": ["now generated", "beam generated"], "post_index": 1},
        "d": {"sources": ["now retrieved"], "post_index": 2},
        "e": {"sources": ["beam generated"], "post_index": 2},
        "f": {"sources": ["people"], "post_index": 2},
    }
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"meta": {}, "rows": rows}))
    ratings = tmp_path / "ratings.tsv"
    ratings.write_text("a\t1\t1\nb\t1\t0\nc\t1\t0\nd\t0\t0\ne\t1\t0\nf\t1\t1\n")
    out = tmp_path / "compare.json"
    _main(monkeypatch, "compare", "now", "beam", "--key", str(key), "--ratings", str(ratings),
          "--json", str(out))
    result = json.loads(out.read_text())
    assert result["posts"] == 3
    assert result["ssa"] == {"now": pytest.approx(1.5 / 3, abs=1e-4),
                             "beam": pytest.approx(1.5 / 3, abs=1e-4)}
    assert result["better_of_the_two"] == pytest.approx(2 / 3, abs=1e-4)
    assert (result["sensible"]["better"], result["sensible"]["worse"]) == (0, 1)
    assert (result["ssa_paired"]["better"], result["ssa_paired"]["worse"]) == (1, 1)
    by = {row["provenance"]: row for row in result["by_provenance_of_first"]}
    assert (by["retrieved"]["posts"], by["retrieved"]["now"], by["retrieved"]["beam"]) == (
        2, 0.5, 0.5)
    assert (by["generated"]["posts"], by["generated"]["now"]) == (1, 0.5)


def test_the_gate_is_chosen_on_the_scale_the_product_thresholds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grid thresholded P(sensible), while the product sends a retrieved reply where its
    fit (its share of the two expected ratings) reaches `retrieved_threshold`: the chosen
    number was not the one to set. Each row now sends retrieved replies where the fit the
    fitted gate gives reaches the row's threshold."""
    import argparse
    import json as json_module

    from nlp.generation.retrieved_fit import RatedGate

    posts = [sense_sheet.GatePost(s / 10, (int(s > 4), int(s > 6)), (1, 0)) for s in range(10)]
    monkeypatch.setattr(sense_sheet, "gate_posts", lambda *args: posts)
    out = tmp_path / "gate.json"
    args = argparse.Namespace(shipped=None, key="k.json", ratings="r.tsv", also_key=[],
                              also_ratings=[], test_key=[], test_ratings=[],
                              retrieved="retrieved", generated="beam",
                              signal="sentence-encoder", json=str(out))
    sense_sheet.gate(args)
    result = json_module.loads(out.read_text())
    fit = RatedGate.from_json(result["rated_gate"]).fit
    for row in result["validation"]:
        sent = sum(fit(post.similarity) >= row["threshold"] for post in posts)
        assert row["retrieved replies"] == sent


def test_a_configuration_that_names_another_re_ranking_takes_its_tuned_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sheet's `{"rerank": "mmi-bidi"}` merged over the bundle's options took the
    decoder's default weights, not those Hits chose for it, which the bot and every
    command use: the sheet rated another bot than the one it names."""
    from types import SimpleNamespace

    import nlp.generation.loading
    from nlp.decoding import DecodeOptions
    from nlp.generation.decode_settings import RERANK_WEIGHTS, DecodeSettings
    from nlp.util.config import DataConfig

    tuned = DecodeSettings(DecodeOptions(), "tuned",
                           {RERANK_WEIGHTS: {"mmi-bidi": {"mmi_lambda": 8.0, "mmi_gamma": 0}}})
    bundle = SimpleNamespace(decoding=tuned, config=SimpleNamespace(data=DataConfig()))
    monkeypatch.setattr(nlp.generation.loading, "load_generator",
                        lambda path: SimpleNamespace(bundle=bundle))
    empty = sense_sheet.DialogueFile([], [], [], [])
    bots = sense_sheet._bots({"bidi": ("", {"rerank": "mmi-bidi"})}, "model", empty, [])
    options = bots["bidi"][1]
    assert (options.rerank, options.mmi_lambda, options.mmi_per_token) == ("mmi-bidi", 8.0, True)
