"""What work one request, and one client, may ask of a model.

Why the work and not only each number: the request limits bound the articles, the beam,
the n-best list and the length one by one, yet their product (64 articles, beam 16, 200
tokens) held a model's one decoding thread for 18 s while a one-line chat waited behind it.
So a request's cost is the work it causes on that thread (`request_cost`). A request costing
more than `max_request_cost` never fits: 413 naming the limit. Each client has a token
bucket of that size, refilled at `cost_per_minute`: a client that has spent it waits (429
with Retry-After), so one client cannot keep the model busy, and another's request waits
behind about one request's work per client at most.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.exceptions import HTTPException

from nlp.decoding.options import (
    RETRIEVAL,
    SENTENCE_ENCODER,
    DecodeOptions,
    OptionError,
    rows_per_input,
)
from nlp.generation.mmi import COMPANION_KIND
from nlp.generation.pmi import MARGINAL_POSTS
from nlp.generation.rankers import FUSED, reads_chat_model
from nlp.serving.http.config import ServeConfig
from nlp.util.config import TrainConfig
from nlp.util.ratelimit import ChatRateLimiter, Verdict

COST_UNIT = "token steps (decoder rows x max_length, and candidates' tokens x scoring passes)"
# What finding one reply (or scoring one by BM25) costs, in token steps: an index lookup,
# no network, so far less than the passes over the reply that usually follow it.
RETRIEVAL_COST = 1
# The most tokens a retrieved reply is scored with, for a model that does not say (its
# `train.max_target_length`: the teacher-forced scores cut a reply there).
REPLY_TOKENS = TrainConfig.max_target_length
# The rankers that read every candidate with the dual encoder (`nlp.ranking`).
DUAL_ENCODER_RANKERS = ("dual-encoder", FUSED)


def request_cost(
    options: DecodeOptions,
    inputs: int = 1,
    *,
    refines: bool = False,
    reply_tokens: int = REPLY_TOKENS,
) -> int:
    """The most work `inputs` texts generated with `options` can cause, in token steps: one
    token through one of the networks (a decoder step of one row, or one token of a
    teacher-forced or encoder pass), and `RETRIEVAL_COST` per reply looked up.

    Why each term, following what `Generator.generate` runs for one text:
    - decoding: its rows (beam or samples) x `max_length` steps, but only when the decoder
      runs: when generated replies may be sent, or for a retrieve-and-refine model
      (`refines`), which writes its refined replies whatever `generated` says; a
      retrieval-only chat decodes nothing;
    - retrieval: `retrieve` replies looked up (and a refine model's one draft);
    - ranking: every candidate (the decoder's `n_best` of at most `max_length` tokens, and
      the `retrieve` retrieved ones of at most `reply_tokens`) once per network pass its
      ranker makes (`Candidates.rank`): the chat model's teacher-forced scores for
      `likelihood`, and for `none` and MMI where retrieved replies compete (else the
      decoder's own scores serve); the companion model's too for MMI; the dual encoder's
      for the dual-encoder rankers; `retrieval` only scores the posts by BM25, a lookup
      per candidate like the fused ranker's BM25 term; the sentence encoder reads each
      retrieved reply and its post (`rerank=sentence-encoder`), and the posts again for the
      gate's fit (`retrieved_threshold`);
    - PMI (`pmi_weight`): each written candidate teacher-forced against the message and
      against `MARGINAL_POSTS` other posts; a fallback threshold: the chat model's pass, if
      no ranker made it.
    A chat message therefore costs little when it only retrieves, and `retrieve=50` with a
    ranker that reads every reply costs what reading 50 replies costs."""
    decodes = options.generated or refines
    written = options.n_best if decodes else 0
    decoding = (rows_per_input(options) if decodes else 0) * options.max_length
    lookups = options.retrieve + refines
    passes = 0
    rerank = options.rerank
    if reads_chat_model(options):  # the chat model's teacher-forced pass
        passes += 1
    if rerank != "none" or options.retrieve:  # else the decoder's order stands, unscored
        if rerank in COMPANION_KIND:
            passes += 1  # the companion
        if rerank in DUAL_ENCODER_RANKERS:
            passes += 1  # the dual encoder
        if rerank in (RETRIEVAL, FUSED):
            lookups += written + options.retrieve  # BM25 scores
    retrieved_tokens = options.retrieve * reply_tokens
    candidate_tokens = written * options.max_length + retrieved_tokens
    encoder = ((2 if rerank == SENTENCE_ENCODER else 0)
               + (1 if options.retrieved_threshold > 0 else 0)) * retrieved_tokens
    pmi = (1 + MARGINAL_POSTS) * written * options.max_length if options.pmi_weight > 0 else 0
    return inputs * (decoding + passes * candidate_tokens + encoder + pmi
                     + RETRIEVAL_COST * lookups)


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

    def check_settings(self, cost: int) -> None:
        """OptionError when a conversation's settings would make each of its messages cost
        `cost`, more than one request may: refused when set (`ChatResponder.change_settings`)
        because, stored, they would have every later message refused with 413."""
        if cost > self.max_request_cost:
            raise OptionError(
                f"each message would cost {cost:,} {COST_UNIT}, and this server takes at most "
                f"{self.max_request_cost:,} in one request: a smaller beam or length fits"
            )

    def charge(self, client: str, cost: int) -> None:
        """Take `cost` from `client`'s budget; HTTPException 413 or 429 if it cannot."""
        if cost > self.max_request_cost:
            raise HTTPException(
                413,
                f"this request asks for {cost:,} {COST_UNIT}; the server takes at most "
                f"{self.max_request_cost:,} in one request (s2s serve --max-request-cost): "
                "send fewer texts, or a smaller beam, n_best, max_length or retrieve, or a "
                "ranker that reads fewer replies",
            )
        if self._buckets.check(client, cost) is not Verdict.ALLOW:
            wait = self._buckets.retry_after_header(client, cost)
            raise HTTPException(
                429,
                f"{client} has used its budget of {self.per_minute:,.0f} {COST_UNIT} a minute "
                f"(s2s serve --cost-per-minute); this request ({cost:,}) fits in {wait} s",
                headers={"Retry-After": wait},
            )
