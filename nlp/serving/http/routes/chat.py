"""POST /v1/models/NAME/chat: one message of a conversation to the model's `ChatResponder`
(commands, context and settings per conversation), the reply and where it came from back."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at
# run time, and the request models are local to `add_chat_routes` (their limits come from
# config).
import base64
from typing import Annotated, Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict

from nlp.serving.http.config import ServeConfig
from nlp.serving.http.gate import client_address
from nlp.serving.http.model_requests import ModelRequests
from nlp.serving.http.schema import MODEL_REFUSALS, conversation_id_limit, refusals, text_limit


def add_chat_routes(app: FastAPI, requests: ModelRequests, config: ServeConfig) -> None:
    Text = Annotated[str, text_limit(config)]
    ConversationId = Annotated[str, conversation_id_limit(config)]

    class ChatRequest(BaseModel):
        """One message (or a command: /reset, /beam 3, /sample 0.8, /settings, /why).
        Without `conversation`, a new conversation starts and the answer carries its id."""

        model_config = ConfigDict(extra="forbid")
        conversation: ConversationId | None = None
        message: Text

    class ChatResponse(BaseModel):
        conversation: str
        reply: str
        picture_png_base64: str | None = None  # /why answers with a picture
        # where a chat reply came from: generated | refined | retrieved | fallback ("" for
        # commands), and the training pair ("file:line") of a retrieved or refined one
        provenance: str = ""
        pair: str = ""

    @app.post(
        "/v1/models/{name}/chat",
        response_model=ChatResponse,
        responses=refusals(*MODEL_REFUSALS),
        summary="One message of a conversation in, the reply out",
    )
    async def chat(name: str, body: ChatRequest, request: Request) -> dict[str, Any]:
        model = requests.served(name, "chat")
        client = client_address(request.scope)
        if body.conversation is not None:
            # an unknown id: 404 before any charge
            requests.conversation_lock(name, body.conversation)
        if model.responder.is_slow(body.message):  # a command that decodes nothing is free
            cost = model.cost(model.responder.chat_options(body.conversation))
            requests.budget.charge(client, cost)
        conversation = body.conversation or requests.conversations[name].open(client)
        async with requests.conversation_lock(name, conversation):
            reply = await model.responder.respond(conversation, body.message)
        picture = base64.b64encode(reply.photo).decode() if reply.photo else None
        return {"conversation": conversation, "reply": reply.text,
                "picture_png_base64": picture, "provenance": reply.provenance,
                "pair": reply.pair}
