"""`nlp.generation.loading`: what a bundle's vocabulary says about the languages it reads."""

from pathlib import Path

import pytest

from nlp.generation.loading import vocabulary_languages


@pytest.mark.parametrize(
    ("han", "latin", "languages"),
    [(90, 10, ("zh", "en")), (10, 90, ("en", "zh")), (97, 3, ("zh",)), (0, 100, ("en",))],
)
def test_a_vocabulary_reads_its_scripts_the_largest_share_first(
    tmp_path: Path, han: int, latin: int, languages: tuple[str, ...]
) -> None:
    """A Chinese model of TV subtitles reads the English names of their characters too,
    and is still a Chinese model: its main language comes first."""
    tokens = [chr(0x4E00 + i) for i in range(han)] + [f"name{i}" for i in range(latin)]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(tokens), encoding="utf-8")
    assert vocabulary_languages(vocab) == languages
