"""What of a post with earlier turns the index matches, and which replies only repeat a turn.

Why the message alone is searched: a chat model with `data.context_turns` reads the earlier
turns joined before the message (`DataConfig.turn_separator`), and so does the ranker, which
is where they help. Matched by keywords, though, the earlier turns find the training pairs of
the same stretch of a similar conversation: replies to the turn before (the answer to a
question already answered) and the message itself (a training pair whose reply *is* the
message), which the ranker then likes because they are about the conversation. The index is
therefore built on, and searched with, the message: the last turn of a post.

Why repeats are dropped: a reply that says again what one of the conversation's turns said
is never a sensible reply to it, and retrieval is where such replies come from.
"""

from __future__ import annotations

from collections.abc import Sequence

from nlp.text.normalize import words_only


def message_tokens(tokens: Sequence[str], separator: str) -> list[str]:
    """The tokens after the last turn separator (`separator` as written in the config, e.g.
    " __eot__ "; its token is matched in any case, as a lowercasing tokenizer writes it):
    the last of `turns_of`; all of them when there is none or the separator is blank."""
    return turns_of(tokens, separator)[-1]


def turns_of(tokens: Sequence[str], separator: str) -> list[list[str]]:
    """A post's tokens cut into its turns at the separator token, in any case (a
    lowercasing tokenizer writes it lower-cased)."""
    marker = separator.strip().lower()
    turns: list[list[str]] = [[]]
    for token in tokens:
        if marker and token.lower() == marker:
            turns.append([])
        else:
            turns[-1].append(token)
    return turns


def words_key(tokens: Sequence[str]) -> str:
    """The words of a tokenized text without punctuation and case (`words_only`): "OK , all
    of them" and "ok, all of them." say the same thing."""
    return words_only(" ".join(tokens))


def repeats_a_turn(reply: Sequence[str], post: Sequence[str], separator: str) -> bool:
    """Whether the reply's words are those of one of the post's turns (the message or an
    earlier turn); a reply without words repeats nothing."""
    key = words_key(reply)
    return bool(key) and any(key == words_key(turn) for turn in turns_of(post, separator))
