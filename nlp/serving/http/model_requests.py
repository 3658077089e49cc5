"""What every model route shares: finding the model a path names, the conversations the
server issued, the clients' decoding budget, a request's decoding options, and one text
through the model's micro-batcher, each turned into the HTTP answer its failure deserves."""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Mapping
from dataclasses import fields

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from nlp.chat.messages import public_reason
from nlp.decoding import DecodeOptions
from nlp.generation.decode_args import layered_options
from nlp.generation.text_generator import Generation
from nlp.serving.http.budget import CostBudget
from nlp.serving.http.config import ServeConfig
from nlp.serving.http.conversations import Conversations, UnknownConversation
from nlp.serving.http.models import ServedModel


def invalid(field: str, message: str) -> RequestValidationError:
    """A 422 of the documented shape (`detail`: a list naming the field) for what only the
    model could find wrong with the body."""
    return RequestValidationError([{"loc": ("body", field), "msg": message, "type": "value_error"}])


def request_options(model: ServedModel, overrides: BaseModel | None) -> DecodeOptions:
    """The model's tuned options with the request's overrides; 422 naming the field when the
    result is invalid (a value out of range, or fields contradicting each other)."""
    changes = overrides.model_dump(exclude_unset=True) if overrides is not None else {}
    try:
        return layered_options(model.settings, changes)  # a `rerank`: its tuned weights
    except (ValueError, TypeError) as exc:
        message = str(exc)
        first = message.split(" ")[0]
        loc: tuple[str, ...] = ("body", "decoding")
        if first in {item.name for item in fields(DecodeOptions)}:
            loc += (first,)
        raise RequestValidationError(
            [{"loc": loc, "msg": message, "type": "value_error"}]
        ) from exc


def public_message(error: Exception, model: ServedModel) -> str:
    """A generator's error as a client reads it (`public_reason`): the model by its name,
    not its directory on the server's disk (which `/v1/models` keeps private too)."""
    return public_reason(error, model.directory, f"model {model.name!r}")


class ModelRequests:
    """The served models, each one's conversations, and the clients' decoding budget."""

    def __init__(self, models: Mapping[str, ServedModel], config: ServeConfig) -> None:
        self.models = models
        self.conversations = {
            name: Conversations(
                model.responder.forget,
                max_size=config.max_conversations,
                ttl=config.conversation_ttl_seconds,
                per_owner=config.max_conversations_per_client,
            )
            for name, model in models.items()
        }
        self.budget = CostBudget(config)
        for model in models.values():  # a chat's settings must leave its messages affordable
            model.responder.settings_bound = functools.partial(self._affordable, model)

    def _affordable(self, model: ServedModel, options: DecodeOptions) -> None:
        self.budget.check_settings(model.cost(options))

    def served(self, name: str, endpoint: str) -> ServedModel:
        model = self.models.get(name)
        if model is None:
            raise HTTPException(
                404, f"unknown model {name!r}; served: {', '.join(sorted(self.models))}"
            )
        if endpoint not in model.endpoints:
            raise HTTPException(
                404,
                f"model {name!r} is a {model.task} model: it answers "
                f"{', '.join('/' + e for e in model.endpoints)}, not /{endpoint}",
            )
        return model

    def conversation_lock(self, name: str, conversation: str) -> asyncio.Lock:
        """The lock of a conversation the server issued for model `name`; 404 for any other
        id (never issued, expired, or another model's), the same answer whichever it is."""
        try:
            return self.conversations[name].lock(conversation)
        except UnknownConversation:
            raise HTTPException(
                404, "unknown conversation (expired, or not issued by this server for this "
                "model): send a message without `conversation` to start one"
            ) from None

    async def decode(
        self, model: ServedModel, text: str, options: DecodeOptions
    ) -> list[Generation]:
        """One text through the model's micro-batcher, with the options' own seed (as the
        batch job decodes it); a generator's ValueError (e.g. MMI re-ranking without a
        companion model) is the request's fault: 422. So is an output without a finite score
        (options that forbid every token before the end, e.g. a minimum length beyond what
        n-gram blocking leaves): the schema promises a number, and clients do arithmetic."""
        try:
            n_best = list(await model.responder.batcher.submit(text, options, options.seed))
        except ValueError as exc:
            raise invalid("decoding", public_message(exc, model)) from exc
        if not all(math.isfinite(generation.score) for generation in n_best):
            raise invalid("decoding", "these options leave the model no output with a finite "
                          "score: lower min_length, no_repeat_ngram or the penalties")
        return n_best
