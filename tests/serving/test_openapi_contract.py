"""`s2s serve` answers as its own `/openapi.json` says: Schemathesis (every check) generates
valid and invalid requests from the schema and sends them to a real server with the tiny
models, derandomised and bounded, so the run is the same every time."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import BaseSchema, Case, GenerationMode, Response
from schemathesis.checks import positive_data_acceptance

from nlp.chat.responder import ChatResponder
from nlp.chat.settings import ChatSettings, SettingsStore
from nlp.decoding import DecodeOptions
from nlp.generation.loading import LoadedModel
from nlp.generation.text_generator import Generation
from nlp.serving.http.api import make_app
from nlp.serving.http.config import ServeConfig
from nlp.serving.http.models import ServedModel
from nlp.util.config import DataConfig
from tests.conftest import serve_args, serving
from tests.fakes.fake_generators import FakeGenerator

# The served model each model route is sent to: any other name is a 404, as the schema says,
# and these make the requests reach the decoder.
MODEL_FOR = {"headlines": "news", "chat": "chat", "attention": "news"}
EXAMPLES = 25  # per operation and mode


def beyond_the_schema(response: Response) -> bool:
    """A 422 for decoding options each valid alone but not together (n_best above beam_size,
    min_length above max_length), for options asking what the model lacks (MMI without a
    companion), or for a text with no token the model reads: rules of the decoder
    (`merge_options`) and of the model that JSON Schema cannot state. Only such errors (the
    server's own `value_error`s): a field refused by its type or range is the schema's."""
    if response.status_code != 422:
        return False
    errors = response.json()["detail"]
    return bool(errors) and all(
        error["loc"][:2] in (["body", "decoding"], ["body", "text"])
        and error["type"] == "value_error"
        for error in errors
    )


@pytest.fixture(scope="module")
def api_schema(tiny_bundle: Path, tiny_headline_bundle: Path) -> Iterator[BaseSchema]:
    from nlp.serving.http.command import build_app

    args = serve_args(
        "--model", f"chat={tiny_bundle}", "--model", f"news={tiny_headline_bundle}",
        "--rate-burst", "100000", "--max-text-chars", "200", "--max-articles", "3",
    )
    with serving(build_app(args)) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


# The pytest plugin's `from_fixture` schemas do not run on pytest 9 (they set a node's
# `_nodeid`): each operation's cases are drawn here with the documented `as_strategy`.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_server_answers_as_its_schema_says(
    api_schema: BaseSchema, mode: GenerationMode
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path.rsplit("/", 1)[-1] for op in operations} >= set(MODEL_FOR)
    for operation in operations:
        if not mode.is_positive and operation.method.upper() == "GET":
            continue  # the GET routes take no parameters: nothing to make invalid
        route = operation.path.rsplit("/", 1)[-1]
        name = {"name": MODEL_FOR[route]} if "{name}" in operation.path else None

        @given(case=operation.as_strategy(mode, path_parameters=name))
        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def answers_as_documented(case: Case) -> None:
            response = case.call(timeout=60)
            excused = mode.is_positive and beyond_the_schema(response)
            case.validate_response(
                response, excluded_checks=[positive_data_acceptance] if excused else None
            )

        answers_as_documented()


class Unscorable(FakeGenerator):
    """The fake's headlines, each scored -inf: what a decoder gives when the options forbid
    every token before the end."""

    def generate(
        self, texts: Sequence[str], options: DecodeOptions,
        seeds: Sequence[int | None] | None = None,
    ) -> list[list[Generation]]:
        return [[dataclasses.replace(g, score=float("-inf")) for g in n_best]
                for n_best in super().generate(texts, options, seeds)]


async def test_an_output_without_a_finite_score_is_refused_not_sent_as_null() -> None:
    """The schema's score is a number (the page formats it): never JSON's null for -inf."""
    loaded = LoadedModel(Unscorable(words=3), DataConfig(task="headline"))
    responder = ChatResponder(loaded, store=SettingsStore(":memory:", ChatSettings()))
    served = ServedModel("news", Path("news"), "headline", None, responder, loaded.generator)
    transport = httpx.ASGITransport(app=make_app({"news": served}, ServeConfig()))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.post("/v1/models/news/headlines", json={"articles": ["a b c"]})
    await responder.aclose()
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "decoding"]
    assert "finite score" in answer.json()["detail"][0]["msg"]
