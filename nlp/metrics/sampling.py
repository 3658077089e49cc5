"""Which posts a chat figure is computed on: a seeded random sample spread across
conversations.

Why not the first N pairs of a file: a file lists a conversation's pairs together, so its
first 200 pairs are a dozen conversations (their topics, their speakers), and a figure on
them says little about the rest. Posts are drawn conversation by conversation instead: the
conversations in a seeded random order, one post of each per round (a random one of those
left), until there are enough. Every scored figure of `s2s evaluate`, `s2s tune-decoding` and
the chat benchmarks takes its posts from here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def sample_rows(groups: Sequence[str], count: int, seed: int) -> list[int]:
    """Row indices of `count` posts (all of them, shuffled, when `count` is 0 or more than
    there are), in the order drawn. `groups[i]` is row i's conversation (`Pair.group`); an
    empty group is a conversation of its own."""
    by_group: dict[str, list[int]] = {}
    for row, group in enumerate(groups):
        by_group.setdefault(group or f"\x00row {row}", []).append(row)
    rng = random.Random(seed)
    conversations = list(by_group.values())
    rng.shuffle(conversations)
    for rows in conversations:
        rng.shuffle(rows)
    wanted = len(groups) if count <= 0 else min(count, len(groups))
    drawn: list[int] = []
    depth = 0
    while len(drawn) < wanted:
        for rows in conversations:
            if depth < len(rows):
                drawn.append(rows[depth])
                if len(drawn) == wanted:
                    break
        depth += 1
    return drawn
