"""Reply metrics for chat models: distinct-n, generic-reply share, echo share, BLEU-1/2, length.

Perplexity says how well a model predicts held-out replies; these say what a user will see.
A chatbot that answers "i don't know" to everything, or parrots the message back, can have
a fine perplexity and be useless. Units are tokens from `units` (words, or characters in
Chinese, as for ROUGE) so that English and Chinese figures are computed the same way.

BLEU-1/2 against the reference reply (sacrebleu corpus BLEU, 0-100, max n-gram order 1 and 2,
its default exponential smoothing) say whether diversity was bought with irrelevance; its
tokenisation is sacrebleu's "zh" when the texts are Chinese and "13a" otherwise, and is
reported beside the scores. Mean reply length is in words, or characters for Chinese.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from nlp.metrics.rouge import resolve_unit, units
from nlp.text.normalize import words_only


def chat_unit(posts: Sequence[str], references: Sequence[str], unit: str = "auto") -> str:
    """The unit chat replies are counted in ("char" or "word"), `unit` "auto" deciding from
    the posts and the people's replies together: one rule for the figures, the tuner's
    objective and its word vectors, so a distinct-2 floor means the same on validation as on
    test."""
    return resolve_unit([*posts, *references], unit)


def distinct_n(replies: Sequence[str], n: int, unit: str) -> float:
    """Distinct n-grams over all n-grams of all replies (Li et al., 2016)."""
    grams: list[tuple[str, ...]] = []
    for reply in replies:
        tokens = units(reply, unit)
        grams.extend(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return len(set(grams)) / len(grams) if grams else 0.0


def top_reply_share(replies: Sequence[str], k: int = 5) -> float:
    """Share of replies that are one of the k most frequent replies, a reply counted by its
    words (`words_only`: "I don't know." and "i don't know ." are one reply, however a
    bot's retrieved and written replies are spaced)."""
    counts = Counter(words_only(reply) or reply.strip() for reply in replies)
    return sum(c for _, c in counts.most_common(k)) / len(replies) if replies else 0.0


def top_reply_repeats(replies: Sequence[str], k: int = 5) -> float:
    """Share of replies that repeat one of the k most frequent replies (each of those
    counted from its second time on).

    Why beside `top_reply_share`: the k most frequent of n different replies are k/n of them,
    so a ceiling on their share that n = 100 replies can meet, 40 never can; their repeats
    are 0 for different replies however few, and at n = 100 differ from the share by k/n.
    """
    counts = Counter(words_only(reply) or reply.strip() for reply in replies)
    top = counts.most_common(k)
    return (sum(c for _, c in top) - len(top)) / len(replies) if replies else 0.0


def is_echo(post: str, reply: str, unit: str, threshold: float = 0.8) -> bool:
    """The reply repeats the post: identical, or most of its units are taken from the post."""
    reply_units, post_units = units(reply, unit), Counter(units(post, unit))
    if not reply_units:
        return False
    copied = sum(min(c, post_units[u]) for u, c in Counter(reply_units).items())
    return copied / len(reply_units) >= threshold


def bleu_tokenize(unit: str) -> str:
    """sacrebleu's tokenisation for texts of this unit: "zh" splits Chinese characters."""
    return "zh" if unit == "char" else "13a"


def corpus_bleu(
    replies: Sequence[str], references: Sequence[str], order: int, tokenize: str
) -> float:
    """Corpus BLEU-`order` (0-100) of `replies` against one reference each."""
    from sacrebleu.metrics import BLEU

    bleu = BLEU(tokenize=tokenize, max_ngram_order=order, effective_order=False)
    return float(bleu.corpus_score(list(replies), [list(references)]).score)


def mean_length(replies: Sequence[str], unit: str) -> float:
    """Mean reply length in `unit`s (words, or characters for Chinese)."""
    return sum(len(units(r, unit)) for r in replies) / len(replies) if replies else 0.0


# Replies per block of the diversity measures that must not move with the sample's size
# (`per_block`): the tuner's floor and the benchmarks compare the same measure however many
# posts they scored.
DIVERSITY_BLOCK = 100


def per_block(
    replies: Sequence[str], measure: Callable[[Sequence[str]], float],
    block: int = DIVERSITY_BLOCK,
) -> float:
    """The mean of `measure` over consecutive blocks of `block` replies.

    Why: distinct-n over 200 replies and over 1,000 are not comparable (the more replies, the
    more of their n-grams repeat), nor is the five most frequent replies' share. Over blocks
    of a fixed size, with the posts drawn at random, the expected value is the same whatever
    the sample size, so a floor set on one sample holds on another. A last block shorter
    than `block` is left out; fewer replies than one block are measured whole.
    """
    if len(replies) < block:
        return measure(replies)
    blocks = [replies[i : i + block] for i in range(0, len(replies) - block + 1, block)]
    return sum(measure(b) for b in blocks) / len(blocks)


def chat_metrics(
    posts: Sequence[str],
    replies: Sequence[str],
    unit: str = "auto",
    references: Sequence[str] | None = None,
) -> dict[str, float | str]:
    """All reply metrics; BLEU only when the reference replies are given. `unit` "auto"
    looks at the posts and references (mostly Han, kana or Hangul: "char", as for ROUGE)."""
    resolved = chat_unit(posts, references or [], unit)
    bleu: dict[str, float | str] = {}
    if references is not None:
        if len(references) != len(replies):
            raise ValueError(f"{len(references)} references for {len(replies)} replies")
        tokenize = bleu_tokenize(resolved)
        bleu = {
            "bleu_1": corpus_bleu(replies, references, 1, tokenize),
            "bleu_2": corpus_bleu(replies, references, 2, tokenize),
            "bleu_tokenize": tokenize,
        }
    return {
        "distinct_1": distinct_n(replies, 1, resolved),
        "distinct_2": distinct_n(replies, 2, resolved),
        "top5_reply_share": top_reply_share(replies, 5),
        # the same two per block of DIVERSITY_BLOCK replies: comparable across sample sizes
        "distinct_2_per_block": per_block(replies, lambda b: distinct_n(b, 2, resolved)),
        "top5_share_per_block": per_block(replies, top_reply_share),
        "echo_share": sum(is_echo(p, r, resolved) for p, r in zip(posts, replies, strict=True))
        / max(1, len(replies)),
        "empty_share": sum(not r.strip() for r in replies) / max(1, len(replies)),
        "mean_reply_length": mean_length(replies, resolved),
        **bleu,
        "unit": resolved,
    }
