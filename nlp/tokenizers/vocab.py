"""The one joint vocabulary: tokens <-> ids, shared by source and target.

Ids are fixed for the specials (pad 0, bos 1, eos 2, unk 3, from `nlp.tokenizers.specials`), then
come tokens by descending frequency, ties broken by code-point order of the token, so the same
corpus always gives the same ids on any machine. `extend()` only appends, so a model
retrained with `--extend-vocab` keeps the meaning of every id it already has.

On disk (`vocab.txt`) a vocabulary is UTF-8 text, one token per line, line N holding id N-1.
Tokens therefore cannot be empty or contain line or tab characters; `build()` and `extend()`
reject such tokens (a tokenizer bug) instead of writing a file that would load shifted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from nlp.tokenizers.specials import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID

_SKIPPED_ON_DECODE = frozenset({PAD_ID, BOS_ID})
_FORBIDDEN_CHARS = frozenset("\n\r\t\v\f\x1c\x1d\x1e\x85\u2028\u2029")


class VocabularyError(ValueError):
    """A vocab.txt that cannot be loaded; str() is "path:line: reason" (line 0: whole file)."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: {reason}" if line else f"{path}: {reason}")


class Vocabulary:
    """Token <-> id mapping with fixed special ids."""

    def __init__(self, tokens: Iterable[str] = SPECIAL_TOKENS) -> None:
        """Take tokens in id order; the first four must be the specials in order."""
        self._tokens: list[str] = list(tokens)
        problem = _first_problem(self._tokens)
        if problem is not None:
            raise ValueError(f"id {problem[0]}: {problem[1]}")
        self._ids: dict[str, int] = {token: index for index, token in enumerate(self._tokens)}

    @classmethod
    def build(
        cls, token_lists: Iterable[Sequence[str]], min_freq: int = 1, max_size: int = 8000
    ) -> Vocabulary:
        """Specials, then tokens seen at least `min_freq` times, most frequent first.

        `max_size` counts the four specials. Special strings inside the token lists are not
        counted (they already have their ids).
        """
        return cls.from_counts(_counts(token_lists), min_freq, max_size)

    @classmethod
    def from_counts(
        cls, counts: Counter[str], min_freq: int = 1, max_size: int = 8000
    ) -> Vocabulary:
        """`build` from token counts already made (the codec keeps them for coverage figures)."""
        if max_size < len(SPECIAL_TOKENS):
            raise ValueError(f"max_size must be >= {len(SPECIAL_TOKENS)} (the specials)")
        vocabulary = cls()
        vocabulary.extend_counts(counts, min_freq, max_size - len(SPECIAL_TOKENS))
        return vocabulary

    def extend(
        self, token_lists: Iterable[Sequence[str]], min_freq: int, max_new: int
    ) -> list[str]:
        """Append up to `max_new` unseen tokens (same order as `build`); return them.

        Existing ids never change, so embeddings trained for them stay valid.
        """
        return self.extend_counts(_counts(token_lists), min_freq, max_new)

    def extend_counts(self, counts: Counter[str], min_freq: int, max_new: int) -> list[str]:
        """`extend` from token counts."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_new < 0:
            raise ValueError(f"max_new must be >= 0, got {max_new}")
        for token in counts:
            reason = _token_problem(token)
            if reason is not None:
                raise ValueError(f"cannot add to a vocabulary: {reason}")
        candidates = [(t, n) for t, n in counts.items() if n >= min_freq and t not in self._ids]
        candidates.sort(key=lambda item: (-item[1], item[0]))
        added = [token for token, _ in candidates[:max_new]]
        for token in added:
            self._ids[token] = len(self._tokens)
            self._tokens.append(token)
        return added

    @property
    def tokens(self) -> tuple[str, ...]:
        """All tokens in id order."""
        return tuple(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._tokens == other._tokens

    __hash__ = None  # type: ignore[assignment]  # mutable (extend)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    def id_of(self, token: str) -> int:
        """The token's id, UNK_ID when it is not in the vocabulary (as `encode`)."""
        return self._ids.get(token, UNK_ID)

    def token_of(self, token_id: int) -> str:
        """The token with this id; ValueError for an id outside the vocabulary."""
        index = int(token_id)
        if not 0 <= index < len(self._tokens):
            raise ValueError(f"id {index} is outside the vocabulary (size {len(self._tokens)})")
        return self._tokens[index]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Ids of the tokens; unknown tokens become UNK_ID. Adds no BOS/EOS."""
        return [self._ids.get(token, UNK_ID) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of the ids up to the first EOS, without PAD and BOS; UNK gives "<unk>"."""
        tokens: list[str] = []
        for token_id in ids:
            index = int(token_id)
            if index == EOS_ID:
                break
            if index not in _SKIPPED_ON_DECODE:
                tokens.append(self.token_of(index))
        return tokens

    def save(self, path: Path) -> None:
        """Write vocab.txt: UTF-8, one token per line, "\\n" line ends on every platform."""
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(f"{token}\n" for token in self._tokens)

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        """Read vocab.txt; VocabularyError names the file and line of any problem."""
        try:
            text = path.read_bytes().decode("utf-8-sig")  # tolerate an editor's BOM
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: vocabulary file not found") from None
        except UnicodeDecodeError as exc:
            raise VocabularyError(path, 0, f"not UTF-8 text ({exc.reason})") from exc
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()  # the final line end
        lines = [line.removesuffix("\r") for line in lines]  # tolerate CRLF
        problem = _first_problem(lines)
        if problem is not None:
            index, reason = problem
            raise VocabularyError(path, index + 1 if index < len(lines) else 0, reason)
        return cls(lines)


def _token_problem(token: object) -> str | None:
    """Why this cannot be a vocabulary token, or None if it can."""
    if not isinstance(token, str):
        return f"tokens must be strings, got {type(token).__name__}"
    if not token:
        return "empty token (a blank line in vocab.txt)"
    if _FORBIDDEN_CHARS.intersection(token):
        return f"token {token!r} contains a tab or line break (vocab.txt: one token per line)"
    return None


def _first_problem(tokens: Sequence[str]) -> tuple[int, str] | None:
    """(id, reason) of the first entry that breaks the vocabulary's rules, or None."""
    specials = len(SPECIAL_TOKENS)
    seen: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if index < specials and token != SPECIAL_TOKENS[index]:
            return index, (
                f"expected special token {SPECIAL_TOKENS[index]!r} (id {index}), found {token!r}"
            )
        reason = _token_problem(token)
        if reason is not None:
            return index, reason
        if token in seen:
            first = seen[token]
            return index, f"duplicate token {token!r} (first at id {first}, line {first + 1})"
        seen[token] = index
    if len(tokens) < specials:
        return len(tokens), f"only {len(tokens)} tokens; the {specials} specials must come first"
    return None


def _counts(token_lists: Iterable[Sequence[str]]) -> Counter[str]:
    return Counter(token for tokens in token_lists for token in tokens)
