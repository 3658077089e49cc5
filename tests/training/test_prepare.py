"""Training's text preparation (`nlp.training.prepare`): every text tokenized once, in this
process or in a pool of workers, with the same tokens, vocabulary and ids either way."""

from __future__ import annotations

import pytest

from nlp.corpus.records import Pair
from nlp.generation.codec import TextCodec
from nlp.tokenizers.words import WordTokenizer
from nlp.training import prepare
from nlp.util.config import ExperimentConfig


def _pairs(i: int) -> list[Pair]:
    """Chinese with numbers, a URL and Latin names; English with capitals (truecasing);
    sides that tokenize to punctuation or to nothing."""
    return [
        Pair(f"我们明天{i}点在北京见面 Alice 说 https://a.cn/{i}", f"好的, John 会去 第{i}次"),
        Pair(f"今天的天气怎么样? It's {i} degrees.", f"Fine. NASA says {i}.5% 下雨 的 可能"),
        Pair(f"Where is John going on {i}/3?", f"He is going to Paris 和 上海 at {i}:30."),
        Pair("……", "!!!"),  # tokenizes to punctuation only
        Pair("", "空"),
    ]


TRAIN = [pair for i in range(12) for pair in _pairs(i)]
VALID = [Pair(f"{p.source} 新" if p.source else "", p.target) for p in _pairs(99)]


def _config(kind: str, *extra: str) -> ExperimentConfig:
    return ExperimentConfig().with_overrides(
        [f"tokenizer.kind={kind}", "tokenizer.sp_vocab_size=260", "vocab.max_size=200", *extra]
    )


KINDS = [
    ("jieba", ()),
    ("jieba", ("tokenizer.placeholders=true", "data.reverse=true")),
    ("jieba+sentencepiece", ("tokenizer.placeholders=true",)),
    ("chars", ("model.copy=true", "train.max_source_length=6", "train.max_target_length=4")),
]


@pytest.mark.parametrize(("kind", "extra"), KINDS)
def test_a_pool_of_workers_tokenizes_as_this_process_does(
    kind: str, extra: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forcing the pool (threshold 1, chunks of 7 pairs): the workers' tokenizers (jieba set
    up in the initializer, sentencepiece rebuilt from its bytes, placeholders) give the same
    tokens and truecase counts, in the same order, as tokenizing in this process."""
    monkeypatch.setattr(prepare, "CHUNK_PAIRS", 7)
    codec = TextCodec.fit(_config(kind, *extra), TRAIN)
    alone = prepare.tokenize_pairs(codec, [TRAIN, VALID], truecase=True, workers=1)
    pooled = prepare.tokenize_pairs(
        codec, [TRAIN, VALID], truecase=True, workers=2, min_pool_pairs=1
    )
    assert (alone.workers, pooled.workers) == (1, 2)
    assert pooled.groups == alone.groups
    assert pooled.groups == [[codec.pair_tokens(p) for p in group] for group in (TRAIN, VALID)]
    assert pooled.truecase == alone.truecase


def test_training_through_the_pool_prepares_the_same_codec_and_examples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prepare, "POOL_MIN_PAIRS", 1)
    used: list[int] = []
    real = prepare._in_pool

    def spy(codec, tasks, workers):  # type: ignore[no-untyped-def]
        used.append(workers)
        return real(codec, tasks, workers)

    monkeypatch.setattr(prepare, "_in_pool", spy)
    config = _config("jieba", "tokenizer.placeholders=true")
    pooled = prepare.prepare_examples(config, TRAIN, VALID, workers=2)
    assert used == [2]
    alone = prepare.prepare_examples(config, TRAIN, VALID, workers=1)
    assert pooled[0].vocab == alone[0].vocab and pooled[0].truecaser == alone[0].truecaser
    assert pooled[1:] == alone[1:]


@pytest.mark.parametrize(("kind", "extra"), [*KINDS, ("words", ("data.task=lm",))])
def test_prepared_examples_are_what_the_codec_fits_and_encodes(
    kind: str, extra: tuple[str, ...]
) -> None:
    """The one-pass path builds the codec `TextCodec.fit` builds and the ids `pair_ids`
    gives (what generation and evaluation use), dropping pairs with an empty side."""
    config = _config(kind, *extra)
    codec, train, valid, _ = prepare.prepare_examples(config, TRAIN, VALID, workers=1)
    fitted = TextCodec.fit(config, TRAIN)
    assert codec.vocab == fitted.vocab and codec.truecaser == fitted.truecaser
    assert codec.token_counts == fitted.token_counts
    for examples, pairs in ((train, TRAIN), (valid, VALID)):
        expected = [(s, t) for s, t in map(codec.pair_ids, pairs) if s and t and t != [2]]
        assert examples == expected
        if config.data.task != "lm":  # an LM's source is always BOS
            assert len(examples) < len(pairs)  # the empty source is dropped


def test_each_text_is_tokenized_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = WordTokenizer.tokenize

    def counted(self: WordTokenizer, text: str) -> list[str]:
        calls.append(text)
        return real(self, text)

    monkeypatch.setattr(WordTokenizer, "tokenize", counted)
    prepare.prepare_examples(_config("words"), TRAIN, VALID, workers=1)
    assert len(calls) == 2 * (len(TRAIN) + len(VALID))


def test_a_resumed_run_keeps_its_vocabulary() -> None:
    config = _config("jieba")
    codec = TextCodec.fit(config, TRAIN[:5])
    vocab = codec.vocab
    same, train, _, _ = prepare.prepare_examples(config, TRAIN, VALID, codec, workers=1)
    assert same is codec and same.vocab is vocab
    assert train == prepare.encode_examples(codec, [codec.pair_tokens(p) for p in TRAIN])


def test_small_corpora_are_tokenized_in_this_process() -> None:
    assert prepare.workers_for(prepare.POOL_MIN_PAIRS - 1, 2) == 1
    assert prepare.workers_for(10, 2, min_pool_pairs=10) == 2
    assert prepare.workers_for(prepare.POOL_MIN_PAIRS, 2) == 2
    assert prepare.workers_for(prepare.POOL_MIN_PAIRS) == prepare.pool_workers() >= 1
    codec = TextCodec.fit(_config("words"), TRAIN)
    assert prepare.tokenize_pairs(codec, [TRAIN, VALID], workers=2).workers == 1


def test_equal_tokens_share_one_string() -> None:
    codec = TextCodec.fit(_config("words"), TRAIN)
    sources = [source for source, _ in prepare.tokenize_pairs(codec, [TRAIN]).groups[0]]
    firsts = [tokens[0] for tokens in sources if tokens and tokens[0] == "where"]
    assert len(firsts) > 1 and all(token is firsts[0] for token in firsts)
