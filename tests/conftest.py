"""Shared fixtures: tiny corpora and one tiny trained model bundle per test session; and the
`slow` mark for every test that uses a trained model fixture."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# the precision race's cache (nlp.training.precision) stays out of the user's home
os.environ["S2S_CACHE_DIR"] = tempfile.mkdtemp(prefix="s2s-cache-")
import nlp  # noqa: F401  (its TensorFlow defaults, before any test imports TensorFlow)

REPO = Path(__file__).resolve().parents[1]
SHARED_CORPORA = REPO.parent / "shared" / "corpora"
TEST_DATA = Path(__file__).resolve().parent / "data"  # files the tests read (tests/data)
# The smallest Transformer settings a test model takes (`model.architecture=transformer`)
TRANSFORMER = {"architecture": "transformer", "input_feeding": False, "heads": 2}


# The fixtures that train a model (once a session, but a fast loop should not pay even once).
# A test using one of them, directly or through another fixture, is marked `slow` here: the
# one place that says so, since pytest cannot mark a test through its fixtures.
TRAINED_MODEL_FIXTURES = frozenset({"tiny_bundle", "tiny_headline_bundle"})


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TRAINED_MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def write_jsonl(path: Path, pairs: Sequence[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for source, target in pairs:
            handle.write(
                json.dumps({"source": source, "target": target}, ensure_ascii=False) + "\n"
            )
    return path


def tiny_overrides(**extra: object) -> list[str]:
    """Settings for models that train in seconds (units 8-32)."""
    settings = {
        "model.units": 16,
        "model.embedding_dim": 16,
        "model.dropout": 0.0,
        "train.batch_size": 16,
        "train.epochs": 1,
        "train.learning_rate": 0.005,
        **extra,
    }
    return [f"{key}={value}" for key, value in settings.items()]


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chat model trained for one epoch on the shipped English dialogue sample."""
    from nlp.training.corpus_io import CorpusSpec
    from nlp.training.run import RunOptions, train
    from nlp.util.config import ExperimentConfig

    out = tmp_path_factory.mktemp("tiny_run")
    config = ExperimentConfig().with_overrides(tiny_overrides())
    train(config, CorpusSpec((REPO / "corpora" / "dialogue-en.jsonl",)), RunOptions(out, verbose=0))
    return out / "model"


@pytest.fixture(scope="session")
def tiny_headline_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Chinese headline model (the task preset: characters, copying, placeholders) trained
    for one epoch on the shipped sample, with tiny sizes."""
    from nlp.training.corpus_io import CorpusSpec
    from nlp.training.run import RunOptions, train
    from nlp.util.config import ExperimentConfig, task_preset

    out = tmp_path_factory.mktemp("tiny_headline_run")
    settings = [*task_preset("headline"), *tiny_overrides(**{
        "train.select_by": "loss", "train.epochs": 1, "vocab.min_freq": 1,
    })]
    config = ExperimentConfig().with_overrides(settings)
    train(config, CorpusSpec((REPO / "corpora" / "headlines-zh.jsonl",)),
          RunOptions(out, verbose=0))
    return out / "model"


@pytest.fixture(scope="session")
def retrieving_bundle(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny chat model with the settings `s2s tune-decoding` stores for a model
    with an index: the replies people wrote to the 10 training posts nearest the message, in
    the retrieval's order, none generated."""
    import shutil

    from nlp.decoding import DecodeOptions
    from nlp.generation.bundle import store_decoding
    from nlp.generation.decode_settings import DecodeSettings

    copy = Path(shutil.copytree(tiny_bundle, tmp_path_factory.mktemp("retrieving") / "model"))
    options = DecodeOptions(retrieve=10, generated=False, rerank="retrieval")
    return store_decoding(copy, DecodeSettings(options, "retrieved replies, as tuned"))


def free_socket() -> socket.socket:
    """A listening socket on a free loopback port, handed to uvicorn (no race for the port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@contextlib.contextmanager
def serving(app: object) -> Iterator[str]:
    """Run `app` with uvicorn in a thread on 127.0.0.1; yields the base URL. The real HTTP
    server, only sharing the test's process (one TensorFlow import)."""
    import uvicorn

    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def serve_args(*argv: str) -> object:
    """`s2s serve ARGV` parsed by the real command line."""
    from s2s.cli import build_parser

    return build_parser().parse_args(["serve", *argv])
