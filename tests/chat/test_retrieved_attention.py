"""The picture of a retrieved reply is something true: the model's attention while it reads
the message and is fed the reply's tokens (teacher-forced), labelled so, never the zeros a
retrieved candidate carries; through `s2s attention`, `POST /attention`, `/why` and
`nlp.api`, on the tiny chat model with the tuned retrieval settings (whose server also
says in its model list that the model does not generate)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from s2s.cli import main
from tests.conftest import serve_args, serving

MESSAGE = "how are you today?"  # words many training posts share: retrieval finds replies


def recording(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[tuple[Any, ...]]:
    """`module.render_attention_png` drawing as before, each call's attention and title kept."""
    drawn: list[tuple[Any, ...]] = []
    real: Callable[..., bytes] = module.render_attention_png

    def render(source: Any, output: Any, attention: Any, **kwargs: Any) -> bytes:
        drawn.append((np.asarray(attention), kwargs.get("text")))
        return real(source, output, attention, **kwargs)

    monkeypatch.setattr(module, "render_attention_png", render)
    return drawn


def assert_scored(attention: np.ndarray, title: Any) -> None:
    """Attention weights of a real pass (not zeros, each reply token's row a distribution),
    in a picture titled as the model scoring the reply."""
    assert attention.size and attention.any()
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-3)
    assert "scoring a retrieved reply (teacher-forced)" in getattr(title, "title", "")


def test_s2s_attention_draws_a_retrieved_reply_as_the_model_scores_it(
    retrieving_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from nlp.chat import attention_plot

    drawn = recording(monkeypatch, attention_plot)
    out = tmp_path / "a.png"
    assert main(["attention", "--model", str(retrieving_bundle), "--text", MESSAGE,
                 "--out", str(out)]) == 0
    [(attention, title)] = drawn
    assert_scored(attention, title)
    said = capsys.readouterr().out
    assert "a retrieved reply, training pair dialogue-en.jsonl:" in said
    assert "teacher-forced" in said


@pytest.fixture(scope="module")
def server(retrieving_bundle: Path) -> Iterator[str]:
    from nlp.serving.http.command import build_app

    with serving(build_app(serve_args("--model", f"chat={retrieving_bundle}"))) as url:
        yield url


def test_the_server_draws_a_retrieved_reply_as_the_model_scores_it(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nlp.chat import responder
    from nlp.serving.http.routes import attention as api

    drawn = recording(monkeypatch, api)
    why_drawn = recording(monkeypatch, responder)
    with httpx.Client(base_url=server, timeout=120) as client:
        picture = client.post("/v1/models/chat/attention", json={"text": MESSAGE})
        assert picture.status_code == 200 and picture.headers["x-s2s-provenance"] == "retrieved"
        chat = client.post("/v1/models/chat/chat", json={"message": MESSAGE}).json()
        assert chat["provenance"] == "retrieved"
        why = client.post("/v1/models/chat/chat", json={
            "conversation": chat["conversation"], "message": "/why"}).json()
        last = client.post("/v1/models/chat/attention",
                           json={"conversation": chat["conversation"]})
    [(attention, title)] = drawn
    assert_scored(attention, title)
    assert len(why_drawn) == 2  # the /why message and the conversation's picture
    for attention, title in why_drawn:
        assert_scored(attention, title)
    assert base64.b64decode(why["picture_png_base64"]).startswith(b"\x89PNG")
    assert chat["pair"] in why["reply"] and "teacher-forced" in why["reply"]
    assert last.status_code == 200 and last.content.startswith(b"\x89PNG")


def test_the_servers_model_list_says_the_model_does_not_generate(server: str) -> None:
    [model] = httpx.get(f"{server}/v1/models", timeout=60).json()["models"]
    assert model["decoding"]["replies"].startswith(
        "Replies: one of the replies people wrote to the 10 training posts nearest")
    assert model["decoding"]["replies"].endswith("the model does not generate.")


def test_the_api_gives_a_retrieved_replys_attention_as_the_model_scores_it(
    retrieving_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nlp.api import Model
    from nlp.api import model as api_model

    with Model.load(retrieving_bundle) as model:
        attention = model.attention(MESSAGE)
    assert attention.provenance == "retrieved"
    assert attention.weights.shape == (len(attention.output_tokens),
                                       len(attention.source_tokens))
    drawn = recording(monkeypatch, api_model)
    assert attention.png().startswith(b"\x89PNG")
    [(weights, title)] = drawn
    assert_scored(weights, title)
