"""The training time a run has spent, one value on every worker of a multi-worker run."""

from __future__ import annotations

import time

import tensorflow as tf

from nlp.training.workers import per_worker

AGREE_EVERY_SECONDS = 5.0  # how often multi-worker runs agree on the clock (`RunClock`)


class RunClock:
    """Seconds spent training: those of earlier (resumed) runs, then this process's clock.

    Under a multi-worker strategy `seconds` is the largest count over the workers
    (`per_worker`): the time budget (`train.max_minutes`) ends the run at the same step on
    every worker, and the `linear` schedule gives every worker the same rate. Agreeing is a
    collective operation that costs several steps of a small model, so it is renewed about
    every `AGREE_EVERY_SECONDS`, at a step chosen from agreed values alone (the same on every
    worker); the budget may so end up to that much late."""

    def __init__(self, spent: float, strategy: tf.distribute.Strategy | None = None) -> None:
        self._started = time.monotonic() - spent
        self._strategy = strategy
        self._due = 0  # the step at which the workers agree next
        self._last: tuple[int, float] | None = None  # (step, seconds) of the last agreement

    def local(self) -> float:
        """This process's count, without agreement (for reports)."""
        return time.monotonic() - self._started

    def seconds(self, step: int) -> float:
        """The count every worker shares after `step` steps; every worker calls it after
        every step."""
        if self._last is not None and step < self._due:
            return self._last[1]
        local = self.local()
        everyone = per_worker(self._strategy, [local], tf.float64)
        if everyone is None:
            return local
        agreed = float(everyone.max())
        gap = 1
        if self._last is not None:
            last_step, last_seconds = self._last
            per_step = max(agreed - last_seconds, 1e-6) / max(1, step - last_step)
            gap = max(1, int(AGREE_EVERY_SECONDS / per_step))
        self._due = step + gap
        self._last = (step, agreed)
        return agreed
