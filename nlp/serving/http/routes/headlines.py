"""POST /v1/models/NAME/headlines: articles in, one headline record each, as the batch job
writes them (`article_result`, `candidates_record`)."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations at
# run time, and the request models are local to `add_headline_routes` (their limits come
# from config).
import asyncio
from typing import Annotated, Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from nlp.generation.decode_args import describe_options
from nlp.headlines.job import article_result
from nlp.headlines.readers import make_article
from nlp.headlines.writers import candidates_record
from nlp.serving.http.config import ServeConfig
from nlp.serving.http.gate import client_address
from nlp.serving.http.model_requests import ModelRequests, request_options
from nlp.serving.http.schema import MODEL_REFUSALS, DecodingOverrides, refusals, text_limit


def add_headline_routes(app: FastAPI, requests: ModelRequests, config: ServeConfig) -> None:
    Text = Annotated[str, text_limit(config)]

    class HeadlinesRequest(BaseModel):
        """Articles in; one result each, in order."""

        model_config = ConfigDict(extra="forbid")
        articles: list[Text] = Field(min_length=1, max_length=config.max_articles)
        decoding: DecodingOverrides | None = None  # type: ignore[valid-type]

    class Headline(BaseModel):
        """A headline and its score (log-probability under the decoding's scoring), with the
        n-best list; or, for an empty or unreadable article, `error`."""

        headline: str | None = None
        score: float | None = None
        n_best: list[dict[str, Any]] | None = None
        error: str | None = None

    class HeadlinesResponse(BaseModel):
        model: str
        decoding: str
        headlines: list[Headline]

    @app.post(
        "/v1/models/{name}/headlines",
        response_model=HeadlinesResponse,
        response_model_exclude_none=True,
        responses=refusals(*MODEL_REFUSALS),
        summary="Headlines for articles, in input order",
    )
    async def headlines(name: str, body: HeadlinesRequest, request: Request) -> dict[str, Any]:
        model = requests.served(name, "headlines")
        options = request_options(model, body.decoding)
        articles = [make_article(i + 1, i, text) for i, text in enumerate(body.articles)]
        good = [article for article in articles if not article.error]
        requests.budget.charge(client_address(request.scope), model.cost(options, len(good)))
        lists = await asyncio.gather(*(requests.decode(model, a.text, options) for a in good))
        by_line = {article.line: n_best for article, n_best in zip(good, lists, strict=True)}
        results = [article_result(a, by_line.get(a.line, [])) for a in articles]
        return {
            "model": name,
            "decoding": describe_options(options),
            "headlines": [
                {"error": r.error} if r.error else candidates_record(r.candidates, True)
                for r in results
            ],
        }
