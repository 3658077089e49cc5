"""The one progress display: training steps and batch headline generation both use it.

One line: count done (of the total, when known), rate, and what the caller adds ("loss 2.31",
"3 errors"). On a terminal it is redrawn in place with \\r; elsewhere (a pipe, a log file) each
drawing is a line of its own, so logs stay readable. Why not Keras' `Progbar` or tqdm: the
headline job and its command must not import TensorFlow or a terminal library for one line.
"""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    """Call `update` as work gets done; it redraws at most every `interval` seconds, and
    always when the total is reached. `stream=None` draws nothing."""

    def __init__(
        self,
        stream: TextIO | None,
        unit: str = "articles",
        total: int | None = None,
        *,
        interval: float = 0.5,
        start: int = 0,
    ) -> None:
        """`start`: the count already done before this display began (a resumed run's
        position), left out of the rate."""
        self._stream = stream
        self._unit = unit
        self._total = total
        self._interval = interval
        self._in_place = bool(stream is not None and stream.isatty())
        self._start = time.perf_counter()
        self._done_before = start
        self._last = 0.0
        self._drawn = False
        self._open = False  # an in-place line is waiting for its end

    def update(self, done: int, *notes: str, final: bool = False) -> None:
        if self._stream is None:
            return
        final = final or (self._total is not None and done >= self._total)
        now = time.perf_counter()
        if not final and now - self._last < self._interval:
            return
        self._last = now
        rate = (done - self._done_before) / max(now - self._start, 1e-9)
        count = f"{done:,}" if self._total is None else f"{done}/{self._total}"
        line = "  ".join([f"{count} {self._unit}", f"{rate:,.1f} {self._unit}/s", *notes]) + " "
        if self._in_place:
            self._stream.write("\r" + line + ("\n" if final else ""))
            self._open = not final
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
        self._drawn = True

    def close(self, done: int, *notes: str) -> None:
        """Draw the final state and end the line (if anything was drawn at all)."""
        if self._drawn or done:
            if not self._open and self._total is not None and done >= self._total:
                return  # the total's line is already drawn and ended
            self.update(done, *notes, final=True)
