"""Tokenizers: round trips per kind, canonical spacing, special-token injection, sentencepiece
training/saving/loading. Sentencepiece models are trained on a small corpus generated here."""

from __future__ import annotations

import logging
import pickle
import random
import tempfile
from pathlib import Path

import pytest
import sentencepiece as spm

from nlp.corpus.records import Pair
from nlp.text.normalize import normalize_text
from nlp.tokenizers import (
    TOKENIZER_KINDS,
    SentencePieceTokenizer,
    Tokenizer,
    build_tokenizer,
    clean_text,
    load_tokenizer,
)
from nlp.tokenizers.chinese import jieba_segmenter
from nlp.tokenizers.specials import SPECIAL_TOKENS
from nlp.tokenizers.subword import MODEL_FILE, SPM_UNK
from nlp.util.config import TokenizerConfig
from tests.conftest import REPO

try:
    import hypothesis
    from hypothesis import strategies
except ImportError:  # optional dev dependency
    hypothesis = None  # type: ignore[assignment]

ENGLISH = [
    "Hello, world!",
    "I don't know what you're talking about.",
    "It costs $3.50, not 2,000 dollars.",
    "The rate rose 37.5% in 2015 (a record).",
    'She said "hi" and left.',
    "Well-known e-mail addresses like bob@example.com work.",
    "Visit https://example.com/a?b=1 today!",
    "Wait... what?!",
    "We meet at 10:30 a.m. tomorrow; can't you come?",
    "The dogs' bones are in the U.S.",
    "It's -5 degrees at 5 o'clock.",
    "I'm sure [see page 3] that they'll win.",
]
CHINESE = [
    "我爱北京天安门。",
    "今天天气很好,我们去公园吧!",
    "他说:“你好”。",
    "价格是3.14元,涨了37.5%。",
    "2015年3月14日,林志颖公司疑涉虚假营销。",
    "签证;2“整容客”可以网上申请,增长12.6%。",
]
MIXED = [
    "我爱 Python 编程",
    "这是 GPT-4 模型,效果很好。",
    "你好,Python!",
    "我在 https://example.com 上看到的。",
    "他说 hello world 然后走了",
    # English naming a Chinese place: its sentence goes on after the point ("北京.it" before)
    "I love 北京. It is great!",
    "你好!Python 很好",  # "！" before NFKC: no space after it
]
ROUND_TRIPS = ENGLISH + CHINESE + MIXED

# Text not written in canonical spacing comes back canonical (words, jieba and jieba+sp).
CANONICAL = [
    ("hello , world !", "hello, world!"),
    ("( a )", "(a)"),
    ("Do n't worry", "don't worry"),
    ("3 . 14", "3. 14"),  # written apart, kept apart: never produced from "3.14"
    ("我爱Python编程", "我爱 python 编程"),
    ("你好 世界", "你好世界"),
    ("  many \t spaces\nhere ", "many spaces here"),
    ("a __eot__ 你好 __eot__ b", "a __eot__ 你好 __eot__ b"),
]
INJECTION = "hi <s> there </s> <pad> <unk> <S> <</s>/s> <<unk>pad>"


def _corpus() -> list[str]:
    """A few hundred short English and Chinese sentences, the same on every run."""
    rng = random.Random(7)
    subjects = ["the cat", "my friend", "the old man", "a small dog", "our teacher", "she", "they"]
    verbs = ["likes", "doesn't like", "wants", "found", "saw", "is reading", "bought", "can't see"]
    objects = ["the red book", "3.14 apples", "2,000 dollars", "a phone", "the house", "coffee"]
    zh_subjects = ["我", "他", "我们", "老师", "朋友", "今天"]
    zh_verbs = ["喜欢", "不想", "买了", "看到", "学习", "天气很好"]
    zh_objects = ["北京", "新手机", "中文", "Python 编程", "3个苹果", "咖啡", "公园"]
    texts = []
    for _ in range(200):
        subject, verb, obj = rng.choice(subjects), rng.choice(verbs), rng.choice(objects)
        texts.append(f"{subject.capitalize()} {verb} {obj}{rng.choice('.!?')}")
        texts.append(f"{rng.choice(zh_subjects)}{rng.choice(zh_verbs)}{rng.choice(zh_objects)}。")
    return texts + ROUND_TRIPS


CORPUS = _corpus()
_trained: dict[tuple[str, str], Tokenizer] = {}


def make(kind: str, model_type: str = "unigram", **overrides: object) -> Tokenizer:
    """A ready tokenizer of this kind; sentencepiece kinds are trained once per test session."""
    config = TokenizerConfig(kind=kind, sp_model_type=model_type, sp_vocab_size=300, **overrides)  # type: ignore[arg-type]
    tokenizer = build_tokenizer(config)
    if not isinstance(tokenizer, SentencePieceTokenizer):
        return tokenizer
    if overrides:
        tokenizer.fit(CORPUS)
        return tokenizer
    key = (kind, model_type)
    if key not in _trained:
        tokenizer.fit(CORPUS)
        _trained[key] = tokenizer
    return _trained[key]


KINDS = [
    pytest.param(("words", "unigram"), id="words"),
    pytest.param(("jieba", "unigram"), id="jieba"),
    pytest.param(("chars", "unigram"), id="chars"),
    pytest.param(("sentencepiece", "unigram"), id="sp-unigram"),
    pytest.param(("sentencepiece", "bpe"), id="sp-bpe"),
    pytest.param(("jieba+sentencepiece", "unigram"), id="jieba-sp-unigram"),
    pytest.param(("jieba+sentencepiece", "bpe"), id="jieba-sp-bpe"),
]
WORD_LEVEL = ["words", "chars", "jieba", "jieba+sentencepiece"]


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_of_natural_text(kind: tuple[str, str]) -> None:
    tokenizer = make(*kind)
    for text in ROUND_TRIPS:
        tokens = tokenizer.tokenize(text)
        assert tokenizer.detokenize(tokens) == clean_text(text, lowercase=True), tokens


@pytest.mark.parametrize("kind", KINDS)
def test_tokens_are_never_whitespace_or_specials(kind: tuple[str, str]) -> None:
    tokenizer = make(*kind)
    for text in [*ROUND_TRIPS, INJECTION, " \t\n", ""]:
        for token in tokenizer.tokenize(text):
            assert token and token == token.strip() and not any(c.isspace() for c in token)
            assert token not in SPECIAL_TOKENS
    assert "<" not in tokenizer.detokenize(tokenizer.tokenize("<s> </s>"))


@pytest.mark.parametrize("kind", KINDS)
def test_user_text_cannot_inject_control_tokens(kind: tuple[str, str]) -> None:
    tokenizer = make(*kind)
    text = tokenizer.detokenize(tokenizer.tokenize(INJECTION))
    assert not any(special in text for special in SPECIAL_TOKENS), text
    assert text.split()[:2] == ["hi", "there"]


@pytest.mark.parametrize("kind", WORD_LEVEL)
@pytest.mark.parametrize(("text", "expected"), CANONICAL)
def test_word_level_kinds_give_canonical_spacing(kind: str, text: str, expected: str) -> None:
    tokenizer = make(kind)
    assert tokenizer.detokenize(tokenizer.tokenize(text)) == expected


@pytest.mark.parametrize(("text", "tokens"), [
    ("I don't know.", ["i", "do", "n't", "know", "."]),
    ("Pi is 3.14, or 2,000 / 637 = 37.5%!", ["pi", "is", "3.14", ",", "or", "2,000", "/", "637",
                                             "=", "37.5%", "!"]),
    ("(-5) well-known e.g. C++", ["(", "-5", ")", "well-known", "e.g.", "c++"]),
    ("Wait...", ["wait", "..."]),
    ("我爱 Python", ["我", "爱", "python"]),
])  # fmt: skip
def test_words_tokenizer_choices(text: str, tokens: list[str]) -> None:
    assert make("words").tokenize(text) == tokens


@pytest.mark.parametrize("kind", KINDS)
def test_a_reserved_marker_is_one_token_in_every_kind(kind: tuple[str, str]) -> None:
    """The sentencepiece kinds cut "__eot__" and "__spec7__" into pieces: a model trained on
    a specificity marker never read it, and retrieval never found a turn."""
    tokenizer = make(*kind)
    tokens = tokenizer.tokenize("how are you __eot__ fine thanks __spec7__")
    assert "__eot__" in tokens and "__spec7__" in tokens
    assert tokenizer.detokenize(tokens) == "how are you __eot__ fine thanks __spec7__"


@pytest.mark.parametrize("kind", ["words", "jieba", "chars"])
def test_emoji_cut_into_code_points_come_back_whole(kind: str) -> None:
    """A flag, a skin tone and a family are cut into their code points; written apart they
    showed as their parts ("🇨 🇳", "👍 🏻")."""
    tokenizer = make(kind)
    family = "👨\u200d👩\u200d👧"
    for text in (f"i love 🇨🇳 and 👍🏻, {family} and 1\ufe0f\u20e3 😂😂 🙂 🙂", "我爱🇨🇳👍🏻"):
        tokens = tokenizer.tokenize(normalize_text(text))
        assert "🇳" in tokens and "🏻" in tokens
        assert tokenizer.detokenize(tokens) == text


def test_jieba_cuts_words_and_keeps_latin_rules() -> None:
    tokens = make("jieba").tokenize("北京天安门,价格3.14元,我用Python")
    assert tokens == ["北京", "天安门", ",", "价格", "3.14", "元", ",", "我用", "python"]


def test_lowercase_is_optional() -> None:
    for kind in ("words", "jieba"):
        tokenizer = build_tokenizer(TokenizerConfig(kind=kind, lowercase=False))
        text = "I Don't like GPT-4 模型"
        assert tokenizer.detokenize(tokenizer.tokenize(text)) == text
    cased = make("sentencepiece", lowercase=False)
    assert cased.detokenize(cased.tokenize("Hello World")) == "Hello World"


def test_jieba_is_private_quiet_and_caches_outside_the_repo() -> None:
    segmenter = jieba_segmenter()
    assert segmenter is jieba_segmenter()
    assert segmenter.tmp_dir == tempfile.gettempdir()
    assert logging.getLogger("jieba").level >= logging.WARNING
    assert not list(REPO.glob("jieba*.cache"))


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
@pytest.mark.parametrize("kind", ["sentencepiece", "jieba+sentencepiece"])
def test_sentencepiece_save_load_gives_identical_tokens(
    kind: str, model_type: str, tmp_path: Path
) -> None:
    tokenizer = make(kind, model_type)
    tokenizer.save(tmp_path / "tokenizer")
    assert (tmp_path / "tokenizer" / MODEL_FILE).is_file()
    config = TokenizerConfig(kind=kind, sp_model_type=model_type)
    loaded = load_tokenizer(config, tmp_path / "tokenizer")
    assert loaded.name == kind
    for text in ROUND_TRIPS:
        assert loaded.tokenize(text) == tokenizer.tokenize(text)


@pytest.mark.parametrize("kind", ["sentencepiece", "jieba+sentencepiece"])
def test_sentencepiece_pickles_for_worker_processes(kind: str) -> None:
    """Training's tokenizing workers receive the tokenizer pickled (nlp.training.prepare)."""
    tokenizer = make(kind)
    copy = pickle.loads(pickle.dumps(tokenizer))
    for text in ROUND_TRIPS:
        assert copy.tokenize(text) == tokenizer.tokenize(text)
    untrained = pickle.loads(pickle.dumps(build_tokenizer(TokenizerConfig(kind=kind))))
    with pytest.raises(RuntimeError, match="no model yet"):
        untrained.tokenize("hello")


def test_sentencepiece_training_is_deterministic() -> None:
    first = make("sentencepiece", "unigram")
    assert isinstance(first, SentencePieceTokenizer)
    again = build_tokenizer(TokenizerConfig(kind="sentencepiece", sp_vocab_size=300))
    again.fit(CORPUS)
    assert isinstance(again, SentencePieceTokenizer)
    assert again.model_bytes == first.model_bytes


def test_sentencepiece_shrinks_a_vocabulary_too_large_for_the_corpus(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tokenizer = build_tokenizer(TokenizerConfig(kind="sentencepiece", sp_vocab_size=50_000))
    with caplog.at_level(logging.WARNING, logger="nlp.tokenizers.subword"):
        tokenizer.fit(CORPUS[:50])
    assert "too large for this corpus" in caplog.text
    assert tokenizer.detokenize(tokenizer.tokenize(CORPUS[0])) == clean_text(CORPUS[0], True)


@pytest.mark.parametrize("kind", ["sentencepiece", "jieba+sentencepiece"])
def test_sentencepiece_keeps_placeholders_whole(kind: str) -> None:
    tokenizer = make(kind, placeholders=True)
    tokens = tokenizer.tokenize("营收phmoney1增长phpct12,profit phnum3 up")
    assert {"phmoney1", "phpct12", "phnum3"} <= {token.lstrip("▁") for token in tokens}
    assert {"phmoney1", "phpct12"} <= set(tokens)


def test_sentencepiece_has_no_specials_of_its_own() -> None:
    tokenizer = make("sentencepiece")
    assert isinstance(tokenizer, SentencePieceTokenizer)
    processor = spm.SentencePieceProcessor(model_proto=tokenizer.model_bytes)
    pieces = {processor.id_to_piece(i) for i in range(processor.get_piece_size())}
    assert not pieces & set(SPECIAL_TOKENS)
    assert processor.id_to_piece(processor.unk_id()) == SPM_UNK
    assert (processor.bos_id(), processor.eos_id(), processor.pad_id()) == (-1, -1, -1)


def test_sentencepiece_detokenize_agrees_with_its_decoder() -> None:
    tokenizer = make("sentencepiece")
    assert isinstance(tokenizer, SentencePieceTokenizer)
    processor = spm.SentencePieceProcessor(model_proto=tokenizer.model_bytes)
    for text in CORPUS[:50]:
        pieces = tokenizer.tokenize(text)
        assert tokenizer.detokenize(pieces) == processor.decode_pieces(pieces)


def test_sentencepiece_keeps_characters_outside_the_model() -> None:
    for kind in ("sentencepiece", "jieba+sentencepiece"):
        tokenizer = make(kind)
        text = "龘龘 zebra 齉"
        assert tokenizer.detokenize(tokenizer.tokenize(text)) == text
        assert SPM_UNK not in tokenizer.tokenize(text)


def test_untrained_sentencepiece_explains_itself(tmp_path: Path) -> None:
    tokenizer = build_tokenizer(TokenizerConfig(kind="sentencepiece"))
    with pytest.raises(RuntimeError, match="fit"):
        tokenizer.tokenize("hello")
    with pytest.raises(RuntimeError, match="fit"):
        tokenizer.save(tmp_path)
    with pytest.raises(ValueError, match="no non-empty texts"):
        tokenizer.fit(["", "  ", "<s>"])


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    config = TokenizerConfig(kind="sentencepiece")
    directory = tmp_path / "tokenizer"
    with pytest.raises(FileNotFoundError, match=r"tokenizer/spm\.model"):
        load_tokenizer(config, directory)
    directory.mkdir()
    (directory / MODEL_FILE).write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"tokenizer/spm\.model: not a usable"):
        load_tokenizer(config, directory)


def test_load_rejects_a_model_with_sentencepiece_specials(tmp_path: Path) -> None:
    from io import BytesIO

    model = BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_writer=model,
        vocab_size=300,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    (tmp_path / MODEL_FILE).write_bytes(model.getvalue())
    with pytest.raises(ValueError, match="own specials"):
        load_tokenizer(TokenizerConfig(kind="sentencepiece"), tmp_path)


def test_rule_based_kinds_need_no_files(tmp_path: Path) -> None:
    for kind in ("words", "jieba"):
        tokenizer = build_tokenizer(TokenizerConfig(kind=kind))
        tokenizer.fit(["ignored"])
        tokenizer.save(tmp_path)
        assert not list(tmp_path.iterdir())
        assert load_tokenizer(TokenizerConfig(kind=kind), tmp_path / "absent").name == kind


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "bert"}, "unknown tokenizer.kind 'bert'"),
        ({"kind": "sentencepiece", "sp_model_type": "word"}, "sp_model_type"),
        ({"kind": "sentencepiece", "sp_vocab_size": 0}, "sp_vocab_size"),
        ({"kind": "sentencepiece", "sp_character_coverage": 1.5}, "character_coverage"),
    ],
)
def test_bad_configs_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_tokenizer(TokenizerConfig(**overrides))  # type: ignore[arg-type]


def test_registry_builds_every_kind_as_a_tokenizer() -> None:
    for kind in TOKENIZER_KINDS:
        tokenizer = build_tokenizer(TokenizerConfig(kind=kind))
        assert isinstance(tokenizer, Tokenizer)
        assert tokenizer.name == kind


# Property tests: the canonical form is a fixed point, for text from a realistic alphabet and
# for text glued together from tricky fragments. hypothesis is an optional dev dependency;
# without it these tests are skipped.
ALPHABET = "abcXYZ019 .,;:!?'\"()[]$%-/&@#_…“”‘’我爱北京,。、<>/sこ*~="
FRAGMENTS = [
    *("don't", "it's", "'s", "n't", "o'clock", "dogs'", "e.g.", "U.S.", "well-known", "and/or"),
    *("3.14", "37.5%", "2,000", "-5", "10:30", "C++", "C#", "__eot__", "a@b.com"),
    *("http://x.com/a", "www.y.org", "<s>", "</s>", "我爱", "北京", "。", "，", "“", "”"),
    *("$", "(", ")", "[", '"', "'", "’", "...", "!", "?", ",", ".", ":", "-", "—", "_", "%", "#"),
    *("🇨", "🇳", "👍", "🏻", "\u200d", "\ufe0f", "\u20e3"),
]


def _fragment_texts() -> strategies.SearchStrategy[str]:
    pieces = strategies.tuples(
        strategies.sampled_from(FRAGMENTS), strategies.sampled_from(["", " "])
    )
    return strategies.lists(pieces, max_size=12).map(
        lambda parts: "".join(fragment + gap for fragment, gap in parts)
    )


@pytest.mark.skipif(hypothesis is None, reason="hypothesis is not installed")
@pytest.mark.parametrize("source", ["alphabet", "fragments"])
def test_words_canonical_form_is_stable(source: str) -> None:
    tokenizer = make("words")
    texts = strategies.text(ALPHABET, max_size=40) if source == "alphabet" else _fragment_texts()

    @hypothesis.settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @hypothesis.given(texts)
    def check(text: str) -> None:
        tokens = tokenizer.tokenize(text)
        assert not set(tokens) & set(SPECIAL_TOKENS)
        assert all(token and not any(char.isspace() for char in token) for token in tokens)
        canonical = tokenizer.detokenize(tokens)
        assert tokenizer.tokenize(canonical) == tokens
        assert tokenizer.detokenize(tokenizer.tokenize(canonical)) == canonical

    check()


def test_a_jieba_tokenizer_loads_the_dictionary_when_made_not_at_the_first_han_text() -> None:
    """A served Chinese bundle's first message must not wait for jieba's dictionary (the
    bot's warm-up writes to "hello", which jieba never sees)."""
    from nlp.tokenizers.chinese import JiebaTokenizer

    jieba_segmenter.cache_clear()
    JiebaTokenizer()
    assert jieba_segmenter.cache_info().currsize == 1


def test_a_sentencepiece_model_is_measured_in_words() -> None:
    """Embedding similarity (evaluate --metric chat, the tuner's fit) read the model's tokens:
    for sentencepiece "▁good ▁morning !", of which GloVe knows only "!"."""
    from nlp.generation.codec import TextCodec
    from nlp.util.config import ExperimentConfig

    config = ExperimentConfig().with_overrides(["tokenizer.kind=sentencepiece",
                                                "tokenizer.sp_vocab_size=300"])
    codec = TextCodec.untrained(config, [Pair(text, text) for text in CORPUS])
    assert codec.word_tokens("Good morning! Did you sleep well?") == [
        "good", "morning", "!", "did", "you", "sleep", "well", "?"]
    words = TextCodec.untrained(ExperimentConfig(), [Pair(text, text) for text in CORPUS])
    assert words.word_tokens("Good morning!") == words.text_tokens("Good morning!")
