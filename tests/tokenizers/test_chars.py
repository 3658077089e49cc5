"""The "chars" tokenizer: round trips (Chinese, English, mixed, numbers), placeholders through
the codec, the latin_chars switch for character-level translation, vocabulary and training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp.corpus.records import Pair
from nlp.generation.codec import TextCodec
from nlp.text.normalize import normalize_text
from nlp.tokenizers import build_tokenizer, clean_text
from nlp.tokenizers.base import SP_SPACE
from nlp.tokenizers.vocab import Vocabulary
from nlp.util.config import ExperimentConfig, TokenizerConfig
from s2s.cli import main
from tests.conftest import REPO, tiny_overrides

TEXTS = [
    "我爱北京天安门。",
    "Hello, world! I don't know.",
    "我爱 Python 编程,效果很好。",
    "价格是3.14元,涨了37.5%。",
    "2015年3月14日,GDP 增长6.9%",
    "It costs $3.50, not 2,000 dollars.",
]


def chars(**settings: object) -> TokenizerConfig:
    return TokenizerConfig(kind="chars", **settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("latin_chars", [False, True])
@pytest.mark.parametrize("text", TEXTS)
def test_round_trip(text: str, latin_chars: bool) -> None:
    tokenizer = build_tokenizer(chars(latin_chars=latin_chars, lowercase=False))
    tokens = tokenizer.tokenize(text)
    assert tokenizer.detokenize(tokens) == clean_text(text, lowercase=False), tokens
    assert all(token and not token.isspace() for token in tokens)


def test_han_one_character_a_token_latin_words_and_numbers_whole() -> None:
    tokenizer = build_tokenizer(chars())
    assert tokenizer.tokenize("我用Python算出3.14元!") == [
        "我", "用", "python", "算", "出", "3.14", "元", "!",
    ]  # fmt: skip


def test_latin_chars_splits_every_character_and_keeps_spaces_as_a_token() -> None:
    tokenizer = build_tokenizer(chars(latin_chars=True))
    assert tokenizer.tokenize("Hi, Tom 2!") == ["h", "i", ",", SP_SPACE, "t", "o", "m", SP_SPACE,
                                                "2", "!"]  # fmt: skip
    assert tokenizer.tokenize("a __eot__ b") == ["a", SP_SPACE, "__eot__", SP_SPACE, "b"]
    # Model output with stray space tokens still reads naturally.
    assert tokenizer.detokenize([SP_SPACE, "h", "i", SP_SPACE, SP_SPACE, "我", SP_SPACE]) == "hi 我"


def test_latin_chars_needs_the_chars_kind() -> None:
    with pytest.raises(ValueError, match="latin_chars"):
        build_tokenizer(TokenizerConfig(kind="words", latin_chars=True))


@pytest.mark.parametrize("latin_chars", [False, True])
def test_placeholders_stay_whole_and_are_restored(latin_chars: bool) -> None:
    config = ExperimentConfig().with_overrides(
        [
            "tokenizer.kind=chars",
            "tokenizer.placeholders=true",
            f"tokenizer.latin_chars={latin_chars}",
        ]
    )
    pair = Pair("苹果发布 iPhone 15,售价5999元,增长37.5%。", "iPhone售价5999元")
    codec = TextCodec.fit(config, [pair])
    source = codec.source(pair.source)
    assert "phlat1" in source.tokens and "phmoney1" in source.tokens
    # Restored from the source's slots, so even the case of "iPhone" survives lowercasing.
    assert codec.text(source.tokens, source) == normalize_text(pair.source)
    # A placeholder shaped string in plain Latin text is split when placeholders are off.
    plain = build_tokenizer(chars(latin_chars=True))
    assert "phnum1" not in plain.tokenize("phnum1 here")


def test_vocabulary_of_characters() -> None:
    tokenizer = build_tokenizer(chars(latin_chars=True))
    vocab = Vocabulary.build((tokenizer.tokenize(t) for t in TEXTS), min_freq=1, max_size=500)
    assert SP_SPACE in vocab and "我" in vocab and "h" in vocab
    assert all(len(token) == 1 for token in list(vocab)[4:])
    ids = vocab.encode(tokenizer.tokenize("我爱 hello"))
    assert tokenizer.detokenize(vocab.decode(ids)) == "我爱 hello"


@pytest.mark.slow
def test_tiny_training_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tiny_overrides(**{"tokenizer.kind": "chars", "data.task": "headline"})
    argv = ["train", "--corpus", str(REPO / "corpora" / "headlines-zh.jsonl")]
    argv += ["--out", str(tmp_path / "run"), "--quiet"]
    for setting in settings:
        argv += ["--set", setting]
    assert main(argv) == 0
    bundle = tmp_path / "run" / "model"
    config = json.loads((bundle / "config.json").read_text("utf-8"))
    assert config["tokenizer"]["kind"] == "chars"
    vocab = (bundle / "vocab.txt").read_text("utf-8").split("\n")
    han = [token for token in vocab if token and "\u4e00" <= token[0] <= "\u9fff"]
    assert han and all(len(token) == 1 for token in han)
    capsys.readouterr()
