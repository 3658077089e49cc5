"""Retraining a trained model on new data, with and without vocabulary extension."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from nlp.corpus.records import Pair
from nlp.generation.bundle import load_bundle
from nlp.training import run
from nlp.training.corpus_io import CorpusSpec
from nlp.training.data import Example
from nlp.training.run import RetrainOptions, RunOptions, retrain, split_old_pairs
from tests.conftest import tiny_overrides, write_jsonl

NONSENSE = ["zorblax", "quintessa", "marmoset", "velociraptor", "xylophone"]
TEMPLATES = [
    ("do you like {} ?", "yes , {} is wonderful"),
    ("have you seen {} ?", "no , where is {} ?"),
]


def _pairs(words: list[str]) -> list[tuple[str, str]]:
    return [(s.format(w), t.format(w)) for w in words for s, t in TEMPLATES]


def _corpus(tmp_path: Path, pairs: list[tuple[str, str]]) -> CorpusSpec:
    return CorpusSpec((write_jsonl(tmp_path / "new.jsonl", pairs),))


def test_retrain_measures_losses_on_pairs_it_never_trained_on(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Distinct new pairs (no repeats), old pairs mixed in: neither the new validation pairs
    nor the old pairs that measure forgetting may be among the training examples. The MMI
    companions the old bundle names go with its decoding settings (a tuned `mmi-antilm`
    default without its LM failed every message)."""
    import shutil

    from nlp.generation.bundle import store_companions

    tiny_bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "old"))
    store_companions(tiny_bundle, {"lm": tmp_path / "lm"})
    before = load_bundle(tiny_bundle)
    known = sorted(t for t in before.codec.vocab.tokens if t.isalpha() and len(t) > 3)[:60]
    trained: list[Sequence[Example]] = []
    measured: list[tuple[Sequence[Example], Sequence[Example]]] = []
    real_fit, real_losses = run._fit, run._old_new_losses

    def fit(config, codec, model, train_examples, *rest, **named):  # type: ignore[no-untyped-def]
        trained.append(train_examples)
        return real_fit(config, codec, model, train_examples, *rest, **named)

    def losses(meter, old, new):  # type: ignore[no-untyped-def]
        measured.append((old, new))
        return real_losses(meter, old, new)

    monkeypatch.setattr(run, "_fit", fit)
    monkeypatch.setattr(run, "_old_new_losses", losses)
    result = retrain(
        tiny_bundle,
        _corpus(tmp_path, _pairs(known)),
        RunOptions(tmp_path / "re", verbose=0),
        RetrainOptions(old_share=0.5),
        tiny_overrides(**{"train.epochs": 2, "train.valid_fraction": 0.1}),
    )
    seen = {(tuple(s), tuple(t)) for s, t in trained[0]}
    for old, new in measured:
        assert old and new
        assert not seen & {(tuple(s), tuple(t)) for s, t in new}, "new valid pairs trained on"
        assert not seen & {(tuple(s), tuple(t)) for s, t in old}, "old valid pairs trained on"
    assert result["after_new_valid_loss"] < result["before_new_valid_loss"]
    assert {"before_old_valid_loss", "after_old_valid_loss"} <= set(result)
    after = load_bundle(tmp_path / "re")
    assert after.codec.vocab == before.codec.vocab
    assert after.metadata["retrained_from"] == str(tiny_bundle)
    companions = {kind: path.resolve() for kind, path in after.companions.items()}
    assert companions == {"lm": (tmp_path / "lm").resolve()}
    # `s2s train --resume` went on with a retrain's run as a plain training, without its
    # old pairs, index or origin: refused, naming what to run
    from s2s.cli import main

    corpus = _corpus(tmp_path, _pairs(known))
    assert main(["train", "--corpus", *map(str, corpus.paths), "--out", str(tmp_path / "re"),
                 "--quiet", "--resume"]) == 1


def test_old_pairs_split_into_a_pool_and_a_disjoint_held_out_part() -> None:
    old = [Pair(f"old {i}", f"reply {i}") for i in range(200)] * 2 + [Pair("new 1", "r")]
    pool, held = split_old_pairs(old, [Pair("new 1", "r")], 0.5, seed=3)
    assert pool and held
    assert len(pool) + len(held) == 200  # repeats and pairs of the new data left out
    assert not {(p.source, p.target) for p in pool} & {(p.source, p.target) for p in held}



def test_the_readme_old_share_mixes_in_the_old_runs_validation_pairs() -> None:
    """`--old-share 0.3` with the default old pairs, the old run's validation file: those
    pairs were chosen by the content hash with train.seed, and the old-holdout split reused
    hash and seed, so every one was held out and none mixed in."""
    from nlp.training.corpus_io import train_valid
    from nlp.util.config import ExperimentConfig

    train = ExperimentConfig().train
    everything = [Pair(f"post number {i}", f"reply number {i}") for i in range(2000)]
    _, old_valid = train_valid(everything, None, train.valid_fraction, train.seed)
    new = [Pair(f"new post {i}", f"new reply {i}") for i in range(100)]
    pool, held = split_old_pairs(old_valid, new, 0.5, train.seed)
    assert len(old_valid) // 4 < len(pool) < 3 * len(old_valid) // 4
    assert len(pool) + len(held) == len(old_valid)


def test_an_old_share_that_mixes_nothing_in_says_so(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Old pairs that are all in the new corpus leave none to mix: --old-share is not
    silently ignored."""
    pairs = _pairs(NONSENSE)
    old = CorpusSpec((write_jsonl(tmp_path / "old.jsonl", pairs),))
    bundle = load_bundle(tiny_bundle)
    config = bundle.config.with_overrides(["train.valid_fraction=0.3"])
    retrain_pairs = run._retrain_pairs(bundle, _corpus(tmp_path, pairs), config,
                                       RunOptions(tmp_path / "re", verbose=0),
                                       RetrainOptions(old_corpus=old, old_share=0.3))
    assert not retrain_pairs.mixing and not retrain_pairs.mixed_old
    assert "--old-share 0.3 mixes in no old pairs" in capsys.readouterr().err


def test_holding_every_old_pair_out_says_nothing_of_a_split(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`s2s retrain` without --old-share holds every old pair out: with conversation ids the
    split noted "too few to hold out whole conversations: split pair by pair"."""
    old = [Pair(f"old {i}", f"reply {i}", group=f"c{i % 10}") for i in range(30)]
    pool, held = split_old_pairs(old, [], 1.0, seed=3)
    assert (len(pool), len(held)) == (0, 30)
    assert "split pair by pair" not in capsys.readouterr().err


def test_extend_vocab_grows_matrices_and_keeps_learned_rows(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    before = load_bundle(tiny_bundle)
    old_size = len(before.codec.vocab)
    old_embedding = before.model.source_embedding.embeddings.numpy()
    retrain(
        tiny_bundle,
        _corpus(tmp_path, _pairs(NONSENSE) + [(f"{w} ?", f"{w} !") for w in NONSENSE]),
        RunOptions(tmp_path / "grown", verbose=0),
        RetrainOptions(extend_vocab=True, extend_min_freq=2),
        tiny_overrides(
            **{"train.epochs": 1, "train.learning_rate": 0.0, "train.valid_fraction": 0.3}
        ),
    )
    after = load_bundle(tmp_path / "grown")
    assert "zorblax" in after.codec.vocab and "zorblax" not in before.codec.vocab
    assert len(after.codec.vocab) == after.config.model.vocab_size > old_size
    for token in before.codec.vocab:
        assert after.codec.vocab.id_of(token) == before.codec.vocab.id_of(token)
    grown = after.model.source_embedding.embeddings.numpy()
    assert grown.shape[0] == len(after.codec.vocab)
    np.testing.assert_allclose(grown[:old_size], old_embedding)  # learning rate 0: rows kept
    assert after.model.output_layer.kernel.shape[1] == len(after.codec.vocab)


@pytest.mark.slow
def test_extend_vocab_with_vectors_keeps_each_unshared_embedding_its_own_rows(
    tmp_path: Path,
) -> None:
    """`model.share_embeddings=false`: the vectors fill the grown rows of both tables, and
    each table keeps the rows it learned (the target's were once overwritten by the
    source's)."""
    from nlp.training.run import train
    from nlp.util.config import ExperimentConfig
    from tests.conftest import REPO

    vectors = tmp_path / "vectors.txt"
    lines = [f"{word} {' '.join(['0.25'] * 16)}" for word in ("you", "good", "morning")]
    lines.append(f"zorblax {' '.join(['-0.5'] * 16)}")
    vectors.write_text("\n".join(lines) + "\n", "utf-8")
    settings = tiny_overrides(
        **{"model.share_embeddings": "false", "model.pretrained_embeddings": str(vectors)}
    )
    train(
        ExperimentConfig().with_overrides(settings),
        CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",)),
        RunOptions(tmp_path / "run", verbose=0),
    )
    before = load_bundle(tmp_path / "run" / "model")
    old_size = len(before.codec.vocab)
    old_source = before.model.source_embedding.embeddings.numpy()
    old_target = before.model.target_embedding.embeddings.numpy()
    assert not np.allclose(old_source, old_target)  # two tables, each trained on its own
    retrain(
        tmp_path / "run" / "model",
        _corpus(tmp_path, _pairs(NONSENSE) + [(f"{w} ?", f"{w} !") for w in NONSENSE]),
        RunOptions(tmp_path / "grown", verbose=0),
        RetrainOptions(extend_vocab=True, extend_min_freq=2),
        ["train.epochs=1", "train.learning_rate=0", "train.valid_fraction=0.3"],
    )
    after = load_bundle(tmp_path / "grown" / "model")
    source = after.model.source_embedding.embeddings.numpy()
    target = after.model.target_embedding.embeddings.numpy()
    np.testing.assert_allclose(source[:old_size], old_source)  # learning rate 0: rows kept
    np.testing.assert_allclose(target[:old_size], old_target)
    zorblax = after.codec.vocab.id_of("zorblax")
    assert zorblax >= old_size
    scale = after.metadata["pretrained_embeddings_new_rows"]["scale"]  # one row: its norm
    np.testing.assert_allclose(source[zorblax], [-0.5 * scale] * 16, rtol=1e-4)
    np.testing.assert_allclose(target[zorblax], [-0.5 * scale] * 16, rtol=1e-4)


@pytest.mark.slow
def test_a_refine_model_measures_forgetting_without_the_answer_in_its_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--old-corpus` may be the old training corpus, whose pairs the old index holds: each
    old pair is drafted from another post's reply (never its own entry, as training pairs
    are), and the held-out files keep the pairs as written, without the drafts."""
    from nlp.training.run import OLD_VALID_FILE, VALID_FILE, train
    from nlp.util.config import ExperimentConfig
    from tests.conftest import REPO

    corpus = CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",))
    config = ExperimentConfig().with_overrides(tiny_overrides(**{
        "data.retrieve_refine": "true", "retrieval.dual_encoder_minutes": 0}))
    train(config, corpus, RunOptions(tmp_path / "run", verbose=0))
    groups: list[list[Pair]] = []
    real_tokenize = run.tokenize_pairs

    def tokenize(codec, pair_groups):  # type: ignore[no-untyped-def]
        groups.extend(list(group) for group in pair_groups)
        return real_tokenize(codec, pair_groups)

    monkeypatch.setattr(run, "tokenize_pairs", tokenize)
    retrain(
        tmp_path / "run" / "model",
        _corpus(tmp_path, _pairs(NONSENSE)),
        RunOptions(tmp_path / "re", verbose=0),
        RetrainOptions(old_corpus=corpus),
        tiny_overrides(**{"train.valid_fraction": 0.3}),
    )
    separator = config.data.refine_separator
    old_held = groups[2]
    assert old_held and all(separator.strip() in pair.source for pair in old_held)
    # the old training pairs are drafted too, and none with its own reply (one reply of the
    # corpus answers two posts: either may draft the other's)
    replies = Counter(pair.target for pair in old_held)
    assert all(pair.source.partition(separator)[2] != pair.target
               for pair in old_held if replies[pair.target] == 1)
    for name in (VALID_FILE, OLD_VALID_FILE):
        written = (tmp_path / "re" / name).read_text("utf-8")
        assert written and separator.strip() not in written


def test_a_retrain_into_the_run_it_retrains_is_refused_before_training(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """`s2s retrain --from RUN --out RUN` trained, replaced RUN/model, then failed reading
    the old bundle's index from where the new one now stood."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_bundle, run_dir / "model")
    corpus = _corpus(tmp_path, _pairs(["alpha", "beta", "gamma"]))
    before = sorted(p.name for p in (run_dir / "model").iterdir())
    with pytest.raises(ValueError, match="retrain into a new --out"):
        retrain(run_dir, corpus, RunOptions(run_dir, verbose=0), RetrainOptions())
    assert sorted(p.name for p in (run_dir / "model").iterdir()) == before
