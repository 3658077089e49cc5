"""The progress line's rate counts only the work done since the display began."""

from __future__ import annotations

import io
import time

from nlp.util.progress import Progress


def test_a_resumed_count_is_left_out_of_the_rate() -> None:
    stream = io.StringIO()
    bar = Progress(stream, "steps", 20000, interval=0.0, start=1200)
    bar.update(1200)
    time.sleep(0.05)
    bar.update(1210)
    first, second = stream.getvalue().splitlines()
    assert first.startswith("1200/20000 steps  0.0 steps/s")
    rate = float(second.split()[2].replace(",", ""))
    assert 0 < rate <= 10 / 0.05  # 10 steps in at least 0.05 s, not 1,210
