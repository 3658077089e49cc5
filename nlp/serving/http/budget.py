"""What decoding work one request, and one client, may ask of the server.

Why the product and not only each number: the request limits bound the articles, the beam,
the n-best list and the length one by one, yet their product (64 articles, beam 16, 200
tokens) held a model's one decoding thread for 18 s while a one-line chat waited behind it.
Decoding work grows with the loop's rows (inputs x the beam or the samples, as
`rows_per_input` counts them) times its steps (`max_length`, which `min_length` may force),
so that product is a request's cost. A request costing more than `max_request_cost` never
fits: 413 naming the limit. Each client has a token bucket of that size, refilled at
`cost_per_minute`: a client that has spent it waits (429 with Retry-After), so one client
cannot keep the decoder busy, and another's request waits behind about one request's work
per client at most.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.exceptions import HTTPException

from nlp.chat.responder import ChatResponder
from nlp.decoding.options import DecodeOptions, rows_per_input
from nlp.serving.http.config import ServeConfig
from nlp.util.ratelimit import ChatRateLimiter, Verdict

COST_UNIT = "decoding steps (inputs x beam or samples x max_length)"


def decoding_cost(options: DecodeOptions, inputs: int = 1) -> int:
    """The most decoding work `inputs` texts decoded with `options` can take."""
    return inputs * rows_per_input(options) * options.max_length


def chat_cost(responder: ChatResponder, conversation: str | None) -> int:
    """The cost of one message in `conversation` (None: a new one), at its settings."""
    store = responder.store
    settings = store.get(conversation) if conversation else store.defaults
    return decoding_cost(settings.decode_options(responder.base_options))


class CostBudget:
    """Charges each request's cost to its client (see the module docstring)."""

    def __init__(
        self, config: ServeConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_request_cost = config.max_request_cost
        self.per_minute = config.cost_per_minute
        self._buckets = ChatRateLimiter(
            config.max_request_cost, config.cost_per_minute / 60.0, clock=clock
        )

    def charge(self, client: str, cost: int) -> None:
        """Take `cost` from `client`'s budget; HTTPException 413 or 429 if it cannot."""
        if cost > self.max_request_cost:
            raise HTTPException(
                413,
                f"this request asks for {cost:,} {COST_UNIT}; the server takes at most "
                f"{self.max_request_cost:,} in one request (s2s serve --max-request-cost): "
                "send fewer texts, or a smaller beam, n_best or max_length",
            )
        if self._buckets.check(client, cost) is not Verdict.ALLOW:
            wait = self._buckets.retry_after_header(client, cost)
            raise HTTPException(
                429,
                f"{client} has used its decoding budget of {self.per_minute:,.0f} {COST_UNIT} "
                f"a minute (s2s serve --cost-per-minute); this request ({cost:,}) fits in "
                f"{wait} s",
                headers={"Retry-After": wait},
            )
