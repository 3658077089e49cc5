"""Text <-> ids for one model: normalisation, placeholders, tokenizer, vocabulary, copying.

Training, evaluation and generation all go through this one class, so a sentence is prepared
the same way when the model learns from it and when it answers with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nlp.control import marker
from nlp.corpus.records import Pair
from nlp.text import placeholders
from nlp.text.normalize import normalize_text
from nlp.text.truecase import TRUECASE_FILE, TruecaseCounts, Truecaser
from nlp.tokenizers import Tokenizer, build_tokenizer, load_tokenizer
from nlp.tokenizers.specials import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from nlp.tokenizers.subword import SentencePieceTokenizer
from nlp.tokenizers.vocab import Vocabulary
from nlp.tokenizers.words import WordTokenizer
from nlp.util.config import ExperimentConfig

TOKENIZER_DIR = "tokenizer"
LM_TASK = "lm"
VOCAB_FILE = "vocab.txt"
# A pair's (source, target) tokens as the model sees them, before the source is cut.
PairTokens = tuple[list[str], list[str]]


def count_tokens(tokens: Iterable[PairTokens]) -> Counter[str]:
    """How often each token occurs in the pairs' sources and targets (the vocabulary's
    counts)."""
    counts: Counter[str] = Counter()
    for source, target in tokens:
        counts.update(source)
        counts.update(target)
    return counts


def kept_source_end(task: str) -> str:
    """Which tokens of a source longer than `train.max_source_length` the model sees: "last"
    for chat (a chat source ends with the message to answer, after the earlier turns, see
    `nlp.chat.context`), "first" otherwise (a headline's article, where news puts what
    matters)."""
    return "last" if task == "chat" else "first"


@dataclass
class Source:
    """A prepared encoder input: its tokens, (extended) ids and placeholder slots."""

    tokens: list[str]
    ids: list[int]
    slots: dict[str, str] = field(default_factory=dict)


class TextCodec:
    """Prepares sources and targets for a model and turns output ids back into text."""

    def __init__(
        self,
        config: ExperimentConfig,
        tokenizer: Tokenizer,
        vocab: Vocabulary,
        truecaser: Truecaser | None = None,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.vocab = vocab
        # Output of a lowercasing tokenizer is truecased (`nlp.text.truecase`); the forms are
        # learned from the training texts, and the rules alone apply to older bundles.
        if truecaser is None and config.tokenizer.lowercase:
            truecaser = Truecaser()
        self.truecaser = truecaser
        # Token counts of the training texts, kept by `fit` (pretrained vectors' coverage).
        self.token_counts: Counter[str] | None = None

    # --- construction --------------------------------------------------------------------

    @classmethod
    def fit(cls, config: ExperimentConfig, pairs: Sequence[Pair]) -> TextCodec:
        """Train the tokenizer (sentencepiece) and build the vocabulary from training pairs,
        in this process. Training itself goes through `nlp.training.prepare`, which makes the
        same codec from the same steps (`untrained`, `tokenize_chunk`, `fit_vocabulary`)
        with the tokenizing spread over processes."""
        codec = cls.untrained(config, pairs)
        tokens, truecase = codec.tokenize_chunk(pairs, truecase=True)
        codec.fit_vocabulary(count_tokens(tokens), truecase)
        return codec

    @classmethod
    def untrained(cls, config: ExperimentConfig, pairs: Sequence[Pair]) -> TextCodec:
        """A codec whose tokenizer is ready (sentencepiece trained on the training pairs'
        texts, as the model sees them) and whose vocabulary is only the specials.

        Why apart from `fit_vocabulary`: a sentencepiece model must exist before any text is
        tokenized, and the vocabulary only after every training text is."""
        codec = cls(config, build_tokenizer(config.tokenizer), Vocabulary())
        # A lazy stream: the rule-based kinds' `fit` never reads it, so they pay nothing.
        codec.tokenizer.fit(text for pair in pairs for text in codec._model_pair(pair))
        return codec

    def fit_vocabulary(
        self, counts: Counter[str], truecase: TruecaseCounts | None = None
    ) -> None:
        """The vocabulary from the training texts' token counts (kept in `token_counts` for
        pretrained vectors' coverage), and, when the tokenizer lowercases, the truecaser from
        their `truecase` counts."""
        self.token_counts = counts
        self.vocab = Vocabulary.from_counts(
            counts, min_freq=self.config.vocab.min_freq, max_size=self.config.vocab.max_size
        )
        if self.config.tokenizer.lowercase and truecase is not None:
            self.truecaser = Truecaser.from_counts(truecase)

    @classmethod
    def load(cls, config: ExperimentConfig, directory: Path) -> TextCodec:
        tokenizer = load_tokenizer(config.tokenizer, directory / TOKENIZER_DIR)
        truecaser = (
            Truecaser.load(directory / TRUECASE_FILE) if config.tokenizer.lowercase else None
        )
        return cls(config, tokenizer, Vocabulary.load(directory / VOCAB_FILE), truecaser)

    def save(self, directory: Path) -> None:
        (directory / TOKENIZER_DIR).mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(directory / TOKENIZER_DIR)
        self.vocab.save(directory / VOCAB_FILE)
        if self.truecaser is not None:
            self.truecaser.save(directory / TRUECASE_FILE)

    def extend_vocab(self, counts: Counter[str], min_freq: int, max_new: int) -> list[str]:
        """Add frequent new words of a new corpus, from its token counts (retraining);
        existing ids never move."""
        self.token_counts = counts
        return self.vocab.extend_counts(counts, min_freq=min_freq, max_new=max_new)

    def text_tokens(self, text: str) -> list[str]:
        """One text's tokens as the model sees them (normalised, masked, tokenized, not cut),
        for training word vectors whose words are this model's tokens (`s2s embeddings`)."""
        return self.tokenizer.tokenize(self._mask(normalize_text(text)).text)

    def word_tokens(self, text: str) -> list[str]:
        """One text's words, for measuring with pretrained word vectors: the model's tokens
        where they are words, the word step of a sentencepiece tokenizer where they are pieces
        (jieba's words, or the word rules), since no pretrained vectors know "▁good"."""
        if not isinstance(self.tokenizer, SentencePieceTokenizer):
            return self.text_tokens(text)
        words = self.tokenizer.words or WordTokenizer(self.config.tokenizer.lowercase)
        return words.tokenize(self._mask(normalize_text(text)).text)

    # --- encoding ------------------------------------------------------------------------

    def source(self, text: str) -> Source:
        """Encoder input for `text`, truncated to the trained maximum source length."""
        masked = self._mask(normalize_text(text))
        if self.config.data.task == LM_TASK:
            return Source([], [BOS_ID], masked.slots)
        tokens = self._source_tokens(masked.text)
        return Source(tokens, self._source_ids(tokens), masked.slots)

    def pair_ids(self, pair: Pair) -> tuple[list[int], list[int]]:
        """(source ids, target ids) for training and loss evaluation (`pair_tokens`, then
        `token_ids`). An LM's source is not tokenized: `token_ids` ignores it, and MMI
        re-ranking scores every reply candidate through here."""
        if self.config.data.task == LM_TASK:
            _, target = self._model_pair(pair)
            return self.token_ids(([], self.tokenizer.tokenize(target)))
        return self.token_ids(self.pair_tokens(pair))

    def pair_tokens(self, pair: Pair) -> PairTokens:
        """The pair's source and target tokens as the model sees them: normalised, masked,
        tokenized, the sides swapped with `data.reverse`; not yet cut (`token_ids` cuts), so
        the vocabulary counts whole texts.

        Two companions of a chat model (MMI re-ranking) are made here and in `token_ids`,
        from the same corpus: `data.reverse` swaps the sides (p(message | reply)), and
        `data.task=lm` ignores the source (p(reply) alone).
        """
        source, target = self._model_pair(pair)
        return self.tokenizer.tokenize(source), self.tokenizer.tokenize(target)

    def tokenize_chunk(
        self, pairs: Iterable[Pair], truecase: bool = False
    ) -> tuple[list[PairTokens], TruecaseCounts | None]:
        """`pair_tokens` of each pair, and, with `truecase` and a lowercasing tokenizer, the
        texts' `TruecaseCounts` (counted here because only here are the texts at hand: the
        unit of work of training's tokenizing processes, `nlp.training.prepare`)."""
        counts = TruecaseCounts() if truecase and self.config.tokenizer.lowercase else None
        tokens: list[PairTokens] = []
        for pair in pairs:
            source, target = self._model_pair(pair)
            if counts is not None:
                counts.add(source)
                counts.add(target)
            tokens.append((self.tokenizer.tokenize(source), self.tokenizer.tokenize(target)))
        return tokens, counts

    def token_ids(self, tokens: PairTokens) -> tuple[list[int], list[int]]:
        """(source ids, target ids) of a pair's `pair_tokens`; the target has no BOS and ends
        with EOS unless it was cut (`_target`). With `data.task=lm` every source is the one
        token BOS, so that the encoder and its attention mask still have a position to look
        at."""
        source_tokens, target_tokens = tokens
        if self.config.data.task == LM_TASK:
            return [BOS_ID], self._target(target_tokens, [])
        kept = self._cut_source(source_tokens)
        return self._source_ids(kept), self._target(target_tokens, kept)

    def _target(self, tokens: Sequence[str], source_tokens: Sequence[str]) -> list[int]:
        """Target ids cut to `train.max_target_length`, with EOS only if the text ended there.

        Why a cut target keeps its pair but loses its end token: an end token at the cut
        would teach a chat model to stop mid-sentence and would make validation losses and
        MMI scores count an end that is not in the text. Dropping the pair instead would
        silently remove the longest (often most informative) replies from training, change
        which pairs a corpus's loss is measured on, and leave MMI, which must score every
        candidate, without an answer; the cut target still teaches its first tokens
        truthfully. `s2s train` reports how many pairs were cut (`cut_targets`).
        """
        limit = self.config.train.max_target_length
        ids = self._target_ids(tokens[:limit], source_tokens)
        return ids if len(tokens) > limit else [*ids, EOS_ID]

    def _source_tokens(self, masked_text: str) -> list[str]:
        """Source tokens cut to `train.max_source_length` at `kept_source_end`, the same in
        training and use."""
        return self._cut_source(self.tokenizer.tokenize(masked_text))

    def _cut_source(self, tokens: list[str]) -> list[str]:
        limit = self.config.train.max_source_length
        if len(tokens) <= limit:
            return tokens
        last = kept_source_end(self.config.data.task) == "last"
        return tokens[-limit:] if last else tokens[:limit]

    def _source_ids(self, tokens: Sequence[str]) -> list[int]:
        ids = self.vocab.encode(tokens)
        if not self.config.model.copy:
            return ids
        first: dict[str, int] = {}
        size = len(self.vocab)
        return [
            i if i != UNK_ID else size + first.setdefault(token, position)
            for position, (token, i) in enumerate(zip(tokens, ids, strict=True))
        ]

    def _target_ids(self, tokens: Sequence[str], source_tokens: Sequence[str]) -> list[int]:
        ids = self.vocab.encode(tokens)
        if not self.config.model.copy:
            return ids
        first: dict[str, int] = {}
        for position, token in enumerate(source_tokens):
            first.setdefault(token, position)
        size = len(self.vocab)
        return [
            size + first[token] if i == UNK_ID and token in first else i
            for token, i in zip(tokens, ids, strict=True)
        ]

    # --- decoding ------------------------------------------------------------------------

    def output_tokens(self, ids: Sequence[int], source: Source) -> list[str]:
        """Output ids -> tokens; copy ids become the source word they point at."""
        size = len(self.vocab)
        tokens = []
        for i in ids:
            if i >= size and i - size < len(source.tokens):
                tokens.append(source.tokens[i - size])
            else:
                tokens.extend(self.vocab.decode([min(i, UNK_ID) if i >= size else i]))
        return tokens

    def text(self, tokens: Sequence[str], source: Source) -> str:
        """Natural text: detokenised, truecased if the tokenizer lowercased it, with
        placeholders restored from the source (after truecasing, so restored strings keep
        their own case)."""
        text = self.tokenizer.detokenize(tokens)
        if self.truecaser is not None:
            text = self.truecaser.apply(text)
        if not self.config.tokenizer.placeholders:
            return text
        return placeholders.restore(text, source.slots, self.tokenizer.spaced)

    def as_output(self, text: str) -> str:
        """`text` as this model would write it: normalised, masked, tokenised, and turned
        back into text by `text` (detokenised, truecased, placeholders restored). Evaluation
        compares references with outputs this way, on the same footing: a reference that
        kept its own case would never equal a lowercased-then-truecased output."""
        return self.tokens_and_output(text)[1]

    def tokens_and_output(self, text: str) -> tuple[list[str], str]:
        """`text_tokens` and `as_output` of `text` from one tokenizing pass (a retrieved
        reply needs both: its tokens to score, its written form to send)."""
        masked = self._mask(normalize_text(text))
        tokens = self.tokenizer.tokenize(masked.text)
        return tokens, self.text(tokens, Source([], [], masked.slots))

    # --- the recipe for other runtimes --------------------------------------------------

    def recipe(self) -> str:
        """What this codec does to text, in words, for clients that prepare ids without the
        project's Python (`s2s export` writes it to assets/serving.json). Each step is stated
        from the same settings and definitions the codec runs on (`kept_source_end`, the
        truecaser's presence), so the recipe cannot describe a rule the codec does not
        follow."""
        config, tok = self.config, self.config.tokenizer
        data = config.data
        steps = []
        if data.task == "chat" and data.context_turns:
            steps.append(
                f"the source is up to {data.context_turns} earlier turns and the message, "
                f"joined with {data.turn_separator!r} (data.turn_separator), which is removed "
                "from user text first"
            )
        if data.controls_specificity:
            buckets = data.specificity_buckets
            steps.append(
                f"append a space and the marker {marker(0)!r}..{marker(buckets - 1)!r} of the "
                f"wanted specificity bucket (data.specificity_buckets={buckets}; the bucket "
                f"of quantile Q is min({buckets - 1}, floor(Q x {buckets})), nlp/control)")
        steps.append("normalise (NFKC except Chinese punctuation, no control characters, "
                     "single spaces: nlp/text/normalize.py)")
        if tok.placeholders:
            steps.append("mask placeholders (nlp/text/placeholders.py)")
        lowercased = ", which lowercases" if tok.lowercase else ""
        steps.append(f"tokenize with the tokenizer in assets/{TOKENIZER_DIR} "
                     f"(tokenizer.kind={tok.kind}{lowercased})")
        limit = config.train.max_source_length
        steps.append(f"keep the {kept_source_end(data.task)} {limit} tokens of a longer source")
        steps.append(f"look each token up in assets/{VOCAB_FILE} (line number = id; "
                     f"unknown -> {UNK_ID})")
        if config.model.copy:
            steps.append("copy model: an unknown token gets instead the id vocab_size + p, "
                         "p = the position of its first occurrence in the kept source")
        steps.append(f"pad rows with {PAD_ID}")
        if data.task == LM_TASK:
            steps = [f"the source is the one id {BOS_ID} whatever the text"]
        back = [f"drop everything from the first {EOS_ID} (end) on",
                f"an id < vocab_size is line id of assets/{VOCAB_FILE}"]
        if config.model.copy:
            back.append("an id >= vocab_size is the kept source token at position "
                        "id - vocab_size")
        back.append("detokenize with the tokenizer")
        if self.truecaser is not None:
            back.append(f"truecase with assets/{TRUECASE_FILE} (nlp/text/truecase.py)")
        if tok.placeholders:
            back.append("restore placeholders from the source's masked values")
        return "Text -> ids: " + "; ".join(steps) + ". Ids -> text: " + "; ".join(back) + "."

    # --- placeholders --------------------------------------------------------------------

    def _mask(self, text: str) -> placeholders.Masked:
        if not self.config.tokenizer.placeholders:
            return placeholders.Masked(text, {})
        return placeholders.mask(text)

    def _model_pair(self, pair: Pair) -> tuple[str, str]:
        """The masked texts (`_masked_pair`) of the pair as the model reads it, sides swapped
        with `data.reverse`."""
        if self.config.data.reverse:
            pair = Pair(pair.target, pair.source, pair.origin)
        return self._masked_pair(pair)

    def _masked_pair(self, pair: Pair) -> tuple[str, str]:
        """Source and target with the source's placeholders (a target value absent from the
        source stays as text: the model could never restore it)."""
        source = self._mask(normalize_text(pair.source))
        target = normalize_text(pair.target)
        if source.slots:
            target = placeholders.mask_like(target, source.slots)
        return source.text, target
