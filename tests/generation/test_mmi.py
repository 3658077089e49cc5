"""MMI re-ranking: the formula on scripted scores, the generator's re-ranking with a scripted
companion, and the LM / reverse companions trained and loaded through the CLI."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from nlp.corpus.records import Pair
from nlp.decoding import DecodeOptions
from nlp.generation.mmi import mmi_score
from tests.conftest import REPO, tiny_overrides

if TYPE_CHECKING:
    from nlp.generation.bundle import Bundle
    from nlp.generation.text_generator import Generation

# Candidate -> (forward log p(T|S), companion per-token log-probs). "i'm sorry" is the
# likeliest reply (forward) but also likely for any message (LM), the MMI failure case.
GENERIC = (-2.0, np.array([-0.5, -0.5, -0.5]))
SPECIFIC = (-3.0, np.array([-3.0, -2.5, -2.0]))


def test_anti_lm_prefers_the_reply_the_language_model_finds_unlikely() -> None:
    plain = DecodeOptions(rerank="mmi-antilm", mmi_lambda=0.0)
    assert mmi_score(*GENERIC, 3, plain) > mmi_score(*SPECIFIC, 3, plain)
    mmi = DecodeOptions(rerank="mmi-antilm", mmi_lambda=0.5)
    assert mmi_score(*GENERIC, 3, mmi) == pytest.approx(-2.0 + 0.75)
    assert mmi_score(*SPECIFIC, 3, mmi) == pytest.approx(-3.0 + 3.75)


def test_anti_lm_penalises_only_the_first_gamma_tokens_and_adds_the_length_bonus() -> None:
    options = DecodeOptions(rerank="mmi-antilm", mmi_lambda=1.0, mmi_gamma=1, length_bonus=0.25)
    assert mmi_score(*SPECIFIC, 4, options) == pytest.approx(-3.0 + 3.0 + 1.0)


def test_bidi_adds_the_per_token_backward_log_probability() -> None:
    options = DecodeOptions(rerank="mmi-bidi", mmi_lambda=2.0)
    # Backward model: the message is well explained by SPECIFIC, poorly by GENERIC.
    assert mmi_score(-2.0, np.array([-4.0, -4.0]), 3, options) == pytest.approx(-2.0 - 8.0)
    assert mmi_score(-3.0, np.array([-1.0, -1.0]), 3, options) == pytest.approx(-3.0 - 2.0)


def test_per_token_anti_lm_is_the_reply_mean_minus_the_mean_over_the_penalised_tokens() -> None:
    """Hand-computed: log p(T|S) / |T| = -3 / 4; the LM's first gamma = 2 tokens have mean
    (-3.0 - 2.5) / 2 = -2.75, weighted 0.7: +1.925; the bonus per token: +0.1."""
    options = DecodeOptions(
        rerank="mmi-antilm", mmi_lambda=0.7, mmi_gamma=2, length_bonus=0.1, mmi_per_token=True
    )
    assert mmi_score(*SPECIFIC, 4, options) == pytest.approx(-0.75 + 1.925 + 0.1)
    # gamma 0 penalises every token the LM scored: mean (-0.5 * 3) / 3 = -0.5, weighted 0.5
    every = DecodeOptions(rerank="mmi-antilm", mmi_lambda=0.5, mmi_per_token=True)
    assert mmi_score(*GENERIC, 3, every) == pytest.approx(-2.0 / 3 + 0.25)
    # gamma beyond the reply: the mean over the tokens there are, (-3 - 2.5 - 2) / 3 = -2.5
    beyond = DecodeOptions(rerank="mmi-antilm", mmi_lambda=1.0, mmi_gamma=5, mmi_per_token=True)
    assert mmi_score(*SPECIFIC, 4, beyond) == pytest.approx(-0.75 + 2.5)


def test_per_token_bidi_adds_the_backward_mean_once() -> None:
    """Hand-computed: log p(T|S) / |T| = -2 / 4, plus lambda 2 times the backward mean -4
    (a mean over the message already, not divided by |T| again)."""
    options = DecodeOptions(rerank="mmi-bidi", mmi_lambda=2.0, mmi_per_token=True)
    assert mmi_score(-2.0, np.array([-4.0, -4.0]), 4, options) == pytest.approx(-0.5 - 8.0)


def test_per_token_scores_do_not_favour_short_replies() -> None:
    """Two replies the model finds equally likely per token (-1 a token), of 2 and 6 tokens,
    whose companion scores agree where both are scored: per token, each term normalised
    once, they tie. (Dividing the gamma tokens' penalty, or the backward mean, by |T| gave
    the short reply 2 against 0, and -2 against -4/3.)"""
    antilm = DecodeOptions(rerank="mmi-antilm", mmi_lambda=1.0, mmi_gamma=2, mmi_per_token=True)
    short = mmi_score(-2.0, np.array([-3.0, -3.0]), 2, antilm)
    long = mmi_score(-6.0, np.array([-3.0, -3.0, -1.0, -1.0, -1.0, -1.0]), 6, antilm)
    assert short == pytest.approx(-1.0 + 3.0) and long == pytest.approx(-1.0 + 3.0)
    bidi = DecodeOptions(rerank="mmi-bidi", mmi_lambda=1.0, mmi_per_token=True)
    message = np.array([-2.0, -2.0, -2.0])
    assert mmi_score(-2.0, message, 2, bidi) == pytest.approx(-1.0 - 2.0)
    assert mmi_score(-6.0, message, 6, bidi) == pytest.approx(-1.0 - 2.0)
    # With no companion weight, the sum prefers the short reply; per token, the one that
    # fits better per token (-4.5 / 6 = -0.75 against -3 / 2 = -1.5).
    short_reply, long_reply = (-3.0, np.array([-1.0])), (-4.5, np.array([-1.0]))
    summed = DecodeOptions(rerank="mmi-antilm", mmi_lambda=0.0)
    assert mmi_score(*short_reply, 2, summed) > mmi_score(*long_reply, 6, summed)
    per_token = DecodeOptions(rerank="mmi-antilm", mmi_lambda=0.0, mmi_per_token=True)
    assert mmi_score(*short_reply, 2, per_token) == pytest.approx(-1.5)
    assert mmi_score(*long_reply, 6, per_token) == pytest.approx(-0.75)


def test_unknown_rerank_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown re-ranking"):
        DecodeOptions(rerank="mmi")


class ScriptedCompanion:
    """Test double: one scripted log-probability per pair, in the order the pairs come."""

    kind = "lm"

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores
        self.calls = 0

    def token_log_probs(self, pairs: Sequence[Pair]) -> list[np.ndarray]:
        self.calls += 1
        assert len(pairs) == len(self.scores)
        return [np.array([score]) for score in self.scores]


def assert_by_score_with_text_first(n_best: Sequence[Generation]) -> None:
    """An n-best list as `Generator.generate` orders it without a gate: the candidates with
    text by score, then any empty one (nothing to send: never a single output's first)."""
    has_text = [bool(g.text.strip()) for g in n_best]
    assert has_text == sorted(has_text, reverse=True)
    scores = [g.score for g in n_best if g.text.strip()]
    assert scores == sorted(scores, reverse=True)


def test_generator_reranks_every_candidate_in_one_companion_call(tiny_bundle: Path) -> None:
    from nlp.generation.bundle import load_bundle
    from nlp.generation.generator import Generator

    bundle = load_bundle(tiny_bundle)
    plain = Generator(bundle).generate(["how are you?", "hello"], DecodeOptions(n_best=4))
    # The companion scores each input's candidates in the beam's order (by score); script it
    # so that the worst of them with text is very unlikely under the LM (the least generic),
    # hence the MMI winner by a margin of 1000 nats (an empty one is never sent first).
    beams = [sorted(n_best, key=lambda g: g.score, reverse=True) for n_best in plain]
    worst = [max(i for i, g in enumerate(beam) if g.text.strip()) for beam in beams]
    companion = ScriptedCompanion([-1000.0 * (i == w) for w in worst for i in range(4)])
    reranked = Generator(bundle, companions=[companion]).generate(
        ["how are you?", "hello"], DecodeOptions(n_best=4, rerank="mmi-antilm", mmi_lambda=1.0)
    )
    assert companion.calls == 1
    for beam, w, after in zip(beams, worst, reranked, strict=True):
        assert after[0].score == pytest.approx(beam[w].score + 1000.0)
        assert (after[0].text, after[0].tokens) == (beam[w].text, beam[w].tokens)
        assert_by_score_with_text_first(after)
    with pytest.raises(ValueError, match="not a companion"):  # a chat bundle as --mmi-model
        Generator.from_bundle(tiny_bundle, companions=[tiny_bundle])
    with pytest.raises(ValueError, match="needs a companion reverse model"):
        Generator(bundle, companions=[companion]).generate(
            ["hello"], DecodeOptions(n_best=2, rerank="mmi-bidi")
        )


def test_mmi_reads_the_model_s_likelihood_where_pmi_ordered_the_candidates(
    tiny_bundle: Path,
) -> None:
    """With `pmi_weight`, each candidate's score is its PMI; MMI read that as log p(T|S) and
    ordered by PMI again. Its forward term is the likelihood, with PMI or without."""
    from nlp.generation.bundle import load_bundle
    from nlp.generation.generator import Generator

    bundle = load_bundle(tiny_bundle)
    options = DecodeOptions(n_best=4, rerank="mmi-antilm", mmi_lambda=1.0, mmi_per_token=False)
    flat = ScriptedCompanion([0.0] * 4)  # the LM finds every reply alike: MMI = likelihood
    alone = Generator(bundle, companions=[flat]).generate(["how are you?"], options)[0]
    with_pmi = Generator(bundle, companions=[ScriptedCompanion([0.0] * 4)]).generate(
        ["how are you?"], dataclasses.replace(options, pmi_weight=1.0))[0]
    assert [g.text for g in with_pmi] == [g.text for g in alone]
    assert [g.score for g in with_pmi] == pytest.approx([g.score for g in alone], abs=1e-3)


@pytest.fixture(scope="module")
def companions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An LM (`s2s train --task lm`) and a reverse model (`s2s train --reverse`)."""
    from s2s.cli import main

    corpus = str(REPO / "corpora" / "dialogue-en.jsonl")
    paths = {}
    for kind, flags in (("lm", ["--task", "lm"]), ("reverse", ["--reverse"])):
        out = tmp_path_factory.mktemp(kind)
        sets = [arg for item in tiny_overrides() for arg in ("--set", item)]
        assert main(["train", "--corpus", corpus, "--out", str(out), "--quiet", *flags, *sets]) == 0
        paths[kind] = out / "model"
    return paths


@pytest.mark.slow
def test_lm_and_reverse_models_train_and_load_through_the_cli(
    companions: dict[str, Path], tiny_bundle: Path
) -> None:
    from nlp.generation.generator import Generator
    from nlp.generation.mmi import CompanionScorer

    lm, reverse = CompanionScorer(companions["lm"]), CompanionScorer(companions["reverse"])
    assert (lm.kind, reverse.kind) == ("lm", "reverse")
    pairs = [Pair("how are you ?", "fine , thanks ."), Pair("hello there", "hi .")]
    lm_scores = lm.token_log_probs(pairs)
    # The LM scores the reply alone: the same reply scores the same after any message.
    alone = lm.token_log_probs([Pair("something else entirely", "fine , thanks .")])
    np.testing.assert_allclose(lm_scores[0], alone[0], atol=1e-5)
    # The reverse model scores the message (its target), given the reply.
    reverse_scores = reverse.token_log_probs(pairs)
    message_tokens = reverse.bundle.codec.tokenizer.tokenize("how are you ?")
    assert len(reverse_scores[0]) == len(message_tokens) + 1
    for scores in (*lm_scores, *reverse_scores):
        assert np.all(np.isfinite(scores)) and np.all(scores <= 0)
    generator = Generator.from_bundle(
        tiny_bundle, companions=[companions["lm"], companions["reverse"]]
    )
    for rerank in ("mmi-antilm", "mmi-bidi"):
        (n_best,) = generator.generate(["how are you?"], DecodeOptions(n_best=3, rerank=rerank))
        assert len(n_best) == 3
        assert_by_score_with_text_first(n_best)


@pytest.mark.slow
def test_companion_scoring_of_several_chats_together_equals_each_chat_alone(
    companions: dict[str, Path], tiny_bundle: Path
) -> None:
    """The micro-batcher decodes several chats' messages in one call, so the companions score
    all their candidates in one call: each message must get the replies and MMI scores it
    gets alone (padding to the batch's longest pair must not leak into a shorter one)."""
    from nlp.generation.generator import Generator

    generator = Generator.from_bundle(
        tiny_bundle, companions=[companions["lm"], companions["reverse"]]
    )
    posts = ["how are you?", "hello", "what did you do at the weekend with your brother?"]
    for rerank in ("mmi-antilm", "mmi-bidi"):
        for per_token in (False, True):
            options = DecodeOptions(beam_size=3, n_best=3, rerank=rerank, mmi_lambda=0.5,
                                    mmi_per_token=per_token)
            together = generator.generate(posts, options)
            for post, ranked in zip(posts, together, strict=True):
                (alone,) = generator.generate([post], options)
                assert [c.text for c in ranked] == [c.text for c in alone], (rerank, post)
                assert [c.score for c in ranked] == pytest.approx(
                    [c.score for c in alone], rel=1e-4, abs=1e-5), (rerank, post)


@pytest.mark.slow
def test_s2s_chat_reranks_with_a_companion_named_on_the_command_line(
    companions: dict[str, Path], tiny_bundle: Path, tmp_path: Path, monkeypatch, capsys  # type: ignore[no-untyped-def]
) -> None:
    import io

    from s2s.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("how are you?\n"))
    args = ["chat", "--model", str(tiny_bundle), "--state", str(tmp_path / "s.sqlite"),
            "--mmi-model", str(companions["lm"]), "--rerank", "mmi-antilm", "--mmi-lambda", "0.3"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "overridden: " in captured.err and "--rerank mmi-antilm" in captured.err
    assert captured.out.strip()


@pytest.mark.slow
def test_a_chat_bundle_names_its_companions_and_s2s_chat_finds_them(
    companions: dict[str, Path], tiny_bundle: Path, tmp_path: Path, monkeypatch, capsys  # type: ignore[no-untyped-def]
) -> None:
    import io
    import json
    import shutil

    from nlp.generation.bundle import BundleError, load_bundle, read_metadata
    from s2s.cli import main

    chat = tmp_path / "run" / "model"
    shutil.copytree(tiny_bundle, chat)
    # A swapped pair is refused before anything is written.
    assert main(["companion", "--model", str(chat), "--lm", str(companions["reverse"])]) == 1
    assert not (chat / "companions.json").exists()
    assert main(["companion", "--model", str(chat), "--lm", str(companions["lm"])]) == 0
    assert main(["companion", "--model", str(chat), "--reverse", str(companions["reverse"])]) == 0
    assert "companions.json" in read_metadata(chat)["files"]  # checksummed like every file
    named = json.loads((chat / "companions.json").read_text())
    assert set(named) == {"lm", "reverse"} and not Path(named["lm"]).is_absolute()
    bundle = load_bundle(chat)
    assert bundle.companions["lm"].resolve() == companions["lm"].resolve()

    monkeypatch.setattr("sys.stdin", io.StringIO("how are you?\n"))
    args = ["chat", "--model", str(chat), "--state", str(tmp_path / "s.sqlite"),
            "--rerank", "mmi-bidi"]
    assert main(args) == 0
    assert capsys.readouterr().out.strip()

    (chat / "companions.json").write_text('{"lm": "elsewhere"}')
    with pytest.raises(BundleError, match=r"companions\.json: corrupt"):
        load_bundle(chat)


def _log_probs_by_training_loss(bundle: Bundle, pairs: Sequence[Pair]) -> list[np.ndarray]:
    """Per pair, the log-probability of each target token (end included) as training measures
    it: the examples training would make of the pairs, batched as its data pipeline cuts
    them, and minus the per-token cross-entropy of the model's own teacher forcing
    (`token_losses`, training's loss). An independent reference for what `CompanionScorer`
    (encoder run once a source, its rows gathered) and the tables built from it report."""
    from nlp.model.losses import token_losses
    from nlp.training.data import EncodedExamples
    from nlp.training.prepare import examples_of

    examples = examples_of(bundle.codec, pairs, workers=1)
    assert len(examples) == len(pairs)  # none dropped: row i is pair i
    data, size = EncodedExamples(examples), 256
    model, vocab = bundle.model, bundle.config.model.vocab_size
    result: list[np.ndarray] = []
    for start in range(0, len(examples), size):
        rows = np.arange(start, min(start + size, len(examples)))
        source, target_in, target_out = data.batch(rows)
        outputs = model.teacher_forcing(source, target_in, training=False)
        losses, _ = token_losses(outputs, target_out, vocab)
        for row, index in enumerate(rows):
            result.append(-np.asarray(losses)[row, : len(examples[index][1])])
    return result


def _hits(table: np.ndarray) -> float:
    """Hits@1 by hand: a post counts 1 when its true reply (column 0) beats every
    distractor, 1/(1 + ties) when it ties the best of them, else 0."""
    credit = 0.0
    for row in table:
        if not (row[1:] > row[0]).any():
            credit += 1.0 / (1 + int((row[1:] == row[0]).sum()))
    return credit / len(table)


@pytest.mark.slow
def test_tune_decoding_chooses_mmi_weights_by_hits_and_every_command_uses_them(
    companions: dict[str, Path],
    tiny_bundle: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With companions, `s2s tune-decoding` scores the validation posts' true replies against
    distractors, keeps per re-ranking the grid's weights with the best Hits@1, tries the
    re-ranking configurations with them, and `s2s evaluate --metric hits` then reports the
    re-rankings with those weights.

    The reference is computed apart from the tuner's scorer and tables: every candidate's
    token log-probabilities by the three models' training loss (`_log_probs_by_training_loss`),
    the per-token MMI score written out here from its definition (forward mean per reply
    token; minus lambda times the LM's mean over its first gamma tokens; plus lambda times
    the backward mean over the message), and Hits counted by hand. No grid weight may beat
    the chosen ones there, and the Hits the tuner stored must be the reference's. Float32
    paths differ by ~1e-6, so a post whose true reply and best distractor are that close
    may count differently: one post's worth of tolerance."""
    import json
    import shutil

    from nlp.generation.bundle import load_bundle
    from nlp.generation.decode_settings import RERANK_WEIGHTS
    from nlp.metrics.hits import DEFAULT_K, HitsDraw, distractors
    from nlp.training.corpus_io import CorpusSpec, load_pairs
    from nlp.tuning.rerank_weights import HITS_POSTS, RERANK_GRIDS
    from nlp.tuning.search import chat_candidates
    from s2s.cli import main

    chat = tmp_path / "run" / "model"
    shutil.copytree(tiny_bundle, chat)
    assert main(["companion", "--model", str(chat), "--lm", str(companions["lm"]),
                 "--reverse", str(companions["reverse"])]) == 0
    corpus = REPO / "corpora" / "dialogue-en.jsonl"
    assert main(["tune-decoding", "--model", str(chat), "--corpus", str(corpus),
                 "--max-pairs", "6", "--minutes", "5"]) == 0
    out = capsys.readouterr().out
    assert "re-ranking weights by Hits@1/20" in out
    stored = load_bundle(chat).decoding
    assert stored is not None
    chosen = stored.details[RERANK_WEIGHTS]
    # the bundle's dual encoder and index: their fusion's weight is chosen too (tested in
    # tests/tuning/test_rerank_weights.py); here the MMI weights against hand-made scores
    assert set(chosen) == {"mmi-antilm", "mmi-bidi", "dual-encoder+bm25"}
    mmi_chosen = {rerank: chosen[rerank] for rerank in ("mmi-antilm", "mmi-bidi")}

    bundles = {kind: load_bundle(path) for kind, path in companions.items()}
    bundles["chat"] = load_bundle(chat)
    pairs = load_pairs(CorpusSpec((corpus,)))
    targets = [p.target for p in pairs]
    rows = HitsDraw(limit=HITS_POSTS).rows([p.group for p in pairs])
    drawn = distractors(targets, rows, DEFAULT_K, 0, key=bundles["chat"].codec.as_output)
    candidates = [Pair(pairs[i].source, targets[j])
                  for i, others in zip(rows, drawn, strict=True) for j in (i, *others)]
    scores = {kind: _log_probs_by_training_loss(b, candidates) for kind, b in bundles.items()}
    forward = np.array([np.mean(row) for row in scores["chat"]])

    def reference(rerank: str, weights: dict[str, float]) -> float:
        lam, gamma = weights["mmi_lambda"], int(weights["mmi_gamma"])
        if rerank == "mmi-antilm":
            extra = [-np.mean(row[:gamma] if gamma else row) for row in scores["lm"]]
        else:
            extra = [np.mean(row) for row in scores["reverse"]]
        return _hits((forward + lam * np.array(extra)).reshape(len(rows), DEFAULT_K))

    one_post = 1.0 / len(rows) + 1e-9
    assert stored.details["hits"]["model"] == pytest.approx(
        _hits(forward.reshape(len(rows), DEFAULT_K)), abs=one_post
    )
    for rerank, weights in mmi_chosen.items():
        assert weights in RERANK_GRIDS[rerank]
        best = reference(rerank, weights)
        assert stored.details["hits"][rerank] == pytest.approx(best, abs=one_post)
        for other in RERANK_GRIDS[rerank]:
            assert reference(rerank, other) <= best + one_post, (rerank, other)
    # the chat bundle has its retrieval index: only the retrieved replies compete, in the
    # retrieval's order; Hits still chooses a ranker of replies (MMI among them)
    assert stored.details["ranker"] in ("likelihood", "mmi-antilm", "mmi-bidi", "dual-encoder",
                                        "dual-encoder+bm25")
    candidates_by_name = chat_candidates(["lm", "reverse"], chosen, stored.details["ranker"],
                                         retrieval=True)
    assert stored.options in candidates_by_name.values()
    assert stored.details["trials"] == len(candidates_by_name)
    assert all(options.generated and options.retrieved_threshold > 0
               for options in candidates_by_name.values())
    # a model without an index re-ranks its own candidates with the chosen weights
    without_index = chat_candidates(["lm", "reverse"], chosen)
    assert without_index["MMI anti-LM"].mmi_lambda == chosen["mmi-antilm"]["mmi_lambda"]

    assert main(["evaluate", "--model", str(chat), "--corpus", str(corpus),
                 "--metric", "hits"]) == 0
    report = json.loads(capsys.readouterr().out)
    for rerank in chosen:
        assert report["hits"][f"hits@1/20 {rerank}"] == pytest.approx(
            stored.details["hits"][rerank], abs=1e-4
        )


def test_the_companion_scores_many_pairs_in_slices_of_bounded_rows(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of messages' wide n-best lists, or every reply against every post (PMI),
    would not fit in memory at once (the output layer is rows x length x vocabulary): the
    scorer goes through them a bounded slice a call, and scores each pair as it would alone."""
    from nlp.generation import mmi

    pairs = [Pair(post, reply) for post in ("hello", "how are you?", "what is that")
             for reply in ("i am fine .", "yes", "that is a dog")]
    scorer = mmi.CompanionScorer(tiny_bundle)
    whole = scorer.token_log_probs(pairs)
    sizes: list[int] = []
    scored = scorer._scored
    monkeypatch.setattr(scorer, "_scored", lambda part: sizes.append(len(part)) or scored(part))
    monkeypatch.setattr(mmi, "SCORED_ROWS", 4)
    sliced = scorer.token_log_probs(pairs)
    assert sizes == [4, 4, 1]
    for a, b in zip(whole, sliced, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert [scorer.token_log_probs([pair])[0].shape for pair in pairs] == [a.shape for a in whole]
