"""The posts chat figures are computed on: seeded, random, spread across conversations."""

from nlp.metrics.sampling import sample_rows


def test_the_sample_is_spread_across_conversations() -> None:
    # 10 conversations of 20 pairs each, listed conversation by conversation as files are
    groups = [f"c{c}" for c in range(10) for _ in range(20)]
    rows = sample_rows(groups, 10, seed=0)
    assert len({groups[r] for r in rows}) == 10  # one post from each, not the first 10 rows
    assert rows != list(range(10))
    rows = sample_rows(groups, 25, seed=0)
    counts = {g: sum(groups[r] == g for r in rows) for g in set(groups)}
    assert sorted(counts.values()) == [2] * 5 + [3] * 5  # round by round
    assert len(set(rows)) == 25


def test_seeded_and_complete() -> None:
    groups = ["a", "a", "b", "", "", "c"]
    assert sample_rows(groups, 4, seed=3) == sample_rows(groups, 4, seed=3)
    assert sorted(sample_rows(groups, 0, seed=1)) == list(range(6))
    assert sorted(sample_rows(groups, 99, seed=1)) == list(range(6))
    # pairs without a conversation are conversations of their own
    assert len({("" if groups[r] == "" else groups[r], r if not groups[r] else None)
                for r in sample_rows(groups, 5, seed=2)}) == 5
    draws = {tuple(sample_rows(groups, 3, seed=s)) for s in range(20)}
    assert len(draws) > 5  # random, not one fixed order
