"""Entropy-based data filtering (`nlp.filtering`): entropies by hand, which pairs each side
leaves out, and a run that trains on the kept pairs while its index keeps every pair."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nlp.corpus.records import Pair
from nlp.filtering import EntropyFilter, identity_key, utterance_entropies
from nlp.util.config import DataConfig, ExperimentConfig
from tests.conftest import tiny_overrides

# "yes" follows three distinct posts (a twice): H = -(1/2 log2 1/2 + 2 x 1/4 log2 1/4) = 1.5
# bits; "hi there" is followed by two distinct replies once each: 1 bit; the rest 0.
PAIRS = [
    Pair("do you like tea ?", "yes"),
    Pair("Do you like tea?", "Yes ."),
    Pair("is it raining", "yes!"),
    Pair("are you done", "YES"),
    Pair("hi there", "hello , how are you ?"),
    Pair("hi there", "good morning to you"),
    Pair("what is your name", "my name is ann"),
]


def test_identity_ignores_case_spacing_and_punctuation() -> None:
    assert identity_key("Sure .") == identity_key("sure") == "sure"
    assert identity_key("I don't know.") == "i don t know"
    assert identity_key("是的，我也是") == "是的 我也是"


def test_entropies_by_hand() -> None:
    replies = [identity_key(p.target) for p in PAIRS]
    posts = [identity_key(p.source) for p in PAIRS]
    of_replies = utterance_entropies(replies, posts)
    assert of_replies["yes"] == pytest.approx(-(0.5 * math.log2(0.5) + 2 * 0.25 * math.log2(0.25)))
    assert of_replies["yes"] == pytest.approx(1.5)
    assert of_replies["my name is ann"] == 0.0
    of_posts = utterance_entropies(posts, replies)
    assert of_posts["hi there"] == pytest.approx(1.0)
    assert of_posts["do you like tea"] == 0.0  # the same reply twice
    with pytest.raises(ValueError, match="2 utterances but 1 partners"):
        utterance_entropies(["a", "b"], ["c"])


@pytest.mark.parametrize(
    ("side", "max_bits", "dropped"),
    [
        ("off", 0.0, []),
        ("reply", 1.0, [0, 1, 2, 3]),  # "yes": 1.5 bits
        ("reply", 1.5, []),  # not above
        ("post", 0.5, [4, 5]),  # "hi there": 1 bit
        ("post", 1.0, []),
        ("both", 0.5, [0, 1, 2, 3, 4, 5]),
    ],
)
def test_each_side_leaves_out_the_pairs_above_the_threshold(
    side: str, max_bits: float, dropped: list[int]
) -> None:
    data = DataConfig(entropy_filter=side, entropy_max_bits=max_bits)
    filtered = EntropyFilter.apply(PAIRS, data)
    assert filtered.kept == [p for i, p in enumerate(PAIRS) if i not in dropped]
    assert filtered.mask == [i not in dropped for i in range(len(PAIRS))]
    assert filtered.dropped == len(dropped)
    record = filtered.record()
    assert record["dropped"] == len(dropped) and record["kept"] == len(PAIRS) - len(dropped)
    if side == "reply" and dropped:
        assert filtered.top == [("yes", 4)]
        assert "left out 4 of 7 training pairs ('yes' 4" in filtered.summary()


@pytest.mark.parametrize("setting", ["data.entropy_filter=replies", "data.entropy_max_bits=-1"])
def test_bad_settings_are_refused(setting: str) -> None:
    with pytest.raises(ValueError, match=setting.split("=")[0].replace(".", r"\.")):
        ExperimentConfig().with_overrides([setting])


@pytest.mark.slow
def test_a_run_trains_on_the_kept_pairs_and_indexes_every_pair(tmp_path: Path) -> None:
    """The words only the left-out replies hold never reach the vocabulary (it is counted
    from what the model trains on); the index still holds every training pair; the bundle
    says what was left out."""
    from nlp.generation.bundle import load_bundle
    from nlp.retrieval import INDEX_DIR, ReplyIndex
    from nlp.training.corpus_io import CorpusSpec
    from nlp.training.run import RunOptions, train

    posts = [f"tell me about the {thing} please" for thing in
             ("weather", "garden", "river", "market", "station", "library")]
    pairs = [{"source": post, "target": "whatever dude"} for post in posts]
    pairs += [{"source": post, "target": f"the {post.split()[4]} is lovely {when}"}
              for post in posts for when in ("today", "again", "as ever")]
    corpus = tmp_path / "chat.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    valid = tmp_path / "valid.jsonl"
    valid.write_text(json.dumps({"source": "tell me about the sea", "target": "whatever"}) + "\n")
    config = ExperimentConfig().with_overrides(tiny_overrides(**{
        "vocab.min_freq": 1, "data.entropy_filter": "reply", "retrieval.dual_encoder_minutes": 0}))
    train(config, CorpusSpec((corpus,)), RunOptions(tmp_path / "run", verbose=0),
          valid_corpus=CorpusSpec((valid,)))
    bundle = load_bundle(tmp_path / "run" / "model")
    record = bundle.metadata["entropy_filter"]
    assert record["dropped"] == 6 and record["kept"] == 18
    assert record["most_dropped"] == [["whatever dude", 6]]
    assert bundle.codec.vocab.encode(["dude"])[0] == bundle.codec.vocab.encode(["zzzq"])[0]
    assert bundle.codec.vocab.encode(["lovely"])[0] != bundle.codec.vocab.encode(["zzzq"])[0]
    assert len(ReplyIndex.load(tmp_path / "run" / "model" / INDEX_DIR)) == 24


@pytest.mark.slow
def test_a_retrain_filters_the_new_and_the_old_pairs_it_trains_on(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """`s2s retrain` trains on new pairs with old ones mixed in: the filter reads them
    together, and neither group keeps a reply that follows any post; validation keeps all."""
    from nlp.generation.bundle import load_bundle
    from nlp.training import run
    from nlp.training.corpus_io import CorpusSpec
    from tests.conftest import write_jsonl

    posts = [f"what about the {thing} then" for thing in
             ("weather", "garden", "river", "market", "station", "library", "harbour", "bakery")]
    pairs = [(post, "whatever dude") for post in posts]
    pairs += [(post, f"the {post.split()[3]} is fine {when}") for post in posts
              for when in ("today", "again")]
    corpus = CorpusSpec((write_jsonl(tmp_path / "new.jsonl", pairs),))
    config = ExperimentConfig().with_overrides(tiny_overrides(**{
        "data.entropy_filter": "reply", "train.valid_fraction": 0.25}))
    split = run._retrain_pairs(load_bundle(tiny_bundle), corpus, config,
                               run.RunOptions(tmp_path / "re", verbose=0),
                               run.RetrainOptions(old_share=1.0))
    trained = [*split.train, *split.mixed_old]
    assert split.train and split.mixed_old
    assert all(identity_key(p.target) != "whatever dude" for p in trained)
    assert split.filtered.on and split.filtered.top[0][0] == "whatever dude"
    metadata = run._retrain_metadata(load_bundle(tiny_bundle), config, corpus,
                                     run.RunOptions(tmp_path / "re", verbose=0), 0, None,
                                     filtered=split.filtered)
    assert metadata["entropy_filter"]["dropped"] == split.filtered.dropped > 0
    every = [*split.train, *split.valid]
    assert len(every) < len(pairs)  # the filter left some new training pairs out
    unfiltered = run._retrain_pairs(
        load_bundle(tiny_bundle), corpus, ExperimentConfig().with_overrides(tiny_overrides(**{
            "train.valid_fraction": 0.25})),
        run.RunOptions(tmp_path / "re2", verbose=0), run.RetrainOptions(old_share=1.0))
    assert len(unfiltered.valid) == len(split.valid)  # validation is not filtered
    assert any(identity_key(p.target) == "whatever dude" for p in unfiltered.train)
