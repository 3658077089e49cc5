"""Per-chat rate limiting with a token bucket, telling the user once when they hit it.

Also the HTTP server's per-client limits (`serve`): keys are any hashable (a Telegram chat id,
a client address), and a request may cost more than one token (its decoding work)."""

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

    def check(self, chat_id: Hashable, cost: float = 1.0) -> Verdict:
        """Allow and take `cost` tokens if the bucket holds them; else refuse, taking none."""
        now = self._clock()
        bucket = self._buckets.get(chat_id) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        self._buckets[chat_id] = bucket
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            bucket.told = False
            return Verdict.ALLOW
        if bucket.told:
            return Verdict.REFUSE_SILENTLY
        bucket.told = True
        return Verdict.REFUSE_AND_TELL

    def retry_after(self, chat_id: Hashable, cost: float = 1.0) -> float:
        """Seconds until `chat_id` may send again (0: now), for HTTP's Retry-After."""
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            return 0.0
        tokens = bucket.tokens + (self._clock() - bucket.updated) * self.per_second
        return max(0.0, (cost - tokens) / self.per_second)

    def retry_after_header(self, chat_id: Hashable, cost: float = 1.0) -> str:
        """`retry_after` as HTTP's Retry-After value: whole seconds, at least 1."""
        return str(max(1, round(self.retry_after(chat_id, cost) + 0.5)))
