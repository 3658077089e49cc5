"""Per-chat rate limiting with a token bucket, telling the user once when they hit it.

Also the HTTP server's per-client limit (`serve`): keys are any hashable (a Telegram chat id,
a client address)."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from nlp.util.lru import LruDict


class Verdict(enum.Enum):
    ALLOW = "allow"
    REFUSE_AND_TELL = "refuse_and_tell"  # first refused message since the last allowed one
    REFUSE_SILENTLY = "refuse_silently"


@dataclass
class _Bucket:
    tokens: float
    updated: float
    told: bool = False


class ChatRateLimiter:
    """`burst` messages at once, refilled at `per_second`; one notice per run of refusals.

    Why tell only once: answering every dropped message would itself be the flood we are
    trying to stop, and would be rate limited by Telegram in turn.
    """

    def __init__(
        self,
        burst: float,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_chats: int = 100_000,
    ) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("burst must be >= 1 and per_second > 0")
        self.burst = burst
        self.per_second = per_second
        self._clock = clock
        self._buckets: LruDict[Hashable, _Bucket] = LruDict(max_chats)

    def check(self, chat_id: Hashable) -> Verdict:
        now = self._clock()
        bucket = self._buckets.get(chat_id) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        self._buckets[chat_id] = bucket
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.told = False
            return Verdict.ALLOW
        if bucket.told:
            return Verdict.REFUSE_SILENTLY
        bucket.told = True
        return Verdict.REFUSE_AND_TELL

    def retry_after(self, chat_id: Hashable) -> float:
        """Seconds until `chat_id` may send again (0: now), for HTTP's Retry-After."""
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            return 0.0
        tokens = bucket.tokens + (self._clock() - bucket.updated) * self.per_second
        return max(0.0, (1 - tokens) / self.per_second)
