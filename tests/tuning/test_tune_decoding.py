"""Decoding settings that travel with the model: training stores the task's defaults,
`s2s tune-decoding` searches and stores the best, generating commands use them, flags win."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.generation.bundle import BundleError, load_bundle, read_metadata, store_decoding
from nlp.generation.decode_settings import DECODING_FILE, DecodeSettings, default_decode_options
from nlp.training.corpus_io import CorpusSpec
from nlp.training.run import RunOptions, train
from nlp.tuning.search import SearchSpace, objective_for, space_for, tune
from nlp.util.config import ExperimentConfig
from s2s.cli import main
from tests.conftest import REPO, tiny_overrides


def test_task_defaults() -> None:
    chat = default_decode_options("chat")  # beam: rated more sensible than samples
    assert (chat.strategy, chat.beam_size, chat.n_best, chat.retrieve) == ("beam", 5, 1, 0)
    headline = default_decode_options("headline")
    assert (headline.no_repeat_ngram, headline.length_penalty) == (1, 1.0)
    with pytest.raises(ValueError, match=r"no objective for data\.task='lm' yet"):
        objective_for("lm")


def test_search_keeps_only_improvements_and_respects_the_budget() -> None:
    """A scripted scorer: blocking 2-grams helps, a length penalty of 1.0 helps more."""

    def generate(sources: Sequence[str], options: DecodeOptions) -> list[str]:
        return [f"{options.no_repeat_ngram}/{options.length_penalty}/{options.beam_size}"]

    def objective(outputs: Sequence[str], pairs: Sequence[Pair]) -> float:
        ngram, penalty, beam = outputs[0].split("/")
        return (ngram == "2") + 2 * (penalty == "1.0") - 0.1 * (beam == "1")

    space = SearchSpace(no_repeat_ngram=(0, 2, 3), length_penalty=(0.0, 1.0), beam_size=(1, 5))
    pairs = [Pair("a", "b")]
    result = tune(generate, pairs, DecodeOptions(), objective, space, budget_seconds=60)
    assert (result.best.options.no_repeat_ngram, result.best.options.length_penalty) == (2, 1.0)
    assert result.best.options.beam_size == 5 and result.best.score == 3.0
    assert result.start.score == 0.0 and not result.stopped_early
    assert len(result.trials) == 1 + 2 + 1 + 1  # start, ngram 2 and 3, penalty 1.0, beam 1

    ticks = iter(range(1000))  # every clock reading is one second later
    short = tune(generate, pairs, DecodeOptions(), objective, space, 2.5, clock=lambda: next(ticks))
    assert short.stopped_early and len(short.trials) == 1


def test_space_from_lengths() -> None:
    space = space_for([4, 6, 8, 10], [40, 60, 80, 100], max_length=30)
    assert space.min_length == (0, 3, 6)
    assert space.max_length_ratio == (0.0, 0.1)


@pytest.fixture(scope="module")
def headline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("headline_run")
    config = ExperimentConfig().with_overrides(
        tiny_overrides(**{"data.task": "headline", "train.max_source_length": 40})
    )
    corpus = CorpusSpec((REPO / "corpora" / "headlines-en.jsonl",))
    train(config, corpus, RunOptions(out, verbose=0))
    return out


@pytest.mark.slow
def test_training_stores_the_task_defaults(headline_run: Path) -> None:
    bundle = load_bundle(headline_run)
    assert bundle.decoding is not None
    assert bundle.decoding.options == default_decode_options("headline")
    assert DECODING_FILE in read_metadata(bundle.path)["files"]


@pytest.mark.slow
def test_tuned_settings_are_used_and_flags_override_them(
    headline_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    argv = ["tune-decoding", "--model", str(headline_run), "--max-pairs", "4", "--minutes", "0.01"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "ROUGE-L F1" in out and "best:" in out and "decoding.json" in err
    stored = load_bundle(headline_run).decoding
    assert stored is not None and stored.origin.startswith("tuned")
    assert stored.details["pairs"] == 4

    # Pretend the search found beam 2 without n-gram blocking: the commands must follow.
    tuned = DecodeOptions(beam_size=2, no_repeat_ngram=0, max_length=7)
    store_decoding(headline_run, DecodeSettings(tuned, "tuned in a test"))
    articles = tmp_path / "articles.txt"
    articles.write_text("oil prices rise as output falls\n", "utf-8")
    output = tmp_path / "out.jsonl"
    assert main(["headlines", "--model", str(headline_run), str(articles), "-o", str(output)]) == 0
    err = capsys.readouterr().err
    assert "decoding: bundle settings (tuned in a test): beam 2, max_length 7" in err
    assert "overridden" not in err

    flags = ["--beam", "3", "--no-repeat-ngram", "2"]
    assert main(["headlines", "--model", str(headline_run), str(articles), "-o", str(output),
                 *flags]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "beam 3, no_repeat_ngram 2, max_length 7" in err
    assert "overridden: --beam 3 --no-repeat-ngram 2" in err

    valid = headline_run / "valid.jsonl"
    argv = ["evaluate", "--model", str(headline_run), "--corpus", str(valid), "--limit", "2"]
    assert main([*argv, "--metric", "rouge", "--greedy"]) == 0
    captured = capsys.readouterr()
    assert "greedy, max_length 7; overridden: --greedy" in captured.err
    report = json.loads(captured.out)
    assert "repeat_share" in report["rouge"]["model"]
    # the results say what they measured: the decoding with its overrides, the sample's limit
    measured = report["measured"]
    assert (measured["decoding"]["strategy"], measured["limit"]) == ("greedy", 2)
    assert measured["corpus"] == [str(valid)]


@pytest.mark.slow
def test_a_hand_edited_decoding_file_is_caught(headline_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(headline_run / "model", copy)
    (copy / DECODING_FILE).write_text('{"options": {"beam_size": 50}}', "utf-8")
    with pytest.raises(BundleError, match=r"decoding\.json: corrupt"):
        load_bundle(copy)


def test_chat_and_bot_start_from_the_bundle_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import dataclasses

    from nlp.chat.setup import add_responder_arguments, build_responder
    from tests.fakes.fake_generators import fake_model

    parser = argparse.ArgumentParser()
    add_responder_arguments(parser, state_name="chat.sqlite")
    tuned = DecodeSettings(DecodeOptions(beam_size=3, length_penalty=0.6), "tuned in a test")
    model = dataclasses.replace(fake_model(), decoding=tuned)
    for flags, beam in (([], 3), (["--beam", "7"], 7)):
        args = parser.parse_args(["--model", "m", "--state", str(tmp_path / "s.db"), *flags])
        responder = build_responder(args, lambda: model)
        assert responder.base_options.length_penalty == 0.6
        assert responder.base_options.beam_size == responder.store.defaults.beam_size == beam
        assert "decoding: bundle settings (tuned in a test)" in capsys.readouterr().err
        responder.store.close()


def test_headline_objective_charges_repetition_beyond_two_percent() -> None:
    """Hand-computed: against the 6-word reference, both outputs share the 5-word LCS
    "markets rise on rate hopes". Clean (5 words): P 1, R 5/6, F1 10/11. Stutter (7 words):
    P 5/7, R 5/6, F1 10/13, and every output repeats, so 1 - 0.02 is charged."""
    from nlp.tuning.search import rouge_l_objective

    pairs = [Pair("article", "markets rise on rate cut hopes")] * 4
    clean = ["markets rise on rate hopes"] * 4
    stutter = ["markets rise markets rise on rate hopes"] * 4  # repeats a word and a bigram
    assert rouge_l_objective(clean, pairs) == pytest.approx(10 / 11)
    assert rouge_l_objective(stutter, pairs) == pytest.approx(10 / 13 - 0.98)


def test_chat_objective_prefers_the_closest_to_people_of_the_diverse_enough() -> None:
    """Stock replies lose to any diverse-enough configuration however close to the references;
    among diverse-enough ones the higher BLEU-2 against people's replies wins (short replies
    lose by the brevity penalty); below the bar, more variety wins.

    Hand-computed BLEU-2: every unigram and bigram of "well a_i b_i" and "a_i b_i" is in the
    5-word reference, so each scores its brevity penalty, exp(1 - 300/180) and
    exp(1 - 300/120)."""
    from nlp.tuning.search import PLAIN_BEAM, TuningContext, chat_objective, try_candidates

    pairs = [Pair(f"post {i}", f"well a{i} b{i} is fine") for i in range(60)]
    stock = ["well a0 b0 is fine"] * 60  # distinct-2 4/240, top-5 repeats 59/60
    four = [f"x{i % 4} y{i % 4}" for i in range(60)]  # distinct-2 4/60, top-5 repeats 56/60
    close = [f"well a{i} b{i}" for i in range(60)]  # varied, the references' first words
    short = [f"a{i} b{i}" for i in range(60)]  # as varied, shorter

    def generate(sources: Sequence[str], options: DecodeOptions) -> list[str]:
        if options == PLAIN_BEAM:
            return stock
        return close if options.temperature < 1.0 else short

    objective = chat_objective(TuningContext(pairs, generate))
    assert objective(stock, pairs) == pytest.approx(4 / 240 - 59 / 60)
    assert objective(four, pairs) == pytest.approx(4 / 60 - 56 / 60)  # more variety: higher
    assert objective(close, pairs) == pytest.approx(10.0 + 100 * math.exp(1 - 5 / 3))
    assert objective(short, pairs) == pytest.approx(10.0 + 100 * math.exp(1 - 5 / 2))
    candidates = [PLAIN_BEAM, DecodeOptions(strategy="sample"),
                  DecodeOptions(strategy="sample", temperature=0.7)]
    result = try_candidates(generate, pairs, candidates, objective, 60)
    assert result.best.options.temperature == 0.7 and len(result.trials) == 3


def test_the_chat_floor_holds_for_fewer_replies_than_a_block() -> None:
    """40 posts (a small validation file, `--max-pairs 40`): however varied, the five most
    frequent of 40 replies are 5/40 = 12.5% of them, so a floor on their share would leave
    every configuration below it and choose by diversity alone. The floor counts their
    repeats: 40 different replies pass, one stock reply sent to 4 of the 40 posts (3 repeats,
    7.5%) does not."""
    from nlp.tuning.search import QUALIFIED, TuningContext, chat_objective

    pairs = [Pair(f"post {i}", f"well a{i} b{i} is fine") for i in range(40)]
    objective = chat_objective(TuningContext(pairs, lambda sources, options: []))
    varied = [f"well a{i} b{i}" for i in range(40)]  # distinct-2 0.75
    assert objective(varied, pairs) >= QUALIFIED
    stock = ["i do not know"] * 4 + varied[4:]
    assert objective(stock, pairs) < QUALIFIED


def test_best_ranker_takes_the_ranker_with_the_best_hits() -> None:
    """Hand-made Hits@1 figures: BM25 alone ranks no reply however high its Hits; a tie goes
    to the likelihood, else to the ranker `RANKER_OF_TABLE` names first (the simpler), in
    whatever order the figures come."""
    from nlp.tuning.command import best_ranker

    assert best_ranker({"model": 0.10, "mmi-antilm": 0.14, "mmi-bidi": 0.12}) == "mmi-antilm"
    assert best_ranker({"model": 0.10, "bm25": 0.50, "dual-encoder": 0.12}) == "dual-encoder"
    assert best_ranker({"model": 0.1, "dual-encoder": 0.2, "dual-encoder+bm25": 0.25}) == (
        "dual-encoder+bm25")
    assert best_ranker({"model": 0.1}) == "likelihood"
    assert best_ranker({"dual-encoder": 0.2, "mmi-bidi": 0.2, "model": 0.2}) == "likelihood"
    assert best_ranker({"dual-encoder+bm25": 0.3, "model": 0.1, "dual-encoder": 0.3}) == (
        "dual-encoder")
    assert best_ranker({"model": 0.1, "mmi-bidi": 0.3, "mmi-antilm": 0.3}) == "mmi-antilm"


def test_tune_decoding_for_chat_stores_the_winner_the_chat_uses(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses
    import shutil

    from nlp.chat.offline import bot_options
    from nlp.decoding.options import OptionError
    from nlp.generation.bundle import store_decoding
    from nlp.generation.confidence import stored_calibration
    from nlp.generation.decode_args import describe_options
    from nlp.generation.decode_settings import DecodeSettings
    from nlp.generation.generator import Generator
    from nlp.generation.retrieved_fit import DEFAULT_FIT, RETRIEVED_FIT
    from nlp.tuning.search import chat_candidates

    model = tmp_path / "model"
    shutil.copytree(tiny_bundle, model)
    # the bundle's own gate (`sense_sheet gate`): the tuner does not choose it, and wiped it
    own_gate = {"en": DEFAULT_FIT["en"].to_json()}
    before = load_bundle(model).decoding
    assert before is not None
    store_decoding(model, DecodeSettings(before.options, before.origin,
                                         {**before.details, RETRIEVED_FIT: own_gate}))
    corpus = REPO / "corpora" / "dialogue-en.jsonl"
    argv = ["tune-decoding", "--model", str(model), "--corpus", str(corpus),
            "--max-pairs", "6", "--minutes", "5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "distinct-2 - top-5 repeats" in out and "best:" in out
    stored = load_bundle(model).decoding
    assert stored is not None and stored.origin.startswith("tuned")
    assert stored.details[RETRIEVED_FIT] == own_gate
    # no companions: no MMI candidates; the bundle's index and dual encoder: Hits chooses a
    # ranker of replies (and calibrates each), which `--rerank` and Hits offer; the bot
    # sends in the retrieval's own order
    ranker = stored.details["ranker"]
    assert ranker in ("likelihood", "dual-encoder", "dual-encoder+bm25")
    assert set(stored.details["hits"]) == {"model", "dual-encoder", "bm25", "dual-encoder+bm25"}
    # every ranker's score calibrated on the candidates the bot ranks with the chosen
    # configuration (10 retrieved replies and the model's own), the true reply added: what the
    # chat's fallback threshold reads (tests/tuning/test_calibration.py)
    assert set(stored.details["calibration"]) == {
        "none", "likelihood", "dual-encoder", "dual-encoder+bm25"}
    calibration = stored_calibration(stored, "likelihood")
    assert calibration is not None
    assert calibration.fitted_with["retrieve"] == 10 and calibration.fitted_with["generated"]
    assert 0 < calibration.calibration.positives <= 6 < calibration.calibration.pairs
    # and it holds for the chat's options ranked by the likelihood; the retrieval's order
    # has none
    generator = Generator.from_bundle(model)
    chat = bot_options(dataclasses.replace(stored.options, fallback_threshold=0.5))
    generator.generate(["hello there"], dataclasses.replace(chat, rerank="likelihood"))
    with pytest.raises(OptionError, match="cannot be calibrated"):
        generator.generate(["hello there"], chat)
    candidates = chat_candidates((), None, ranker, retrieval=True)
    assert stored.options in candidates.values()
    # with an index that keeps its posts: the tuner tried what `chat_candidates` offers then,
    # each once (the rows of its table), and counts what it tried: the fitting retrieved reply
    # the sentence encoder ranks first, the model's own elsewhere
    tried = re.findall(r"^ *\d+ +-?\d+\.\d{4} +\d+\.\d  (.*)$", out, re.MULTILINE)
    assert tried == [describe_options(options) for options in candidates.values()]
    assert stored.details["trials"] == len(tried)
    assert stored.options.retrieve == 10 and stored.options.generated
    assert stored.options.retrieved_threshold > 0
    assert stored.options.rerank == "sentence-encoder"


def test_the_chat_objective_compares_replies_and_references_written_alike(
    tiny_bundle: Path,
) -> None:
    """Replies come out truecased ("I am fine."); a reference kept as the corpus wrote it
    ("i am fine.") would cost a perfect reply BLEU. Written as the model would write them,
    perfect replies score the full QUALIFIED + 100."""
    from nlp.text.normalize import normalize_text
    from nlp.tuning.search import QUALIFIED, TuningContext

    codec = load_bundle(tiny_bundle).codec
    colours = ["red", "blue", "green", "grey", "pink", "gold", "black", "white"]
    things = ["tea", "rain", "snow", "moon", "sun", "fish", "bird", "tree"]
    # 64 different replies: diverse enough (distinct-2 73/192 >= 0.30, top-5 repeats 0)
    # to be scored by BLEU
    pairs = [Pair(f"what about {c} {t}?", f"i like {c} {t}.")
             for c in colours for t in things]
    outputs = [codec.as_output(pair.target) for pair in pairs]
    assert outputs[0] != pairs[0].target  # truecased: the footing matters here
    _, make = objective_for("chat")
    objective = make(TuningContext(pairs, lambda sources, options: [], codec.as_output))
    assert objective(outputs, pairs) == pytest.approx(QUALIFIED + 100.0)
    as_corpus_wrote_them = make(TuningContext(pairs, lambda sources, options: [], normalize_text))
    assert as_corpus_wrote_them(outputs, pairs) < QUALIFIED + 90.0  # what the tuner used to do


def test_tuning_reads_a_dialogue_corpus_with_the_turns_the_model_reads(tmp_path: Path) -> None:
    """A chat model trained with earlier turns, tuned on a DailyDialog-format `--corpus`, was
    tuned on single-turn posts, which it never sees in use: the pairs are now read as the
    model's config reads them (`data.context_turns`), as `s2s evaluate` reads them."""
    from types import SimpleNamespace

    from nlp.tuning.command import _validation_pairs
    from s2s.cli import build_parser

    dialogues = tmp_path / "dialogues_validation.txt"
    dialogues.write_text(
        "Hi there . __eou__ Hello . __eou__ How are you ? __eou__ Fine . __eou__\n", "utf-8")
    config = ExperimentConfig().with_overrides(["data.context_turns=2"])
    args = build_parser().parse_args(
        ["tune-decoding", "--model", "m", "--corpus", str(dialogues), "--format", "dailydialog"])
    bundle = SimpleNamespace(config=config, metadata={}, path=tmp_path)
    _, every, _ = _validation_pairs(args, bundle)  # type: ignore[arg-type]
    separator = config.data.turn_separator.strip()
    assert every[-1].source.split(separator)[-1].strip() == "How are you ?"
    assert sum(separator in pair.source for pair in every) == 2  # the two with earlier turns
