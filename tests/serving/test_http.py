"""`s2s serve`: the real HTTP server (uvicorn on 127.0.0.1) with tiny trained models.

One server for the module, built by the command's own `build_app` from parsed `s2s serve`
flags: a chat model and a Chinese headline model, a bearer token, at most one model request
in flight (so saturation is deterministic: a request whose body has not finished arriving
holds the one place), small text and body limits. The rate limit, CORS and conversation
expiry are checked on the gate and the conversation table with a fake clock.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.exceptions import HTTPException

from nlp.chat.responder import ChatResponder
from nlp.chat.settings import ChatSettings, SettingsStore
from nlp.decoding import DecodeOptions
from nlp.generation.decode_settings import DecodeSettings, recommended_options
from nlp.generation.loading import LoadedModel
from nlp.serving.http.api import gated_app
from nlp.serving.http.budget import CostBudget
from nlp.serving.http.config import ServeConfig
from nlp.serving.http.conversations import Conversations, UnknownConversation
from nlp.serving.http.metrics import ServeMetrics
from nlp.serving.http.models import ServedModel
from nlp.util.config import DataConfig
from s2s.cli import main as s2s_main
from tests.conftest import REPO, serve_args, serving
from tests.fakes.fake_generators import FakeGenerator, fake_model

TOKEN = "test-token-3f9a"
PNG = b"\x89PNG\r\n\x1a\n"
ARTICLES = [
    "国家统计局今天发布数据，一季度国内生产总值同比增长百分之五点三，经济运行开局良好。",
    "",
    "北京市教委宣布，今年秋季起全市中小学将增加体育课时，每天保证学生锻炼一小时。",
    "某公司发布新款手机，售价三千元，支持快速充电。",
]


@pytest.fixture(scope="module")
def server(
    tiny_bundle: Path, tiny_headline_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from nlp.serving.http.command import build_app

    token_file = tmp_path_factory.mktemp("serve") / "token"
    token_file.write_text(TOKEN + "\n")
    args = serve_args(
        "--model", f"chat={tiny_bundle}", "--model", f"news={tiny_headline_bundle}",
        "--token-file", str(token_file), "--max-in-flight", "1", "--rate-burst", "10000",
        "--max-text-chars", "300", "--max-articles", "6", "--max-body-bytes", "4000",
    )
    with serving(build_app(args)) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    ) as client:
        yield client


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples `name` with these labels (among others) in /metrics' text,
    read with prometheus_client's own parser (0 when absent)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def test_health_and_page_need_no_token_and_the_api_does(server: str) -> None:
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok", "models": ["chat", "news"]}
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="chat-input"' in page.text
    script = httpx.get(f"{server}/static/app.js")
    assert script.status_code == 200 and "/v1/models" in script.text
    assert "http" not in re.sub(r"//.*", "", page.text.split("<body>")[1])  # nothing remote
    with httpx.stream("GET", f"{server}/fonts/cjk.otf") as font:  # Chinese without a CJK font
        assert font.status_code == 200 and font.headers["content-type"] == "font/otf"
        assert next(font.iter_bytes(4))[:4] == b"OTTO"
    assert "/fonts/cjk.otf" in httpx.get(f"{server}/static/style.css").text
    for path in ("/v1/models", "/metrics"):
        refused = httpx.get(f"{server}{path}")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        wrong = httpx.get(f"{server}{path}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    chat = httpx.post(f"{server}/v1/models/chat/chat", json={"conversation": "a", "message": "hi"})
    assert chat.status_code == 401


def test_models_lists_tasks_languages_decoding_and_metadata(client: httpx.Client) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert models["chat"]["task"] == "chat" and models["news"]["task"] == "headline"
    assert models["chat"]["endpoints"] == ["chat", "attention"]
    assert models["news"]["endpoints"] == ["headlines", "attention"]
    assert models["news"]["languages"] == ["zh"] and "en" in models["chat"]["languages"]
    news = models["news"]["decoding"]
    assert news["options"]["no_repeat_ngram"] == 1  # the headline task's bundle settings
    assert news["origin"].startswith("defaults for data.task=headline")
    assert models["chat"]["decoding"]["options"]["strategy"] == "beam"
    assert models["news"]["metadata"]["task"] == "headline" and "files" not in models["news"]
    schema = client.get("/openapi.json").json()
    assert "/v1/models/{name}/headlines" in schema["paths"]
    assert "beam_size" in json.dumps(schema["components"]["schemas"]["DecodingOverrides"])


def test_models_list_the_decoding_maximums_and_a_value_at_one_is_served(
    client: httpx.Client,
) -> None:
    from nlp.decoding.options import option_maximums

    maximums = option_maximums()
    assert {"beam_size", "beam_groups", "max_length", "n_best"} <= set(maximums)
    for model in client.get("/v1/models").json()["models"]:
        assert model["decoding"]["maximums"] == maximums
    at_bound = client.post("/v1/models/news/headlines", json={
        "articles": [ARTICLES[0]], "decoding": {"max_length": maximums["max_length"]}})
    assert at_bound.status_code == 200, at_bound.text
    schema = client.get("/openapi.json").json()["components"]["schemas"]["DecodingOverrides"]
    beam = json.dumps(schema["properties"]["beam_size"])
    assert f'"maximum": {maximums["beam_size"]}' in beam  # the contract says so too
    whole = client.post("/v1/models/news/headlines", json={  # JSON Schema's integer 3.0
        "articles": [ARTICLES[0]], "decoding": {"beam_size": 3.0, "n_best": 2}})
    assert whole.status_code == 200 and len(whole.json()["headlines"][0]["n_best"]) == 2


def strings_in(value: object) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


# An absolute path (POSIX, home-relative or Windows) anywhere in a string.
PATH_LIKE = re.compile(r"(^|[\s\"'(=:])(/|~/|[A-Za-z]:\\)[^\s/\\]+[/\\]")


def local_paths(value: object, *machine_dirs: Path) -> list[str]:
    """The strings of `value` that look like a path of this machine."""
    dirs = [str(d) for d in machine_dirs]
    return [s for s in strings_in(value) if PATH_LIKE.search(s) or any(d in s for d in dirs)]


def test_models_show_no_local_paths(
    client: httpx.Client, tiny_bundle: Path, tiny_headline_bundle: Path
) -> None:
    listing = client.get("/v1/models").json()
    machine = (REPO, tiny_bundle.parent, tiny_headline_bundle.parent, Path.home(),
               Path(tempfile.gettempdir()))
    assert local_paths(listing, *machine) == []
    news = {m["name"]: m for m in listing["models"]}["news"]["metadata"]
    assert news["task"] == "headline" and news["metrics"]["valid_loss"] > 0  # still useful


def test_a_retrained_models_metadata_loses_its_paths_too(tmp_path: Path) -> None:
    from nlp.serving.http.models import ServedModel

    metadata = {  # what `s2s retrain` with word vectors writes (nlp/training/run.py)
        "format": 1, "created": "2026-01-01T00:00:00Z", "task": "chat",
        "versions": {"tensorflow": "2.21.0"},
        "retrained_from": str(tmp_path / "old" / "model"),
        "corpus": {"train": [{"path": str(tmp_path / "chats.jsonl"), "sha256": "ab" * 32}],
                   "valid_file": str(tmp_path / "run" / "valid.jsonl"),
                   "old_valid_file": str(tmp_path / "run" / "old_valid.jsonl")},
        "pairs": {"context_turns": 2},
        "pretrained_embeddings": {"source": str(tmp_path / "vec.txt"), "format": "text",
                                  "sha256": "cd" * 32, "vocab_coverage": 0.5},
        "pretrained_embeddings_new_rows": {"source": "C:\\vectors\\vec.txt"},
        "metrics": {"epoch": 3, "valid_loss": 3.2},
    }
    loaded = fake_model()
    responder = ChatResponder(loaded, store=SettingsStore(":memory:", ChatSettings()))
    model = ServedModel("m", tmp_path, "chat", None, responder, loaded.generator, metadata)
    shown = model.describe()
    assert local_paths(shown, tmp_path) == []
    assert shown["metadata"]["metrics"] == {"epoch": 3, "valid_loss": 3.2}
    assert shown["metadata"]["corpus_sha256"] == ["ab" * 32]


def test_the_server_issues_unguessable_conversation_ids_and_refuses_others(
    client: httpx.Client,
) -> None:
    first = client.post("/v1/models/chat/chat", json={"message": "/beam 2"})
    assert first.status_code == 200, first.text
    issued = first.json()["conversation"]
    other = client.post("/v1/models/chat/chat", json={"message": "/settings"}).json()
    assert issued != other["conversation"]
    for conversation in (issued, other["conversation"]):  # secrets.token_urlsafe(16) or more
        assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", conversation)
    kept = client.post("/v1/models/chat/chat",
                       json={"conversation": issued, "message": "/settings"})
    assert kept.status_code == 200 and "beam size 2" in kept.json()["reply"]
    for path, body in (
        ("/v1/models/chat/chat", {"conversation": "c1", "message": "/reset"}),
        ("/v1/models/chat/attention", {"conversation": "c1"}),
        ("/v1/models/news/attention", {"conversation": issued}),  # issued by another model
    ):
        guessed = client.post(path, json=body)
        assert guessed.status_code == 404, guessed.text
        assert "conversation" in guessed.json()["detail"]


def test_chat_keeps_settings_and_context_per_conversation(client: httpx.Client) -> None:
    first = client.post("/v1/models/chat/chat", json={"message": "hello"})
    assert first.status_code == 200
    c1 = first.json()["conversation"]
    assert first.json()["reply"].strip()
    changed = client.post("/v1/models/chat/chat", json={"conversation": c1, "message": "/beam 2"})
    assert "beam size 2" in changed.json()["reply"]
    assert "beam size 2" in client.post(
        "/v1/models/chat/chat", json={"conversation": c1, "message": "/settings"}
    ).json()["reply"]
    other = client.post("/v1/models/chat/chat", json={"message": "/settings"})
    # a new one keeps the model's own settings (beam 5)
    assert "beam size 5" in other.json()["reply"]
    why = client.post("/v1/models/chat/chat", json={"conversation": c1, "message": "/why"})
    assert why.json()["picture_png_base64"]  # the picture of c1's last reply


def test_headlines_equal_the_batch_job_for_the_same_inputs_and_options(
    client: httpx.Client, tiny_headline_bundle: Path, tmp_path: Path
) -> None:
    source = tmp_path / "articles.txt"
    source.write_text("\n".join(ARTICLES) + "\n", "utf-8")
    cases = [({}, []), ({"beam_size": 3, "n_best": 2}, ["--beam", "3", "--n-best", "2"]),
             ({"strategy": "greedy"}, ["--greedy"])]
    for decoding, flags in cases:
        out = tmp_path / "out.jsonl"
        code = s2s_main(["headlines", "--model", str(tiny_headline_bundle), str(source),
                         "-o", str(out), "--quiet", *flags])
        assert code == 0
        expected = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
        answer = client.post(
            "/v1/models/news/headlines", json={"articles": ARTICLES, "decoding": decoding}
        )
        assert answer.status_code == 200, answer.text
        got = answer.json()["headlines"]
        assert len(got) == len(ARTICLES) == len(expected)
        for mine, theirs in zip(got, expected, strict=True):
            if "error" in theirs:
                assert mine == {"error": theirs["error"]} == {"error": "empty article"}
                continue
            assert (mine["headline"], mine["score"]) == (theirs["headline"], theirs["score"])
            assert mine["n_best"] == theirs.get("n_best", mine["n_best"][:1])
            assert len(mine["n_best"]) == decoding.get("n_best", 1)


def test_attention_draws_text_and_conversation_outputs(client: httpx.Client) -> None:
    picture = client.post("/v1/models/news/attention", json={"text": ARTICLES[0]})
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content.startswith(PNG) and picture.headers["x-s2s-output"]
    # the conversation's last reply, generated or retrieved (then the model's attention while
    # scoring it): a picture either way, named by its provenance
    conversation = client.post("/v1/models/chat/chat", json={"message": "/beam 5"}).json()
    att = client.post("/v1/models/chat/chat", json={
        "conversation": conversation["conversation"], "message": "good morning"}).json()
    assert att["provenance"] in ("generated", "retrieved") and att["reply"].strip()
    last = client.post("/v1/models/chat/attention", json={"conversation": att["conversation"]})
    assert last.status_code == 200 and last.content.startswith(PNG)
    never = client.post("/v1/models/chat/chat", json={"message": "/settings"}).json()
    none_yet = client.post("/v1/models/chat/attention",
                           json={"conversation": never["conversation"]})
    # a 409, as the schema says: the conversation exists (a 404 says it does not)
    assert none_yet.status_code == 409 and "no reply" in none_yet.json()["detail"]
    documented = client.get("/openapi.json").json()["paths"]["/v1/models/{name}/attention"]
    assert "409" in documented["post"]["responses"]
    both = client.post("/v1/models/chat/attention",
                       json={"text": "hi", "conversation": att["conversation"]})
    assert both.status_code == 422 and "exactly one" in both.text
    # options that neither write nor retrieve: said of the options, not blamed on the text
    nothing = client.post("/v1/models/chat/attention", json={
        "text": "hello, how are you?", "decoding": {"generated": False, "retrieve": 0}})
    assert nothing.status_code == 422 and "neither write nor retrieve" in nothing.text


@pytest.mark.parametrize(
    ("path", "body", "status", "names"),
    [
        ("/v1/models/nope/chat", {"conversation": "x", "message": "hi"}, 404, "served: chat, news"),
        ("/v1/models/news/chat", {"conversation": "x", "message": "hi"}, 404, "headline model"),
        ("/v1/models/chat/headlines", {"articles": ["a"]}, 404, "chat model"),
        ("/v1/models/chat/chat", {"conversation": "x", "message": "w" * 301}, 422, "message"),
        ("/v1/models/chat/chat", {"conversation": "", "message": "hi"}, 422, "conversation"),
        ("/v1/models/chat/chat", {"conversation": "x"}, 422, "message"),
        ("/v1/models/news/headlines", {"articles": ["a"] * 7}, 422, "articles"),
        ("/v1/models/news/headlines", {"articles": []}, 422, "articles"),
        ("/v1/models/news/headlines", {"articles": ["a"], "decoding": {"beam_size": 0}}, 422,
         "decoding.beam_size"),
        ("/v1/models/news/headlines", {"articles": ["a"], "decoding": {"beam": 3}}, 422,
         "decoding.beam"),
        ("/v1/models/news/headlines", {"articles": ["a"], "decoding": {"strategy": "best"}}, 422,
         "decoding.strategy"),
        ("/v1/models/news/headlines", {"articles": ["a"], "decoding": {"beam_size": "3"}}, 422,
         "decoding.beam_size"),
        ("/v1/models/news/headlines",
         {"articles": ["a"], "decoding": {"beam_size": 2, "n_best": 3}}, 422, "decoding.n_best"),
        ("/v1/models/news/headlines", {"articles": ["a"], "decoding": {"rerank": "mmi-bidi"}},
         422, "companion"),
        ("/v1/models/news/attention", {"text": "a", "decoding": {"top_p": 2.0}}, 422,
         "decoding.top_p"),
        # beyond the options' maximums: one request must not hold the model's only thread
        ("/v1/models/news/headlines", {"articles": ["a"], "decoding": {"max_length": 100000}},
         422, "decoding.max_length"),
        ("/v1/models/news/headlines", {"articles": ["a"], "decoding": {"beam_size": 17}}, 422,
         "decoding.beam_size"),
        ("/v1/models/news/attention",
         {"text": "a", "decoding": {"strategy": "sample", "n_best": 17}}, 422, "decoding.n_best"),
        ("/v1/models/news/headlines",  # a beam rounded up to 17 whole groups of one
         {"articles": ["a"], "decoding": {"strategy": "diverse_beam", "beam_groups": 17}}, 422,
         "decoding.beam_groups"),
        # beyond what the decoder takes, not a number, or null: a 422, never a 500
        ("/v1/models/news/headlines", {"articles": ["a"], "decoding": {"top_k": 2**31}}, 422,
         "decoding.top_k"),
        ("/v1/models/news/attention", {"text": "a", "decoding": {"top_k": 3 * 10**9}}, 422,
         "decoding.top_k"),
        ("/v1/models/news/attention", {"text": "a", "decoding": {"temperature": float("nan")}},
         422, "decoding.temperature: Input should be a finite number"),
        ("/v1/models/news/headlines",
         {"articles": ["a"], "decoding": {"coverage_penalty": 1e308}}, 422,
         "decoding.coverage_penalty: Input should be less than or equal to"),
        ("/v1/models/news/headlines",
         {"articles": ["a"], "decoding": {"bm25_weight": float("-inf")}}, 422,
         "decoding.bm25_weight: Input should be a finite number"),
        ("/v1/models/news/headlines", {"articles": ["a"], "decoding": {"bm25_weight": -1e308}},
         422, "decoding.bm25_weight: Input should be greater than or equal to 0"),
        ("/v1/models/news/headlines", {"articles": ["a"], "decoding": {"max_length": None}}, 422,
         "decoding.max_length: Input should be a valid integer"),
        ("/v1/models/news/attention", {"text": "   "}, 422, "text: the text has no tokens"),
    ],
)
def test_bad_requests_get_4xx_naming_what_is_wrong(
    client: httpx.Client, path: str, body: dict[str, object], status: int, names: str
) -> None:
    answer = client.post(  # json.dumps writes NaN and Infinity as Python's json reads them
        path, content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    shown = detail if isinstance(detail, str) else "; ".join(
        ".".join(map(str, e["loc"][1:])) + ": " + e["msg"] for e in detail
    )
    assert names in shown, shown


def test_malformed_json_and_oversized_bodies(client: httpx.Client, server: str) -> None:
    broken = client.post(
        "/v1/models/chat/chat", content=b'{"conversation": "x", "message": ',
        headers={"Content-Type": "application/json"},
    )
    # the schema's 400 ("the body cannot be read as JSON"), not a 422 naming no field
    assert broken.status_code == 400, broken.text
    assert broken.json()["detail"].startswith("the body cannot be read as JSON")
    big = client.post("/v1/models/news/headlines", json={"articles": ["字" * 2000]})
    assert big.status_code == 413 and "4000 bytes" in big.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is counted as it arrives
        yield b'{"articles": ["'
        for _ in range(50):
            yield b"x" * 100
        yield b'"]}'

    chunked = client.post("/v1/models/news/headlines", content=chunks(),
                          headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert client.get("/healthz").status_code == 200  # and the process is still there
    assert metric(client.get("/metrics").text, "s2s_http_errors_total", kind="too_large") >= 2


def test_a_full_server_answers_503_with_retry_after_at_once(
    client: httpx.Client, server: str
) -> None:
    port = int(server.rsplit(":", 1)[1])
    held = socket.create_connection(("127.0.0.1", port))
    try:  # headers and half a body: the request holds the only place until the body ends
        body = json.dumps({"message": "hello there"}).encode()
        held.sendall(
            b"POST /v1/models/chat/chat HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        deadline = time.monotonic() + 10
        while metric(client.get("/metrics").text, "s2s_http_in_flight") < 1:
            assert time.monotonic() < deadline, "the held request never got in"
            time.sleep(0.02)
        started = time.monotonic()
        busy = client.post("/v1/models/news/headlines", json={"articles": ["a"]})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert time.monotonic() - started < 2  # refused at once, not queued
        assert client.get("/v1/models").status_code == 200  # cheap routes still answer
        held.sendall(body[10:])
        answer = held.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 200")
    finally:
        held.close()
    assert client.post("/v1/models/news/headlines", json={"articles": ["a"]}).status_code == 200
    text = client.get("/metrics").text
    assert metric(text, "s2s_http_errors_total", kind="saturated") >= 1
    assert metric(text, "s2s_http_requests_total", endpoint="headlines", model="news",
                  status="200") >= 1
    assert metric(text, "s2s_http_request_seconds_count", endpoint="chat") >= 1
    assert metric(text, "s2s_decode_batch_size_count", model="news") >= 1
    # the generators' time by stage, read from their clocks at the scrape
    assert metric(text, "s2s_generation_stage_seconds_total", model="news", stage="decode") > 0
    assert metric(text, "s2s_generation_stage_seconds_total", model="chat", stage="decode") > 0
    assert metric(text, "s2s_generation_stage_calls_total", model="news", stage="decode") >= 1


def gate_only(config: ServeConfig, clock: list[float]) -> object:
    """The gated app without models, its rate limiter on a clock the test moves."""
    from nlp.serving.http.gate import AdmissionGate

    app = gated_app({}, config, ServeMetrics())
    gate = app if isinstance(app, AdmissionGate) else app.app
    gate._limiter._clock = lambda: clock[0]
    return app


async def test_rate_limit_refuses_a_client_beyond_its_burst_and_recovers() -> None:
    clock = [0.0]
    app = gate_only(ServeConfig(rate_burst=2, rate_per_minute=30), clock)
    transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert [(await client.get("/v1/models")).status_code for _ in range(2)] == [200, 200]
        refused = await client.get("/v1/models")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
        assert (await client.get("/healthz")).status_code == 200  # not rate limited
        clock[0] += 2.0  # 30 a minute: one more after two seconds
        assert (await client.get("/v1/models")).status_code == 200


async def test_cors_headers_only_for_the_given_origin() -> None:
    clock = [0.0]
    for origins, allowed in (((), None), (("https://app.example",), "https://app.example")):
        app = gate_only(ServeConfig(cors_origins=origins, token="t"), clock)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                       "Access-Control-Request-Headers": "authorization"}
            preflight = await client.options("/v1/models/x/chat", headers=headers)
            assert preflight.headers.get("access-control-allow-origin") == allowed
            refused = await client.get("/v1/models", headers={"Origin": "https://app.example"})
            assert refused.status_code == 401
            assert refused.headers.get("access-control-allow-origin") == allowed


async def test_conversations_expire_and_are_bounded_and_the_responder_forgets_them() -> None:
    store = SettingsStore(":memory:", ChatSettings())
    responder = ChatResponder(fake_model(), store=store)
    clock = [0.0]
    table = Conversations(responder.forget, max_size=2, ttl=60, clock=lambda: clock[0])
    a, b = table.open(), table.open()
    for chat in (a, b):
        async with table.lock(chat):
            await responder.respond(chat, "/beam 3")
    assert store.get(a).beam_size == 3
    clock[0] = 30
    table.lock(b)  # b used again: a is now the least recently used
    c = table.open()  # a third conversation: a is dropped
    assert a not in table and store.get(a) == store.defaults and len(table) == 2
    assert store.get(b).beam_size == 3
    with pytest.raises(UnknownConversation):  # and its id is refused from now on
        table.lock(a)
    clock[0] = 200  # b and c idle past the TTL
    assert b not in table and c not in table and store.get(b) == store.defaults
    assert len(table) == 0
    await responder.aclose()


def test_serve_help_and_the_command_in_a_process(tiny_bundle: Path, tmp_path: Path) -> None:
    parser_help = subprocess.run(
        [sys.executable, "-m", "s2s.cli", "serve", "--help"], cwd=REPO, capture_output=True,
        text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    ).stdout
    for text in ("--model NAME=DIR", "/v1/models/NAME/headlines", "--token-file", "--max-in-flight",
                 "127.0.0.1"):
        assert text in parser_help
    secret = "process-secret-91c2"
    token_file = tmp_path / "token"
    token_file.write_text(secret)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "s2s.cli", "serve", "--model", f"bot={tiny_bundle}",
         "--port", str(port), "--token-file", str(token_file)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "s2s serve did not come up"
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        reply = httpx.post(f"{url}/v1/models/bot/chat", timeout=60,
                           headers={"Authorization": f"Bearer {secret}"},
                           json={"message": "hello"})
        assert reply.status_code == 200 and reply.json()["reply"]
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "POST /v1/models/bot/chat" in output and secret not in output


def fake_served(task: str, options: DecodeOptions | None = None) -> ServedModel:
    """A served model around the fakes' generators, tuned to `options` (default: the
    defaults); build it in the test's event loop."""
    loaded = fake_model() if task == "chat" else LoadedModel(
        FakeGenerator(words=3), DataConfig(task="headline"))
    settings = DecodeSettings(options, "tests") if options is not None else None
    base = recommended_options(settings)  # as `load_served_model` starts every request
    responder = ChatResponder(
        loaded, store=SettingsStore(":memory:", ChatSettings.from_options(base)),
        base_options=base,
    )
    return ServedModel(task, Path(task), task, settings, responder, loaded.generator)


def from_address(app: object, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 1234))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_a_requests_decoding_work_is_bounded_and_one_client_cannot_take_it_all() -> None:
    """64 articles of beam 16 and 200 tokens held a model for 18 s while a one-line chat
    waited: the product (texts x beam x length) is bounded, and each client has a budget."""
    news, chat = fake_served("headline"), fake_served("chat")
    # an article at the defaults (beam 5, 30 tokens) costs 150; the refill is negligible here
    config = ServeConfig(max_request_cost=1000, cost_per_minute=60, rate_burst=100)
    app = gated_app({"news": news, "chat": chat}, config, ServeMetrics())
    async with from_address(app, "10.0.0.1") as greedy, from_address(app, "10.0.0.2") as other:
        too_big = await greedy.post("/v1/models/news/headlines", json={"articles": ["a b"] * 7})
        assert too_big.status_code == 413
        assert "1,050" in too_big.json()["detail"]
        assert "--max-request-cost" in too_big.json()["detail"]
        articles = {"articles": ["a b c"] * 6}
        assert (await greedy.post("/v1/models/news/headlines", json=articles)).status_code == 200
        spent = await greedy.post("/v1/models/news/headlines", json=articles)
        assert spent.status_code == 429 and int(spent.headers["retry-after"]) >= 60
        assert "--cost-per-minute" in spent.json()["detail"]
        small = {"articles": ["a b c"], "decoding": {"max_length": 5}}  # 25 of the 100 left
        assert (await greedy.post("/v1/models/news/headlines", json=small)).status_code == 200
        reply = await other.post("/v1/models/chat/chat", json={"message": "hello"})
        assert reply.status_code == 200 and reply.json()["reply"]  # the others are served
        # a spent budget counts as rate-limited, as the gate's own limit does (client_error)
        text = (await other.get("/metrics")).text
        assert metric(text, "s2s_http_errors_total", kind="rate_limited") >= 1
    for model in (news, chat):
        await model.responder.aclose()


async def test_a_retrieval_only_message_costs_less_than_one_that_generates() -> None:
    """A chat tuned to retrieved replies decodes nothing: it was charged 150 decoder steps
    all the same, like a chat that generates."""
    retrieving = fake_served("chat", DecodeOptions(generated=False, retrieve=10,
                                                   rerank="retrieval"))
    generating = fake_served("chat")
    config = ServeConfig(max_request_cost=100, rate_burst=100)
    app = gated_app({"retrieving": retrieving, "generating": generating}, config, ServeMetrics())
    async with from_address(app, "10.0.0.1") as client:
        hello = {"message": "hello"}
        assert (await client.post("/v1/models/retrieving/chat", json=hello)).status_code == 200
        refused = await client.post("/v1/models/generating/chat", json=hello)
        assert refused.status_code == 413 and "150" in refused.json()["detail"]
    for model in (retrieving, generating):
        await model.responder.aclose()


async def test_a_chat_cannot_set_itself_beyond_the_cost_limit_and_commands_are_free() -> None:
    """`/beam 16` and `/length 200` were accepted under a lower --max-request-cost, and every
    message after them was refused with 413, `/beam 1`, `/settings default` and `/reset`
    included, since each was charged the decoding of the chat's settings."""
    chat = fake_served("chat")  # beam 5 and 30 tokens: 150 a message
    config = ServeConfig(max_request_cost=3000, cost_per_minute=60, rate_burst=100)
    app = gated_app({"chat": chat}, config, ServeMetrics())
    async with from_address(app, "10.0.0.1") as client:

        async def send(message: str) -> httpx.Response:
            return await client.post("/v1/models/chat/chat",
                                     json={"conversation": conversation, "message": message})

        first = await client.post("/v1/models/chat/chat", json={"message": "hello"})
        conversation = first.json()["conversation"]
        assert (await send("/beam 16")).status_code == 200  # 16 x 30 = 480
        refused = await send("/length 200")  # 16 x 200 = 3,200
        assert refused.status_code == 200
        assert "kept the settings" in refused.json()["reply"]
        assert "3,200" in refused.json()["reply"] and "3,000" in refused.json()["reply"]
        assert "at most 30 tokens" in (await send("/settings")).json()["reply"]
        assert (await send("hi")).status_code == 200  # 480 of the 3,000 - 150 left
        for _ in range(5):
            await send("hi")
        assert (await send("hi")).status_code == 429  # the budget is spent
        assert (await send("/why")).status_code == 429  # it reads the reply with the model
        for command in ("/beam 1", "/settings default", "/reset", "/help"):
            assert (await send(command)).status_code == 200, command
    await chat.responder.aclose()


async def test_retrieving_more_replies_for_a_ranker_that_reads_them_costs_more() -> None:
    """`retrieve` 50 with the likelihood ranker scores 50 replies with the chat model: it
    was charged as if nothing but the decoder ran, the same as `retrieve` 10."""
    news = fake_served("headline")
    config = ServeConfig(max_request_cost=1000, rate_burst=100)
    app = gated_app({"news": news}, config, ServeMetrics())
    async with from_address(app, "10.0.0.1") as client:
        statuses = []
        for retrieve in (10, 50):
            decoding = {"retrieve": retrieve, "rerank": "likelihood"}
            answer = await client.post("/v1/models/news/headlines",
                                       json={"articles": ["a b c"], "decoding": decoding})
            statuses.append(answer.status_code)
    assert statuses == [200, 413]
    assert "retrieve" in answer.json()["detail"]
    await news.responder.aclose()


def test_the_cost_counts_each_pass_that_runs() -> None:
    from nlp.serving.http.budget import request_cost

    retrieval_only = DecodeOptions(generated=False, retrieve=10, rerank="retrieval")
    assert request_cost(retrieval_only) == 10 + 10  # looked up, scored by BM25 (SCALING.md)
    assert request_cost(retrieval_only) < request_cost(DecodeOptions()) == 5 * 30
    # a retrieve-and-refine model decodes whatever `generated` says
    assert request_cost(retrieval_only, refines=True) > request_cost(DecodeOptions())
    ten, fifty = (DecodeOptions(retrieve=k, rerank="likelihood") for k in (10, 50))
    assert request_cost(fifty) > request_cost(ten) > request_cost(DecodeOptions())
    assert request_cost(ten, reply_tokens=60) > request_cost(ten)  # a model's longer replies
    # the companion reads every candidate once more: the decoder's 5 and the 10 retrieved
    plain = DecodeOptions(n_best=5, retrieve=10)
    for companion in ("mmi-bidi", "mmi-antilm"):
        with_companion = dataclasses.replace(plain, rerank=companion)
        assert request_cost(with_companion) - request_cost(plain) == 5 * 30 + 10 * 30
    # without retrieved replies, MMI reads the decoder's 5 with the companion alone
    assert (request_cost(DecodeOptions(n_best=5, rerank="mmi-bidi"))
            - request_cost(DecodeOptions(n_best=5))) == 5 * 30
    assert request_cost(DecodeOptions(), inputs=3) == 3 * request_cost(DecodeOptions())
    # PMI reads each written candidate against the message and 16 other posts; a fallback
    # threshold, the chat model's pass; the sentence encoder, each retrieved reply and post,
    # and the posts again for the gate's fit (none of them was charged)
    assert (request_cost(DecodeOptions(n_best=5, pmi_weight=1.0))
            - request_cost(DecodeOptions(n_best=5))) == 17 * 5 * 30
    assert (request_cost(DecodeOptions(n_best=5, fallback_threshold=0.5))
            - request_cost(DecodeOptions(n_best=5))) == 5 * 30
    mmi = DecodeOptions(n_best=5, rerank="mmi-antilm")  # the companion's pass, then the chat
    assert (request_cost(dataclasses.replace(mmi, fallback_threshold=0.5))  # model's too
            - request_cost(mmi)) == 5 * 30
    encoder = DecodeOptions(generated=False, retrieve=10, rerank="sentence-encoder")
    assert request_cost(encoder) == 10 + 2 * 10 * 30
    gated = dataclasses.replace(encoder, generated=True, retrieved_threshold=0.5)
    assert request_cost(gated) - request_cost(dataclasses.replace(
        encoder, generated=True)) == 10 * 30


def test_a_clients_decoding_budget_refills_at_its_rate() -> None:
    clock = [0.0]
    config = ServeConfig(max_request_cost=600, cost_per_minute=60)
    budget = CostBudget(config, clock=lambda: clock[0])
    budget.charge("a", 600)
    with pytest.raises(HTTPException) as refused:
        budget.charge("a", 300)
    assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "300"}
    budget.charge("b", 600)  # another client's budget is its own
    clock[0] = 300.0
    budget.charge("a", 300)


async def test_a_client_beyond_its_quota_drops_its_own_conversations_not_others() -> None:
    forgotten: list[str] = []
    table = Conversations(forgotten.append, max_size=3, ttl=60, per_owner=2)
    mine = table.open("10.0.0.1")
    flood = [table.open("10.0.0.9") for _ in range(50)]
    assert mine in table and flood[-2] in table and flood[-1] in table and len(table) == 3
    assert forgotten == flood[:-2]
    table.lock(flood[-2])  # used again: the stranger's other one goes next
    newest = table.open("10.0.0.9")
    assert forgotten[-1] == flood[-1] and flood[-1] not in table
    assert mine in table and flood[-2] in table and newest in table

    chat = fake_served("chat")
    config = ServeConfig(max_conversations=3, max_conversations_per_client=2)
    app = gated_app({"chat": chat}, config, ServeMetrics())
    async with from_address(app, "10.0.0.1") as me, from_address(app, "10.0.0.9") as stranger:
        hello = {"message": "hello"}
        started = (await me.post("/v1/models/chat/chat", json=hello)).json()["conversation"]
        theirs = [(await stranger.post("/v1/models/chat/chat", json=hello)).json()["conversation"]
                  for _ in range(3)]
        again = await me.post("/v1/models/chat/chat", json={"conversation": started, **hello})
        assert again.status_code == 200
        gone = await stranger.post("/v1/models/chat/chat",
                                   json={"conversation": theirs[0], **hello})
        assert gone.status_code == 404
    await chat.responder.aclose()


async def test_forwarded_addresses_count_only_from_the_trusted_proxies() -> None:
    """X-Forwarded-For from anyone, even 127.0.0.1, would let any local process pick a fresh
    rate limit with every request; only a proxy named by --trust-proxy may name the client."""
    for trusted, statuses in (((), [200, 429, 429]), (("127.0.0.0/8",), [200, 200, 429])):
        config = ServeConfig(rate_burst=1, rate_per_minute=1, trusted_proxies=trusted)
        async with from_address(gated_app({}, config, ServeMetrics()), "127.0.0.1") as client:
            got = [(await client.get("/v1/models", headers={"X-Forwarded-For": ip})).status_code
                   for ip in ("10.1.1.1", "10.2.2.2", "10.1.1.1")]
        assert got == statuses, trusted


async def test_a_proxy_in_a_trusted_network_names_the_client() -> None:
    """--trust-proxy takes networks (a proxy with a changing address in a container network):
    a proxy at 10.1.2.3 names the client under 10.0.0.0/8, and is the client under
    192.168.0.0/16. uvicorn before 0.31 took a network for a hostname and trusted nobody."""
    for network, client in (("10.0.0.0/8", "203.0.113.9"), ("192.168.0.0/16", "10.1.2.3")):
        config = ServeConfig(rate_burst=1, rate_per_minute=1, trusted_proxies=(network,))
        async with from_address(gated_app({}, config, ServeMetrics()), "10.1.2.3") as proxy:
            forwarded = {"X-Forwarded-For": "203.0.113.9"}
            assert (await proxy.get("/v1/models", headers=forwarded)).status_code == 200
            refused = await proxy.get("/v1/models", headers=forwarded)
        assert refused.status_code == 429
        assert f"too many requests from {client}:" in refused.json()["detail"], network


def test_serve_trusts_forwarded_headers_only_as_told(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from nlp.serving.http import command

    ran: dict[str, object] = {}
    monkeypatch.setattr(command, "build_app", lambda args: "app")
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: ran.update(options))
    assert command.run(serve_args("--model", "m=dir")) == 0
    assert ran["proxy_headers"] is False  # uvicorn's own default trusts 127.0.0.1
    args = serve_args("--model", "m=dir", "--trust-proxy", "10.0.0.5", "10.1.0.0/16")
    assert command.serve_config(args).trusted_proxies == ("10.0.0.5", "10.1.0.0/16")


def test_a_proxy_that_is_no_address_or_network_is_refused_by_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """uvicorn takes what is not an address or a network for a name no client has: the
    proxy would be trusted by nobody, silently."""
    from nlp.serving.http import command

    for proxy, hint in (("10.0.0.5/8", "give the network 10.0.0.0/8"),
                        ("proxy.local", "give an IP address or a network")):
        assert command.run(serve_args("--model", "m=dir", "--trust-proxy", proxy)) == 1
        error = capsys.readouterr().err
        assert f"--trust-proxy {proxy}: " in error and hint in error, error


async def test_a_conversations_attention_is_charged_to_the_clients_budget() -> None:
    """`POST /attention {"conversation": ...}` (the chat's /why: a teacher-forced pass and a
    drawing on the model's thread) was free, bounded only by the request rate; it is charged
    as a chat message is, after an unknown conversation's 404."""
    chat = fake_served("chat")
    # a chat message at the defaults costs 150 of the 300 a client holds: one message, one
    # picture, then refused (the refill is negligible here)
    config = ServeConfig(max_request_cost=300, cost_per_minute=60, rate_burst=100)
    app = gated_app({"chat": chat}, config, ServeMetrics())
    async with from_address(app, "10.0.0.1") as client:
        unknown = await client.post("/v1/models/chat/attention", json={"conversation": "nope"})
        assert unknown.status_code == 404
        said = await client.post("/v1/models/chat/chat", json={"message": "hello"})
        conversation = {"conversation": said.json()["conversation"]}
        drawn = await client.post("/v1/models/chat/attention", json=conversation)
        assert drawn.status_code == 200 and drawn.headers["content-type"] == "image/png"
        spent = await client.post("/v1/models/chat/attention", json=conversation)
        assert spent.status_code == 429 and "--cost-per-minute" in spent.json()["detail"]
    await chat.responder.aclose()


def test_a_decoding_error_names_the_model_not_its_directory() -> None:
    """A 422 passed the generator's message on: the bundle's directory on the server's disk
    (which /v1/models keeps private) and the command its owner would run."""
    from nlp.decoding.options import OptionError
    from nlp.serving.http.model_requests import public_message

    model = dataclasses.replace(fake_served("headline"), directory=Path("/srv/models/news"))
    error = OptionError(f"{model.directory}: no retrieval index in the bundle", "build one with "
                        f"`s2s index --model {model.directory} --corpus TRAINING-CORPUS`")
    said = public_message(error, model)
    assert str(model.directory) not in said and "s2s" not in said
    assert said == f"model {model.name!r}: no retrieval index in the bundle"
