"""The bot's Bot API client (bot/transport.py) on real sockets: the errors PTB's retry logic
keys on, the timeouts as PTB passes them, uploads, and proxies from the environment."""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator

import pytest
from telegram import InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.config import Timeouts
from bot.transport import AiohttpRequest

OK = b'{"ok": true, "result": true}'


class Recorder:
    """A one-connection-at-a-time HTTP/1.1 server that answers OK (or never answers)."""

    def __init__(self, *, answer: bool = True) -> None:
        self.answer = answer
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *fields = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (f.partition(":") for f in fields if f)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((line, headers, body))
                if not self.answer:
                    await asyncio.sleep(3600)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(OK)}\r\n\r\n".encode()
                    + OK
                )
                await writer.drain()


@contextlib.asynccontextmanager
async def serving(recorder: Recorder) -> AsyncIterator[str]:
    server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


@contextlib.asynccontextmanager
async def client(**timeouts: float) -> AsyncIterator[AiohttpRequest]:
    request = AiohttpRequest(connection_pool_size=2, timeouts=Timeouts(**timeouts))
    await request.initialize()
    try:
        yield request
    finally:
        await request.shutdown()


def params(**values: object) -> RequestData:
    return RequestData([RequestParameter.from_input(k, v) for k, v in values.items()])


async def test_parameters_arrive_url_encoded_with_ptb_user_agent() -> None:
    recorder = Recorder()
    async with serving(recorder) as base, client() as request:
        status, body = await request.do_request(
            f"{base}/botT/sendMessage", "POST", params(chat_id=7, text="héllo & bye")
        )
    assert (status, body) == (200, OK)
    line, headers, sent = recorder.requests[0]
    assert line == "POST /botT/sendMessage HTTP/1.1"
    assert headers["user-agent"] == AiohttpRequest.USER_AGENT
    assert urllib.parse.parse_qs(sent.decode()) == {"chat_id": ["7"], "text": ["héllo & bye"]}


async def test_files_go_as_multipart_beside_the_fields() -> None:
    recorder = Recorder()
    picture = bytes(range(256)) * 10  # binary content must arrive byte for byte
    data = RequestData(
        [
            RequestParameter.from_input("chat_id", 7),
            RequestParameter.from_input("caption", "why"),
            RequestParameter.from_input("photo", InputFile(picture, filename="a.png")),
        ]
    )
    async with serving(recorder) as base, client() as request:
        await request.do_request(f"{base}/botT/sendPhoto", "POST", data)
    _, headers, body = recorder.requests[0]
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {headers['content-type']}\r\n\r\n".encode() + body
    )
    parts = {
        part.get_param("name", header="content-disposition"): part for part in message.iter_parts()
    }
    assert parts["chat_id"].get_content() == "7"
    assert parts["caption"].get_content() == "why"
    assert parts["photo"].get_filename() == "a.png"
    assert parts["photo"].get_payload(decode=True) == picture


async def test_a_server_that_never_answers_times_out_at_the_calls_read_timeout() -> None:
    async with serving(Recorder(answer=False)) as base, client(read=30.0) as request:
        start = time.monotonic()
        with pytest.raises(TimedOut):
            await request.do_request(f"{base}/botT/getMe", "POST", read_timeout=0.3)
        assert time.monotonic() - start < 5.0  # the call's own 0.3 s, not the default 30 s


async def test_the_default_read_timeout_applies_where_ptb_passes_none() -> None:
    async with serving(Recorder(answer=False)) as base, client(read=0.3) as request:
        assert request.read_timeout == 0.3  # what PTB adds the long poll to
        with pytest.raises(TimedOut):
            await request.do_request(f"{base}/botT/getMe", "POST")


async def test_a_refused_connection_is_a_network_error() -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with client() as request:
        with pytest.raises(NetworkError) as caught:
            await request.do_request(f"http://127.0.0.1:{port}/botT/getMe", "POST")
    assert not isinstance(caught.value, TimedOut)


async def test_requests_go_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy = Recorder()
    async with serving(proxy) as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with client() as request:
            status, _ = await request.do_request("http://api.telegram.invalid/botT/getMe", "POST")
    assert status == 200
    assert proxy.requests[0][0] == "POST http://api.telegram.invalid/botT/getMe HTTP/1.1"


async def test_a_call_before_initialize_is_refused() -> None:
    request = AiohttpRequest(connection_pool_size=1, timeouts=Timeouts())
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request("http://127.0.0.1:9/x", "POST")


async def test_hosts_no_proxy_names_go_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, direct = Recorder(), Recorder()
    async with serving(proxy) as proxy_url, serving(direct) as base:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with client() as request:
            status, _ = await request.do_request(f"{base}/botT/getMe", "POST")
    assert status == 200
    assert len(direct.requests) == 1 and not proxy.requests
