"""A one-line progress display on stderr: records done, articles per second, errors.

Why not tqdm: one \\r-updated line is all we need, and the job must not depend on a terminal
library; when stderr is not a terminal the CLI turns the display off (logs stay clean).
"""

from __future__ import annotations

import time
from typing import TextIO

_INTERVAL_S = 0.5


class Progress:
    """Call `update` after each batch; it redraws at most every half second."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._start = time.perf_counter()
        self._last = 0.0
        self._drawn = False

    def update(self, done: int, errors: int, *, final: bool = False) -> None:
        if self._stream is None:
            return
        now = time.perf_counter()
        if not final and now - self._last < _INTERVAL_S:
            return
        self._last = now
        rate = done / max(now - self._start, 1e-9)
        self._stream.write(f"\r{done:,} articles  {rate:,.1f} articles/s  {errors:,} errors ")
        if final:
            self._stream.write("\n")
        self._stream.flush()
        self._drawn = True

    def close(self, done: int, errors: int) -> None:
        """Draw the final state and end the line (if anything was drawn at all)."""
        if self._drawn or done:
            self.update(done, errors, final=True)
