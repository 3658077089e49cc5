"""POST /v1/models/NAME/attention: the attention heatmap (PNG) of the output for a text, or
of a conversation's last reply (what /why draws)."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at
# run time, and the request models are local to `add_attention_routes` (their limits come
# from config).
import asyncio
import functools
from typing import Annotated, Self
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nlp.chat.attention_plot import plot_text, render_attention_png
from nlp.generation.reply_choice import NOTHING_TO_SEND, yields_nothing
from nlp.serving.http.config import ServeConfig
from nlp.serving.http.gate import client_address
from nlp.serving.http.model_requests import ModelRequests, invalid, request_options
from nlp.serving.http.schema import (
    MODEL_REFUSALS,
    DecodingOverrides,
    conversation_id_limit,
    refusals,
    text_limit,
    undocumented_default,
)


def add_attention_routes(app: FastAPI, requests: ModelRequests, config: ServeConfig) -> None:
    Text = Annotated[str, text_limit(config)]
    ConversationId = Annotated[str, conversation_id_limit(config)]

    class AttentionRequest(BaseModel):
        """`text`: decode it and draw the output's attention; `conversation` (an id the chat
        endpoint issued): the last reply of that conversation (what /why draws). Exactly one
        of them; `decoding` only with `text`."""

        # The schema says what `_one_input` checks, so that clients (and Schemathesis) know.
        model_config = ConfigDict(extra="forbid", json_schema_extra={"oneOf": [
            {"required": ["text"], "not": {"required": ["conversation"]}},
            {"required": ["conversation"],
             "not": {"anyOf": [{"required": ["text"]}, {"required": ["decoding"]}]}},
        ]})
        # Absent is None; an explicit null is refused like any value of the wrong type.
        text: Text = Field(None, json_schema_extra=undocumented_default)  # type: ignore[assignment]
        conversation: ConversationId = Field(  # type: ignore[assignment]
            None, json_schema_extra=undocumented_default
        )
        decoding: DecodingOverrides = Field(  # type: ignore[valid-type]
            None, json_schema_extra=undocumented_default
        )

        @model_validator(mode="after")
        def _one_input(self) -> Self:
            if (self.text is None) == (self.conversation is None):
                raise ValueError("give exactly one of text and conversation")
            if self.conversation is not None and self.decoding is not None:
                raise ValueError("decoding applies to text, not to a conversation's reply")
            return self

    @app.post(
        "/v1/models/{name}/attention",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, **refusals(*MODEL_REFUSALS, 409)},
        summary="Attention heatmap (PNG) of the output for one input",
    )
    async def attention(name: str, body: AttentionRequest, request: Request) -> Response:
        model = requests.served(name, "attention")
        if body.conversation is not None:
            requests.conversation_lock(name, body.conversation)  # an unknown id: 404 first
            # the chat's /why, charged as the chat route charges it: a teacher-forced pass
            # and a drawing on the model's thread
            requests.budget.charge(client_address(request.scope),
                                   model.cost(model.responder.chat_options(body.conversation)))
            async with requests.conversation_lock(name, body.conversation):
                reply = await model.responder.respond(body.conversation, "/why")
            if reply.photo is None:  # the conversation exists: its state, not a missing one
                raise HTTPException(409, reply.text)
            return Response(reply.photo, media_type="image/png")
        assert body.text is not None
        options = request_options(model, body.decoding)
        requests.budget.charge(client_address(request.scope), model.cost(options))
        n_best = await requests.decode(model, body.text, options)
        if not n_best:
            if yields_nothing(options, model.responder.model_reads):
                raise invalid("decoding", NOTHING_TO_SEND)  # the options, not the text
            raise invalid("text", "the text has no tokens the model can read")
        # a retrieved reply's attention: while scoring it
        best = await model.responder.with_attention(n_best[0])
        draw = functools.partial(
            render_attention_png, slots=best.slots, text=plot_text(model.task, best.provenance)
        )
        try:
            png = await asyncio.to_thread(draw, best.source_tokens, best.tokens, best.attention)
        except ValueError as exc:  # nothing to draw (an empty output)
            raise invalid("text", f"cannot draw this one: {exc}") from exc
        return Response(png, media_type="image/png", headers={
            "X-S2S-Output": quote(best.text), "X-S2S-Provenance": best.provenance})
