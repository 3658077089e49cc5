"""Tokenizers, picked by name from `TokenizerConfig.kind`.

    words               English-style words, whole numbers, punctuation; Han one char a token
    chars               Han one char a token, Latin words whole; with tokenizer.latin_chars,
                        every character a token (character-level translation)
    jieba               Chinese words by jieba; Latin, numbers, punctuation as in "words"
    sentencepiece       subword pieces (unigram or BPE) trained in fit()
    jieba+sentencepiece jieba words first, then sentencepiece pieces inside each word

Adding a kind means adding one entry to `_BUILDERS`; nothing else in the project branches on
the kind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nlp.tokenizers.base import Tokenizer, clean_text
from nlp.tokenizers.chars import CharTokenizer
from nlp.tokenizers.chinese import JiebaTokenizer
from nlp.tokenizers.detokenize import detokenize
from nlp.tokenizers.subword import SentencePieceTokenizer
from nlp.tokenizers.words import WordTokenizer
from nlp.util.config import TokenizerConfig

__all__ = [
    "TOKENIZER_KINDS",
    "CharTokenizer",
    "JiebaTokenizer",
    "SentencePieceTokenizer",
    "Tokenizer",
    "WordTokenizer",
    "build_tokenizer",
    "clean_text",
    "detokenize",
    "load_tokenizer",
]

_BUILDERS: dict[str, Callable[[TokenizerConfig], Tokenizer]] = {
    "words": lambda config: WordTokenizer(config.lowercase),
    "jieba": lambda config: JiebaTokenizer(config.lowercase),
    "chars": lambda config: CharTokenizer(
        config.lowercase, latin_chars=config.latin_chars, placeholders=config.placeholders
    ),
    "sentencepiece": lambda config: SentencePieceTokenizer(config),
    "jieba+sentencepiece": lambda config: SentencePieceTokenizer(
        config, words=JiebaTokenizer(config.lowercase)
    ),
}
TOKENIZER_KINDS: tuple[str, ...] = tuple(_BUILDERS)


def build_tokenizer(config: TokenizerConfig) -> Tokenizer:
    """A fresh tokenizer of `config.kind` (sentencepiece kinds still need `fit()`)."""
    if config.latin_chars and config.kind != "chars":
        raise ValueError(
            f"tokenizer.latin_chars=true needs tokenizer.kind=chars, not {config.kind!r}"
        )
    try:
        builder = _BUILDERS[config.kind]
    except KeyError:
        raise ValueError(
            f"unknown tokenizer.kind {config.kind!r}; choose one of {', '.join(TOKENIZER_KINDS)}"
        ) from None
    return builder(config)


def load_tokenizer(config: TokenizerConfig, directory: Path) -> Tokenizer:
    """The tokenizer that `save(directory)` wrote (a bundle's `tokenizer/` directory).

    Raises FileNotFoundError or ValueError naming the missing or unusable file, for example
    `.../tokenizer/spm.model`. Rule-based kinds need no files and ignore the directory.
    """
    tokenizer = build_tokenizer(config)
    if isinstance(tokenizer, SentencePieceTokenizer):
        tokenizer.load(directory)
    return tokenizer
