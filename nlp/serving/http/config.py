"""What `s2s serve` limits and allows: one frozen dataclass, filled from the command line."""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass, field

from nlp.chat.batcher import BatchLimits

DEFAULT_HOST = "127.0.0.1"  # loopback only: exposing the server is a decision, not a default
DEFAULT_PORT = 8000


@dataclass(frozen=True)
class ServeConfig:
    """Limits that keep one client, or one burst, from taking the process down.

    Why each exists: `max_body_bytes` and `max_text_chars` bound the memory and the decoder
    time one request can ask for; `rate_*` shares the model fairly between clients;
    `max_request_cost` and `cost_per_minute` bound the model work of one request and of
    one client (`nlp.serving.http.budget`); `max_in_flight` bounds the work admitted at once
    (a full server answers 503 at once instead of queueing without end); conversations are
    bounded and expire, since every one keeps context and settings in memory, and each
    client has a quota of them, so that no client's new ones push out everyone else's.
    `trusted_proxies`: the addresses whose X-Forwarded-For names the client; anyone else's
    is ignored, or any local process could pick a fresh rate limit with every request.
    """

    max_body_bytes: int = 1 << 20
    max_text_chars: int = 10_000
    max_articles: int = 64
    max_conversation_id_chars: int = 128
    rate_burst: int = 30
    rate_per_minute: float = 120.0
    max_in_flight: int = 32
    # model work in token steps (`nlp.serving.http.budget.request_cost`): 64 articles at the
    # headline defaults (beam 5, 30 tokens, no re-ranking) are 9,600
    max_request_cost: int = 20_000
    cost_per_minute: float = 120_000.0
    retry_after_seconds: int = 1
    max_conversations: int = 10_000
    max_conversations_per_client: int = 100
    conversation_ttl_seconds: float = 3600.0
    batching: BatchLimits = field(default_factory=BatchLimits)
    # the bearer token; None: no authentication. Left out of repr: never in logs or tracebacks
    token: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()  # empty: no CORS headers at all
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks; empty: trust no header

    def __post_init__(self) -> None:
        for name in (
            "max_body_bytes", "max_text_chars", "max_articles", "max_conversation_id_chars",
            "rate_burst", "max_in_flight", "max_request_cost", "max_conversations",
            "max_conversations_per_client",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("rate_per_minute", "cost_per_minute", "conversation_ttl_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.retry_after_seconds < 0:
            raise ValueError("retry_after_seconds must be >= 0")
        if self.token is not None and not self.token:
            raise ValueError("the token is empty")
        for proxy in self.trusted_proxies:
            check_proxy(proxy)


def check_proxy(proxy: str) -> None:
    """ValueError naming `proxy` unless it is an IP address or network. Why refuse here:
    uvicorn's ProxyHeadersMiddleware takes anything else (a typo, a hostname, 10.0.0.5/8 with
    host bits set) for a name no client address ever equals, so the proxy would be trusted
    by nobody, silently."""
    try:
        ipaddress.ip_network(proxy)
    except ValueError as exc:
        hint = "an IP address or a network such as 10.0.0.0/8"
        with contextlib.suppress(ValueError):  # host bits set: the network it is in
            hint = f"the network {ipaddress.ip_network(proxy, strict=False)}"
        raise ValueError(f"--trust-proxy {proxy}: {exc}; give {hint}") from None
