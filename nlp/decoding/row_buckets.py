"""The row counts compiled decoding code is padded to, and the batches that reach them all.

XLA compiles once per shape, a fraction of a second to a second each time. The sampler's
fused pick (`nlp.decoding.samplers`) pads its rows to the next of `ROW_BUCKETS`, so a server
whose batches come in every size meets about a dozen shapes, not one per size. Each is still
compiled the first time it is met, on the thread that decodes, and behind a compile the queue
grows, the next batch is larger and meets a new shape, and so on: under load right after a
start, a server can spend many seconds compiling instead of answering. `warm_up_batch_sizes`
gives the batches that a start-up warm-up decodes so that no user meets a first compile. No
TensorFlow here: the chat responder, which must not load it, asks for these sizes.
"""

from __future__ import annotations

# two sizes an octave (2, 3, 4, 6, 8, 12, ...): at most half again as many rows as asked for
ROW_BUCKETS: tuple[int, ...] = tuple(
    sorted({2**k for k in range(1, 18)} | {3 * 2**k for k in range(17)})
)


def warm_up_batch_sizes(max_batch: int, rows_per_input: int = 1) -> tuple[int, ...]:
    """Batch sizes, up to `max_batch`, whose first step meets each row bucket that a call of
    at most `max_batch` inputs of `rows_per_input` rows each can start in, and every power of
    two (what the whole decoder under XLA pads batches to). Calls shed rows as hypotheses
    end, and the warm-up's do too, which meets the buckets below."""
    if max_batch < 1 or rows_per_input < 1:
        raise ValueError(f"max_batch and rows_per_input must be >= 1, got {max_batch} and "
                         f"{rows_per_input}")
    sizes = {1} | {2**k for k in range(max_batch.bit_length()) if 2**k <= max_batch}
    below = 0
    for bucket in ROW_BUCKETS:
        size = min(bucket // rows_per_input, max_batch)
        if size * rows_per_input > below:
            sizes.add(size)
        below = bucket
        if bucket >= max_batch * rows_per_input:
            break
    return tuple(sorted(sizes))
