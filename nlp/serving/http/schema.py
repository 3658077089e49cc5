"""What the OpenAPI contract says beyond each route: the `decoding` object every model request
may carry (built from `DecodeOptions`), the text and id limits of the request bodies, and the
shape and meaning of every refusal."""

# No `from __future__ import annotations` here: pydantic reads the models' annotations at run
# time.
from dataclasses import fields
from typing import Annotated, Any, Literal, get_args, get_type_hints

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
)

from nlp.decoding import DecodeOptions
from nlp.decoding.options import RERANK_NAMES, STRATEGY_NAMES, option_maximums, option_ranges
from nlp.generation.decode_args import switch_sets
from nlp.serving.http.config import ServeConfig


def _whole_number(value: object) -> object:
    """3.0 for an integer field is 3: JSON Schema's `integer` is any number without a
    fraction, and JSON itself does not tell 3.0 from 3."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def undocumented_default(schema: dict[str, Any]) -> None:
    """An unset field takes the model's tuned setting, not the `None` pydantic marks unset."""
    schema.pop("default", None)


def decoding_overrides_model() -> type[BaseModel]:
    """A pydantic model with one field per `DecodeOptions` field, each optional (absent: the
    model's setting), same names and types (strategy and rerank as their choices, no null but
    for the seed, whose null is "unseeded"), unknown names refused, every number finite and
    within the option's range, and at most its served maximum (`option_maximums`: a
    stranger's request must not hold the model's one decoding thread): the request's
    `decoding` object. Built from the dataclass, so a new decode option is servable at once."""
    hints = get_type_hints(DecodeOptions)
    choices: dict[str, tuple[str, ...]] = {"strategy": STRATEGY_NAMES, "rerank": RERANK_NAMES}
    ranges, maximums = option_ranges(), option_maximums()
    definitions: dict[str, Any] = {}
    for item in fields(DecodeOptions):
        hint = Literal[choices[item.name]] if item.name in choices else hints[item.name]
        description = item.metadata.get("help") or f"DecodeOptions.{item.name}"
        if isinstance(item.default, bool):  # the help is the flag's: the value it sets
            description = f"{str(switch_sets(item.name)).lower()}: {description}"
        bounds: dict[str, Any] = {}
        if item.name in ranges:
            bounds = {"ge": ranges[item.name][0], "le": maximums[item.name]}
        if hint is float:
            bounds["allow_inf_nan"] = False
        elif int in get_args(hint) or hint is int:
            hint = Annotated[hint, BeforeValidator(_whole_number)]
        definitions[item.name] = (hint, Field(
            None, description=description, json_schema_extra=undocumented_default, **bounds
        ))
    return create_model(
        "DecodingOverrides",
        __config__=ConfigDict(extra="forbid", strict=True),
        __doc__="Decoding options over the model's tuned ones (GET /v1/models shows them); "
        "only the fields given change.",
        **definitions,
    )


DecodingOverrides = decoding_overrides_model()


def text_limit(config: ServeConfig) -> StringConstraints:
    """The bound of a request body's text: at most the server's `max_text_chars`."""
    return StringConstraints(max_length=config.max_text_chars)


def conversation_id_limit(config: ServeConfig) -> StringConstraints:
    """The bound of a request body's conversation id: not empty, at most the server's limit."""
    return StringConstraints(min_length=1, max_length=config.max_conversation_id_chars)


class Problem(BaseModel):
    """The body of every refusal but a 422 (whose `detail` lists the fields at fault)."""

    detail: str


# What each refusal means, for the schema's `responses` (the gate answers 401, 413, 429, 503).
_REFUSALS: dict[int, str] = {
    400: "the body cannot be read as JSON",
    401: "missing or wrong bearer token (when the server has one)",
    404: "unknown model, a model of another task, or an unknown conversation",
    405: "the path answers another method",
    409: "the conversation's last reply has no picture: none yet, the fallback line, or one "
    "that cannot be drawn",
    413: "the body is larger than the server's limit",
    429: "too many requests from this client; Retry-After says when to try again",
    503: "the model requests in progress are at the server's limit; retry after Retry-After",
}
# What a model route (/v1/models/NAME/...) may answer besides its own success and 422.
MODEL_REFUSALS = (400, 401, 404, 405, 413, 429, 503)


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` entry of a route that may answer these statuses."""
    return {code: {"model": Problem, "description": _REFUSALS[code]} for code in codes}
