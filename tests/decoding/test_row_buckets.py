"""The row buckets the fused pick pads to, and the batches a warm-up decodes to meet them all."""

import pytest

from nlp.decoding import STRATEGY_NAMES, DecodeOptions
from nlp.decoding.options import rows_per_input
from nlp.decoding.row_buckets import ROW_BUCKETS, warm_up_batch_sizes


def bucket(rows: int) -> int:
    return min(size for size in ROW_BUCKETS if size >= rows)


@pytest.mark.parametrize("max_batch", [1, 2, 5, 7, 32, 64])
@pytest.mark.parametrize("rows", [1, 2, 3, 5, 8, 10])
def test_the_warm_up_meets_every_bucket_a_batch_can_start_in(max_batch: int, rows: int) -> None:
    """A server's call of any size up to `max_batch` starts in a bucket some warm-up batch
    started in (else its first such call waits for a compile), and under XLA every
    power-of-two batch is warmed too."""
    sizes = warm_up_batch_sizes(max_batch, rows)
    assert all(1 <= size <= max_batch for size in sizes)
    met = {bucket(size * rows) for size in sizes}
    assert {bucket(batch * rows) for batch in range(1, max_batch + 1)} <= met
    assert {2**k for k in range(8) if 2**k <= max_batch} <= set(sizes)
    assert len(sizes) <= 2 * max_batch.bit_length() + 1  # a dozen calls, not one per size


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        warm_up_batch_sizes(0)
    with pytest.raises(ValueError, match="rows_per_input"):
        warm_up_batch_sizes(8, 0)


# rows per input with beam_size=6, beam_groups=2 and n_best=3 (1 for greedy)
ROWS = {"greedy": 1, "beam": 6, "sample": 3, "diverse_beam": 6}


@pytest.mark.parametrize(("strategy", "rows"), ROWS.items())
def test_each_strategy_takes_its_beam_or_its_samples_as_rows(strategy: str, rows: int) -> None:
    from nlp.decoding.strategies import build_strategy

    options = DecodeOptions(strategy=strategy, beam_size=6, beam_groups=2,
                            n_best=1 if strategy == "greedy" else 3)
    assert rows_per_input(options) == rows
    assert build_strategy(options).width == rows


def test_every_strategy_has_its_rows_stated() -> None:
    assert set(ROWS) == set(STRATEGY_NAMES)
