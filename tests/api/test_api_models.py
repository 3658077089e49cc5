"""`nlp.api` on the tiny trained models: the same headlines as `s2s headlines`, the same
replies as `s2s chat`, concurrent use equal to sequential use, and the README's Python
examples run as written."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from nlp.api import Headline, Model, OptionError, ScoredReply, TaskError
from s2s.cli import main as s2s_main
from tests.conftest import REPO

ARTICLES = [
    "国家统计局今天发布数据，一季度国内生产总值同比增长百分之五点三，经济运行开局良好。",
    "",
    "北京市教委宣布，今年秋季起全市中小学将增加体育课时，每天保证学生锻炼一小时。",
    "某公司发布新款手机，售价3000元，支持快速充电。",
]
# decoding overrides of the API and the flags that mean the same
CASES = [({}, []), ({"beam_size": 3, "n_best": 2}, ["--beam", "3", "--n-best", "2"]),
         ({"strategy": "greedy"}, ["--greedy"])]
# a conversation with a seeded sample, commands and beam search (the model's default samples)
LINES = ["hello", "how are you?", "/beam 3", "what do you do all day?", "/sample 0.7",
         "tell me more", "/settings", "/greedy", "ok bye"]


@pytest.fixture(scope="module")
def news(tiny_headline_bundle: Path) -> Iterator[Model]:
    with Model.load(tiny_headline_bundle) as model:
        yield model


@pytest.fixture(scope="module")
def chat(tiny_bundle: Path) -> Iterator[Model]:
    with Model.load(tiny_bundle, shared_reply_memory=False) as model:
        yield model


def test_a_model_says_what_it_is(news: Model, chat: Model, tiny_headline_bundle: Path) -> None:
    assert (news.task, news.languages, chat.task, chat.languages) == (
        "headline", ("zh",), "chat", ("en",))
    assert news.directory == tiny_headline_bundle and "files" in news.metadata
    assert news.decoding_origin == "defaults for data.task=headline"
    assert news.decoding.no_repeat_ngram == 1 and chat.decoding.strategy == "beam"
    with pytest.raises(TaskError, match="a chat model writes no headlines"):
        chat.headlines(ARTICLES)
    with pytest.raises(OptionError, match="top_p must be in"):
        news.headlines(ARTICLES, top_p=2.0)


def test_an_option_beyond_what_the_decoder_takes_is_an_option_error_in_the_cli_and_the_api(
    news: Model, tiny_headline_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """top_k 2**31 does not fit the decoder's int32: refused by name, not an OverflowError."""
    source = tmp_path / "articles.txt"
    source.write_text(ARTICLES[0] + "\n", "utf-8")
    assert s2s_main(["headlines", "--model", str(tiny_headline_bundle), str(source),
                     "--top-k", "3000000000"]) == 2  # a usage error, before any decoding
    assert "error: top_k must be an integer in [0, 2147483647], got 3000000000" in (
        capsys.readouterr().err)
    with pytest.raises(OptionError, match=r"top_k must be an integer in \[0, 2147483647\]"):
        news.headlines(ARTICLES, top_k=2**31)
    with pytest.raises(OptionError, match="coverage_penalty must be in"):
        news.attention(ARTICLES[0], coverage_penalty=1e308)


def test_headlines_equal_s2s_headlines(
    news: Model, tiny_headline_bundle: Path, tmp_path: Path
) -> None:
    source = tmp_path / "articles.txt"
    source.write_text("\n".join(ARTICLES) + "\n", "utf-8")
    for decoding, flags in CASES:
        out = tmp_path / "out.jsonl"
        assert s2s_main(["headlines", "--model", str(tiny_headline_bundle), str(source),
                         "-o", str(out), "--quiet", *flags]) == 0
        written = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
        mine = news.headlines(ARTICLES, **decoding)
        assert len(mine) == len(written) == len(ARTICLES)
        for headline, record in zip(mine, written, strict=True):
            if "error" in record:
                assert headline.error == record["error"] == "empty article"
                continue
            assert (headline.headline, round(headline.score, 4)) == (
                record["headline"], record["score"])
            n_best = [(c.text, round(c.score, 4)) for c in headline.n_best]
            assert n_best == [(c["headline"], c["score"])
                              for c in record.get("n_best", [record])]


def test_replies_equal_s2s_chat_for_a_seeded_conversation(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(LINES) + "\n"))
    assert s2s_main(["chat", "--model", str(tiny_bundle), "--state", str(tmp_path / "s.db"),
                     "--why-dir", str(tmp_path)]) == 0
    printed = [line.removeprefix("bot> ") for line in capsys.readouterr().out.splitlines()
               if line.startswith("bot> ")]
    # the terminal chat's conversation is named "terminal": the name seeds the sampling
    with Model.load(tiny_bundle) as model:
        conversation = model.conversation("terminal")
        replies = [conversation.reply(line).text for line in LINES]
        assert conversation.settings.strategy == "greedy"
    assert len(printed) == len(LINES)
    assert replies == printed
    assert len(set(replies)) > 3  # sampled replies, settings answers: not one stock line


def test_concurrent_use_equals_sequential_use(news: Model, chat: Model) -> None:
    jobs = [decoding for decoding, _ in CASES] * 2
    texts = ["hello there", "what is your name?", "where do you live?"]

    def headlines(decoding: dict[str, object]) -> list[Headline]:
        return news.headlines(ARTICLES, **decoding)

    def talk(name: str) -> list[str]:
        conversation = chat.conversation(name)
        replies = [conversation.reply(text).text for text in texts[:1]]
        replies.append(conversation.reply("/beam 3").text)
        replies += [conversation.reply(text).text for text in texts[1:]]
        conversation.forget()  # the next round starts this conversation afresh
        return replies

    def scores(text: str) -> list[ScoredReply]:
        return chat.score_replies(text, ["i am fine.", "no.", "see you later."])

    def attention(text: str) -> np.ndarray:
        return chat.attention(text, strategy="greedy").weights

    names = [f"person-{i}" for i in range(4)]
    sequential = ([headlines(job) for job in jobs], [talk(name) for name in names],
                  [scores(text) for text in texts], [attention(text) for text in texts])
    with ThreadPoolExecutor(8) as pool:
        futures = ([pool.submit(headlines, job) for job in jobs],
                   [pool.submit(talk, name) for name in names],
                   [pool.submit(scores, text) for text in texts],
                   [pool.submit(attention, text) for text in texts])
        threaded = tuple([future.result() for future in group] for group in futures)

    async def talk_async(name: str) -> list[str]:
        conversation = chat.conversation(name)
        replies = [(await conversation.areply(texts[0])).text,
                   (await conversation.areply("/beam 3")).text]
        replies += [(await conversation.areply(text)).text for text in texts[1:]]
        conversation.forget()
        return replies

    async def together() -> tuple[list[list[Headline]], list[list[str]]]:
        both = await asyncio.gather(
            asyncio.gather(*(news.aheadlines(ARTICLES, **job) for job in jobs)),
            asyncio.gather(*(talk_async(name) for name in names)),
        )
        return list(both[0]), list(both[1])

    in_asyncio = asyncio.run(together())
    assert threaded[0] == sequential[0] == in_asyncio[0]
    assert threaded[1] == sequential[1] == in_asyncio[1]
    assert threaded[2] == sequential[2]
    for mine, theirs in zip(threaded[3], sequential[3], strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert all(math.isfinite(s.scores["likelihood"]) for s in sequential[2][0])
    assert {"likelihood", "dual-encoder", "bm25"} <= set(sequential[2][0][0].scores)


def test_attention_is_what_s2s_attention_draws(
    news: Model, tiny_headline_bundle: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = ARTICLES[3]
    picture = tmp_path / "a.png"
    assert s2s_main(["attention", "--model", str(tiny_headline_bundle), "--text", text,
                     "--out", str(picture)]) == 0
    shown = news.attention(text)
    assert capsys.readouterr().out.splitlines()[0] == shown.text
    assert shown.weights.shape == (len(shown.output_tokens), len(shown.source_tokens))
    assert shown.png() == picture.read_bytes()
    assert shown.save(tmp_path / "b.png").read_bytes() == picture.read_bytes()


def readme_python_blocks() -> list[str]:
    """The ```python blocks of the README's "## Python" section."""
    readme = (REPO / "README.md").read_text("utf-8")
    section = readme.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_python_section_is_short_and_has_examples() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    section = readme.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    assert len(section.strip().splitlines()) <= 40
    assert len(readme_python_blocks()) == 1


def test_the_readme_python_examples_run_as_written(
    tiny_bundle: Path, tiny_headline_bundle: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a directory whose runs/chat and runs/news are the tiny models and whose corpora/
    is the repository's: each block runs as a script would run it."""
    (tmp_path / "runs").mkdir()
    os.symlink(tiny_bundle, tmp_path / "runs" / "chat")
    os.symlink(tiny_headline_bundle, tmp_path / "runs" / "news")
    os.symlink(REPO / "corpora", tmp_path / "corpora")
    monkeypatch.chdir(tmp_path)
    for number, code in enumerate(readme_python_blocks(), 1):
        exec(compile(code, f"README.md python block {number}", "exec"), {"__name__": "__main__"})
    assert (tmp_path / "attention.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "runs" / "mine" / "model" / "decoding.json").is_file()


def test_importing_the_api_leaves_the_program_s_stderr_alone() -> None:
    """A program that imports `nlp.api`, then TensorFlow (itself, or by loading a model),
    keeps its own stderr all the while: a thread writing to fd 2 is heard throughout (fd 2
    used to point at a file while TensorFlow imported). TensorFlow's later INFO and WARNING
    lines are still hidden, by the environment; its start-up lines only when asked."""
    program = (
        "import os, threading, time\n"
        "import nlp.api\n"
        "assert os.environ['TF_CPP_MIN_LOG_LEVEL'] == '2'\n"
        "stop, started = threading.Event(), threading.Event()\n"
        "def tick():\n"
        "    n = 0\n"
        "    while not stop.is_set():\n"
        "        os.write(2, b'tick %d\\n' % n)\n"
        "        n += 1\n"
        "        started.set()\n"
        "        time.sleep(0.002)\n"
        "    os.write(2, b'ticks %d\\n' % n)\n"
        "thread = threading.Thread(target=tick)\n"
        "thread.start()\n"
        "started.wait()\n"
        "import tensorflow\n"
        "stop.set()\n"
        "thread.join()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=300, env={**env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    count = int(re.findall(r"^ticks (\d+)$", done.stderr, re.MULTILINE)[-1])
    heard = [int(n) for n in re.findall(r"^tick (\d+)$", done.stderr, re.MULTILINE)]
    assert count > 10 and heard == list(range(count)), f"{len(heard)} of {count} ticks heard"


def test_the_api_starts_as_quietly_as_s2s(tiny_bundle: Path, tmp_path: Path) -> None:
    """A program that asks for quiet, then loads a model and asks it for replies, sees no
    TensorFlow start-up lines (absl, CUDA, cuInit) on stderr, as `s2s` shows none
    (tests/cli/test_quiet_start)."""
    from tests.cli.test_quiet_start import NOISE

    program = (
        "from nlp.api import Model, quiet_tensorflow\n"
        "quiet_tensorflow()\n"
        f"with Model.load({str(tiny_bundle)!r}) as model:\n"
        "    conversation = model.conversation('quiet')\n"
        "    for text in ('hello', 'how are you?', 'what do you do all day?'):\n"
        "        conversation.reply(text)\n"
        "    model.attention('hello there', strategy='greedy')\n"
        "print('replied')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**env, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "replied\n"
    assert not NOISE.search(done.stderr) and "retrac" not in done.stderr, done.stderr
