"""The "sentencepiece" and "jieba+sentencepiece" tokenizers: subword pieces learned in `fit()`.

sentencepiece only splits text here. Its own special ids are switched off (no <s>, </s>, <pad>)
and its unknown symbol is renamed to `SPM_UNK`, so nothing it emits can collide with our
specials; `nlp.tokenizers.vocab.Vocabulary` maps pieces to ids like any other tokens.
sentencepiece's normaliser is set to "identity" because the corpus pipeline already normalises
(NFKC) and pieces must concatenate back to exactly the text that was cut.

Pieces are the tokens ("▁hello", "▁wor", "ld"). A stretch of characters outside the model
(rare characters dropped by character_coverage) comes back as its own text, not as a piece
id, so it survives a round trip; the vocabulary then decides whether it is <unk>.

"jieba+sentencepiece" first cuts the text into words with the jieba tokenizer (Chinese words
by jieba, Latin by the word rules), joins them with spaces and runs sentencepiece over that,
so pieces never cross a word boundary; detokenizing reverses both steps.

With `config.placeholders`, the placeholder tokens of `nlp.text.placeholders` ("phnum1", ...)
are user-defined symbols: always one piece, never cut, so `restore` can find them.

Training is deterministic (one thread, fixed seed) and writes no files: the model comes back
through `model_writer` as bytes, kept in memory and written by `save()`.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm

from nlp.text.placeholders import placeholder_tokens
from nlp.tokenizers.base import SP_SPACE, clean_text
from nlp.tokenizers.detokenize import spaced_unless_chinese
from nlp.tokenizers.words import MARKER_PATTERN, WordTokenizer
from nlp.util.config import TokenizerConfig

logger = logging.getLogger(__name__)

MODEL_FILE = "spm.model"
SPM_UNK = "<spm-unk>"  # sentencepiece's own unknown piece; never one of our specials
MODEL_TYPES = ("unigram", "bpe")
_SEED = 1234
_MAX_TRAINING_SENTENCES = 2_000_000  # sampled reproducibly (seeded) beyond this
_MARKER_RE = re.compile(MARKER_PATTERN)
_MARKER_SPLIT_RE = re.compile(f"({MARKER_PATTERN})")
_TOO_HIGH_RE = re.compile(r"Vocabulary size too high \(\d+\)\. Please set it to a value <= (\d+)")


class SentencePieceTokenizer:
    """Subword tokenizer; optionally cuts words first with a word tokenizer (jieba)."""

    def __init__(self, config: TokenizerConfig, words: WordTokenizer | None = None) -> None:
        if config.sp_model_type not in MODEL_TYPES:
            raise ValueError(
                f"tokenizer.sp_model_type must be one of {MODEL_TYPES}, "
                f"got {config.sp_model_type!r}"
            )
        if config.sp_vocab_size < 2:
            raise ValueError(f"tokenizer.sp_vocab_size must be >= 2, got {config.sp_vocab_size}")
        if not 0.0 < config.sp_character_coverage <= 1.0:
            raise ValueError(
                "tokenizer.sp_character_coverage must be in (0, 1], "
                f"got {config.sp_character_coverage}"
            )
        self.config = config
        self.words = words
        self.name = f"{words.name}+sentencepiece" if words else "sentencepiece"
        self._model: bytes | None = None
        self._processor: spm.SentencePieceProcessor | None = None

    @property
    def model_bytes(self) -> bytes:
        """The serialized sentencepiece model (what `save()` writes)."""
        if self._model is None:
            raise self._untrained()
        return self._model

    def fit(self, texts: Iterable[str]) -> None:
        """Train sentencepiece on the texts, shrinking the vocabulary if the corpus is small
        (the reserved markers left out: they are whole tokens, never pieces)."""
        sentences = [stripped for text in texts
                     if (stripped := " ".join(_MARKER_RE.sub(" ", self._prepare(text)).split()))]
        if not sentences:
            raise ValueError(f"cannot train the {self.name} tokenizer: no non-empty texts")
        self._use_model(_train(sentences, self.config))

    def tokenize(self, text: str) -> list[str]:
        """Sentencepiece's pieces, a reserved marker (the turn separator `__eot__`, a
        specificity marker) one whole token as in every tokenizer kind: cut into pieces, the
        model never saw its marker and retrieval never found a turn."""
        prepared = self._prepare(text)
        if not prepared:
            return []
        processor = self._require_processor()
        tokens: list[str] = []
        for index, part in enumerate(_MARKER_SPLIT_RE.split(prepared)):
            if index % 2:
                tokens.append(part)
            elif part.strip():
                tokens.extend(processor.encode(part.strip(), out_type=str))
        return tokens

    def detokenize(self, tokens: Sequence[str]) -> str:
        """Undo sentencepiece's space escaping, then (with a word step) re-join the words.

        This is what sentencepiece's decoder does for our settings (identity normaliser, no
        byte fallback), done by hand because its decoder garbles pieces it does not know
        (returns them with the "▁" marks left in): our "<unk>" and the out-of-model character
        stretches that `tokenize` keeps as text.
        """
        spaced = (f" {token} " if _MARKER_RE.fullmatch(token) else token for token in tokens)
        text = " ".join("".join(spaced).replace(SP_SPACE, " ").split())
        if self.words is None:
            return text
        return self.words.detokenize(text.split())

    def spaced(self, left: str, right: str) -> bool:
        """Whether the text has a space between `left` and `right`: the word step's rule, by
        which `detokenize` re-joins the words; without one the text keeps the spaces it was
        given, and only a space beside Chinese is not written (`spaced_unless_chinese`)."""
        if self.words is not None:
            return self.words.spaced(left, right)
        return spaced_unless_chinese(left, right)

    def save(self, directory: Path) -> None:
        """Write the model as `directory/spm.model` (creating the directory)."""
        model = self.model_bytes
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_bytes(model)

    def load(self, directory: Path) -> None:
        """Read `directory/spm.model`, checking it is a model this project trained."""
        path = directory / MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: sentencepiece model not found")
        try:
            self._use_model(path.read_bytes())
        except (OSError, RuntimeError, ValueError) as exc:
            raise ValueError(f"{path}: not a usable sentencepiece model: {exc}") from exc

    def __getstate__(self) -> dict[str, Any]:
        """The tokenizer without its sentencepiece processor (a C++ object that cannot be
        pickled): training sends its tokenizer to worker processes (`nlp.training.prepare`),
        which rebuild the processor from the model bytes in `__setstate__`."""
        return {**self.__dict__, "_processor": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._model is not None:
            self._use_model(self._model)

    def _prepare(self, text: str) -> str:
        if self.words is not None:
            return " ".join(self.words.tokenize(text))
        return clean_text(text, self.config.lowercase)

    def _use_model(self, model: bytes) -> None:
        processor = spm.SentencePieceProcessor()
        processor.LoadFromSerializedProto(model)
        unk = processor.unk_id()
        if (
            processor.id_to_piece(unk) != SPM_UNK
            or max(processor.bos_id(), processor.eos_id(), processor.pad_id()) >= 0
        ):
            raise ValueError(f"model uses sentencepiece's own specials (expected only {SPM_UNK!r})")
        self._model, self._processor = model, processor

    def _require_processor(self) -> spm.SentencePieceProcessor:
        if self._processor is None:
            raise self._untrained()
        return self._processor

    def _untrained(self) -> RuntimeError:
        return RuntimeError(
            f"the {self.name} tokenizer has no model yet: call fit() or load_tokenizer()"
        )


def _train(sentences: list[str], config: TokenizerConfig) -> bytes:
    """Run the sentencepiece trainer in memory; retry once with the size the data allows.

    A small corpus cannot fill a large vocabulary (sentencepiece refuses and names the largest
    size it can do); retraining at that size beats failing a whole training run over it.
    """
    try:
        return _train_once(sentences, config, config.sp_vocab_size)
    except ValueError as exc:
        too_high = _TOO_HIGH_RE.search(str(exc))
        if too_high is None:
            raise
    smaller = int(too_high.group(1))
    logger.warning(
        "tokenizer.sp_vocab_size=%d is too large for this corpus (%d sentences); "
        "training sentencepiece with %d pieces instead",
        config.sp_vocab_size,
        len(sentences),
        smaller,
    )
    return _train_once(sentences, config, smaller)


def _train_once(sentences: list[str], config: TokenizerConfig, vocab_size: int) -> bytes:
    model = io.BytesIO()
    extra: dict[str, Any] = {}
    if config.placeholders:
        extra["user_defined_symbols"] = placeholder_tokens()
    spm.set_random_generator_seed(_SEED)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            model_type=config.sp_model_type,
            vocab_size=vocab_size,
            character_coverage=config.sp_character_coverage,
            normalization_rule_name="identity",
            unk_id=0,
            unk_piece=SPM_UNK,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            num_threads=1,
            input_sentence_size=_MAX_TRAINING_SENTENCES,
            shuffle_input_sentence=True,
            max_sentence_length=1 << 16,
            minloglevel=2,
            **extra,
        )
    except RuntimeError as exc:
        raise ValueError(f"sentencepiece training failed: {exc}") from exc
    return model.getvalue()
