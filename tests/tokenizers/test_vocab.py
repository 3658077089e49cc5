"""Vocabulary: deterministic ids, limits, encode/decode, extend, and vocab.txt round trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlp.tokenizers.specials import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK, UNK_ID
from nlp.tokenizers.vocab import Vocabulary, VocabularyError

CORPUS = [
    ["the", "cat", "sat"],
    ["the", "dog", "sat"],
    ["a", "cat", "ran", "<unk>"],
    ["the", "end"],
]
# counts: the 3, cat 2, sat 2, a 1, dog 1, end 1, ran 1 (<unk> is a special, not counted)


def test_specials_first_then_frequency_then_alphabetical() -> None:
    vocab = Vocabulary.build(CORPUS, min_freq=1, max_size=100)
    assert vocab.tokens == (*SPECIAL_TOKENS, "the", "cat", "sat", "a", "dog", "end", "ran")
    assert (vocab.id_of("<pad>"), vocab.id_of("<s>"), vocab.id_of("</s>")) == (
        PAD_ID,
        BOS_ID,
        EOS_ID,
    )
    assert vocab.id_of(UNK) == UNK_ID
    assert len(vocab) == 11


def test_build_is_deterministic_whatever_the_input_order() -> None:
    assert Vocabulary.build(CORPUS, 1, 100) == Vocabulary.build(CORPUS[::-1], 1, 100)


def test_min_freq_and_max_size_counting_the_specials() -> None:
    assert Vocabulary.build(CORPUS, min_freq=2, max_size=100).tokens[4:] == ("the", "cat", "sat")
    assert Vocabulary.build(CORPUS, min_freq=1, max_size=6).tokens[4:] == ("the", "cat")
    assert len(Vocabulary.build(CORPUS, min_freq=1, max_size=4)) == 4


@pytest.mark.parametrize(
    ("min_freq", "max_size", "message"),
    [(0, 10, "min_freq"), (1, 3, "max_size")],
)
def test_bad_limits_are_refused(min_freq: int, max_size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Vocabulary.build(CORPUS, min_freq=min_freq, max_size=max_size)


@pytest.mark.parametrize("bad", ["new\nline", "tab\there", "", "cr\r"])
def test_tokens_that_cannot_be_saved_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"empty token|tab or line break"):
        Vocabulary.build([["ok", bad]], 1, 10)


def test_encode_and_decode() -> None:
    vocab = Vocabulary.build(CORPUS, 1, 100)
    ids = vocab.encode(["the", "zebra", "cat"])
    assert ids == [4, UNK_ID, 5]
    assert vocab.decode([BOS_ID, *ids, EOS_ID, 6, PAD_ID]) == ["the", UNK, "cat"]
    assert vocab.decode([4, PAD_ID, 5, PAD_ID]) == ["the", "cat"]
    assert "cat" in vocab and "zebra" not in vocab
    assert vocab.id_of("zebra") == UNK_ID
    assert vocab.token_of(5) == "cat"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.token_of(len(vocab))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocab.decode([4, -1])


def test_extend_appends_without_moving_old_ids() -> None:
    vocab = Vocabulary.build(CORPUS, 1, 8)
    before = vocab.tokens
    added = vocab.extend([["zebra", "yak", "zebra", "the", "yak", "emu"]], min_freq=1, max_new=2)
    assert added == ["yak", "zebra"]
    assert vocab.tokens == (*before, "yak", "zebra")
    assert vocab.extend([["emu", "gnu", "gnu"]], min_freq=2, max_new=10) == ["gnu"]
    assert vocab.extend([["emu"]], min_freq=1, max_new=0) == []


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    vocab = Vocabulary.build([*CORPUS, ["▁piece", "中文", "a b", "#"]], 1, 100)
    path = tmp_path / "vocab.txt"
    vocab.save(path)
    assert path.read_bytes().decode("utf-8").split("\n")[:5] == [*SPECIAL_TOKENS, "the"]
    assert Vocabulary.load(path) == vocab


def test_load_tolerates_crlf_and_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes("\ufeff<pad>\r\n<s>\r\n</s>\r\n<unk>\r\nhello\r\n".encode())
    assert Vocabulary.load(path).tokens[-1] == "hello"


@pytest.mark.parametrize(
    ("lines", "where", "message"),
    [
        (["<pad>", "<s>", "</s>", "<unk>", "a", "b", "a"], ":7:", "duplicate token 'a' .*line 5"),
        (["<pad>", "<s>", "</s>", "<unk>", "a", "", "b"], ":6:", "empty token"),
        (["<pad>", "</s>", "<s>", "<unk>"], ":2:", "expected special token '<s>' \\(id 1\\)"),
        (["<pad>", "<s>", "</s>", "<unk>", "a", "<s>"], ":6:", "duplicate token '<s>'"),
        (["<pad>", "<s>"], ": ", "only 2 tokens"),
        (["<pad>", "<s>", "</s>", "<unk>", "a\tb"], ":5:", "tab or line break"),
    ],
)
def test_load_errors_name_file_and_line(
    tmp_path: Path, lines: list[str], where: str, message: str
) -> None:
    path = tmp_path / "vocab.txt"
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    with pytest.raises(VocabularyError, match=f"vocab\\.txt{where}.*{message}"):
        Vocabulary.load(path)


def test_load_errors_for_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"absent\.txt"):
        Vocabulary.load(tmp_path / "absent.txt")
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"<pad>\n\xff\xfe\n")
    with pytest.raises(VocabularyError, match="not UTF-8"):
        Vocabulary.load(path)


def test_constructor_validates_like_load() -> None:
    with pytest.raises(ValueError, match="expected special token"):
        Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary([*SPECIAL_TOKENS, "x", "x"])
