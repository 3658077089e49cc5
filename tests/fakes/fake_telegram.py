"""A fake Telegram Bot API server on 127.0.0.1, for end-to-end tests and the load benchmark.

Real python-telegram-bot talks to it over real HTTP (point `base_url` at `<base_url>/bot`), so
the tests exercise the library's request encoding, error mapping and polling loop, not a
mock of them. The server is the standard library's (asyncio streams): HTTP/1.1 with
keep-alive, Content-Length and chunked bodies, form, JSON and multipart requests.

Once the bot calls setWebhook, updates go to its URL instead of getUpdates, as Telegram sends
them: a JSON POST each, with the secret token header, at most `max_connections` (default 40)
at once, retried until the bot answers 200 (aiohttp as the client).

It answers getMe, deleteWebhook, setWebhook, getWebhookInfo, getUpdates (offsets, limit and
long-poll timeout), sendMessage, sendPhoto, sendChatAction and answerCallbackQuery, records
every call in `calls`, queues updates with `push_update`/`push_message`, and injects faults
per method with `inject` (HTTP 500, 429 with retry_after, a malformed JSON body, a response
slower than the client's timeout).

No idempotency, as in the real Bot API: every send the server processes is delivered, so a
send that was processed but whose answer the client never got (the "malformed" and "slow"
faults process the request first, as a real server would) shows up twice once the bot
retries it. Tests therefore check "at least once", and count such duplicates exactly.
`calls` shows every attempt; `sent` every delivered message, with its arrival time.

`bot_on_fake_telegram` runs the real bot (`bot.service.running`) against a fresh fake server
with short time-outs; the tests and benchmarks/bot_load.py both use it (the benchmark also
runs the server in another process, `bot_polling` pointing the bot at it).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import itertools
import json
import time
import urllib.parse
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from bot.app import build_application
from bot.config import BotConfig, Timeouts
from bot.delivery import RetryPolicy
from bot.flood import FloodControl, FloodLimits
from bot.service import running
from nlp.chat.responder import ChatResponder

TEST_TOKEN = "123456:TEST-token-secret-abcdefghij"
# A send the server processed but answered after the read time-out is retried and delivered
# twice (at-least-once, bot/delivery.py). So the tests' default time-outs are long enough that a
# send slowed by a loaded machine is never one; the fault tests, whose slow answers are timed
# against a 1 s time-out, pass FAST_TIMEOUTS themselves. The long poll stays short either way.
PATIENT_TIMEOUTS = Timeouts(connect=1.0, read=10.0, write=10.0, pool=1.0, poll=1.0)
FAST_TIMEOUTS = Timeouts(connect=1.0, read=1.0, write=1.0, pool=1.0, poll=1.0)
FAST_RETRY = RetryPolicy(attempts=8, first_delay=0.05, max_delay=0.2, max_retry_after=2.0)
# Telegram's flood limits would make every multi-message test take seconds; tests that check
# flood control pass their own `flood=FloodLimits(...)`.
NO_FLOOD_LIMITS = FloodLimits(1e6, 1e6, 1e6)
BOT_ID = 4242
BOT_USERNAME = "s2s_test_bot"
BOT_USER = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "S2S Test",
    "username": BOT_USERNAME,
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
# The stand-in accounts Telegram puts in `from` of a message sent on behalf of a chat
ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group",
                   "username": "GroupAnonymousBot"}
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}
STICKER_JSON = {
    "file_id": "sticker",
    "file_unique_id": "u",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
}
FaultKind = Literal["http500", "retry_after", "malformed", "slow", "too_old"]


@dataclass(frozen=True)
class Fault:
    """What to do instead of a normal answer to one call."""

    kind: FaultKind
    retry_after: int = 1  # for "retry_after"
    delay: float = 1.0  # for "slow": seconds before answering (after processing)


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    time: float
    fault: FaultKind | None = None


@dataclass
class Sent:
    """A message the bot delivered."""

    method: str
    chat_id: int
    message_id: int
    text: str | None = None
    caption: str | None = None
    photo: bytes | None = None
    reply_to: int | None = None
    thread_id: int | None = None  # the forum topic it was sent to (message_thread_id)
    time: float = field(default_factory=time.monotonic)


class FakeTelegram:
    """Start with `async with FakeTelegram(token) as server:`; see the module docstring."""

    def __init__(self, token: str, *, host: str = "127.0.0.1") -> None:
        self.token = token
        self.host = host
        self.port = 0
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.webhook_url = ""
        self.webhook_secret = ""
        self.webhook_connections = 40
        self._hook_client: aiohttp.ClientSession | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._faults: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._new_update = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def __aenter__(self) -> FakeTelegram:
        self._server = await asyncio.start_server(self._serve_connection, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in [*self._connections, *self._deliveries]:
            task.cancel()
        await asyncio.gather(*self._connections, *self._deliveries, return_exceptions=True)
        if self._hook_client is not None:
            await self._hook_client.close()
        await self._server.wait_closed()

    # -- test API --------------------------------------------------------------------------

    def inject(self, method: str, *faults: Fault) -> None:
        """Apply `faults`, in order, to the next calls of `method`."""
        self._faults[method].extend(faults)

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue `update` for getUpdates or, with a webhook set, POST it to the bot."""
        update = {"update_id": next(self._update_ids), **update}
        if self.webhook_url:
            task = asyncio.get_running_loop().create_task(self._deliver(update))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        else:
            self._updates.append(update)
            asyncio.get_running_loop().create_task(self._notify())
        return int(update["update_id"])

    def message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        chat_type: str = "private",
        user_id: int | None = None,
        reply_to_bot: bool = False,
        language_code: str | None = None,
        sender_chat: dict[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A Message object as Telegram sends it; `fields` adds e.g. sticker=... or photo=...;
        `language_code`: the sender's app language, as Telegram reports it; `sender_chat`:
        sent on behalf of that chat (an anonymous admin's group, a channel), from the
        stand-in bot account Telegram then puts in `from`."""
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type in ("group", "supergroup", "channel"):
            chat["title"] = f"chat {chat_id}"
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            **fields,
        }
        if chat_type != "channel":
            user = user_id if user_id is not None else abs(chat_id)
            message["from"] = {"id": user, "is_bot": False, "first_name": f"user{user}"}
            if language_code is not None:
                message["from"]["language_code"] = language_code
        if sender_chat is not None:
            message["sender_chat"] = sender_chat
            anonymous = sender_chat["id"] == chat_id
            message["from"] = ANONYMOUS_ADMIN if anonymous else CHANNEL_BOT
        if text is not None:
            message["text"] = text
        if reply_to_bot:
            message["reply_to_message"] = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": chat,
                "from": BOT_USER,
                "text": "an earlier reply",
            }
        return message

    def push_message(self, chat_id: int, text: str | None = None, **kwargs: Any) -> int:
        """Queue a new message update; returns the message id (what replies will quote)."""
        message = self.message(chat_id, text, **kwargs)
        self.push_update({"message": message})
        return int(message["message_id"])

    def replies(self, chat_id: int | None = None) -> list[Sent]:
        return [s for s in self.sent if chat_id is None or s.chat_id == chat_id]

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            await asyncio.sleep(0.01)

    async def wait_for_replies(self, count: int, timeout: float = 10.0) -> list[Sent]:
        await self.wait_for(lambda: len(self.sent) >= count, timeout)
        return self.sent

    # -- Bot API ---------------------------------------------------------------------------

    async def _deliver(self, update: dict[str, Any]) -> None:
        """POST one update to the webhook until the bot takes it (Telegram retries too)."""
        if self._hook_client is None:
            self._hook_client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.webhook_connections)
            )
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook_secret}
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with self._hook_client.post(
                    self.webhook_url, json=update, headers=headers
                ) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)

    async def _notify(self) -> None:
        async with self._new_update:
            self._new_update.notify_all()

    async def _api(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if method == "getMe":
            return BOT_USER
        if method in ("deleteWebhook", "setWebhook"):
            self.webhook_url = str(params.get("url", ""))
            self.webhook_secret = str(params.get("secret_token", ""))
            self.webhook_connections = int(params.get("max_connections") or 40)
            return True
        if method == "getWebhookInfo":
            return {
                "url": self.webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": 0,
            }
        if method in ("sendChatAction", "answerCallbackQuery"):
            return True
        if method == "getUpdates":
            return await self._get_updates(params)
        if method in ("sendMessage", "sendPhoto"):
            return self._send(method, params, files)
        raise _ApiError(400, f"Bad Request: method {method} is not faked")

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        if offset > 0:  # Telegram forgets updates once a higher offset confirms them
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        while True:
            pending = [u for u in self._updates if u["update_id"] >= offset][:limit]
            remaining = deadline - time.monotonic()
            if pending or remaining <= 0:
                return pending
            async with self._new_update:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._new_update.wait(), remaining)

    def _send(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        chat_id = int(params["chat_id"])
        quote = params.get("reply_parameters") or {}
        reply_to = int(quote["message_id"]) if "message_id" in quote else None
        thread = params.get("message_thread_id")
        if method == "sendMessage":
            text = str(params.get("text", ""))
            if not text.strip():
                raise _ApiError(400, "Bad Request: message text is empty")
            if len(text.encode("utf-16-le")) // 2 > 4096:
                raise _ApiError(400, "Bad Request: message is too long")
        photo = files.get("photo") if method == "sendPhoto" else None
        if method == "sendPhoto" and not photo:
            raise _ApiError(400, "Bad Request: there is no photo in the request")
        sent = Sent(
            method=method,
            chat_id=chat_id,
            message_id=next(self._message_ids),
            text=params.get("text"),
            caption=params.get("caption"),
            photo=photo,
            reply_to=reply_to,
            thread_id=int(thread) if thread is not None else None,
        )
        self.sent.append(sent)
        return self._message_json(sent)

    @staticmethod
    def _message_json(sent: Sent) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": {"id": sent.chat_id, "type": "private"},
            "from": BOT_USER,
        }
        if sent.text is not None:
            message["text"] = sent.text
        if sent.photo is not None:
            message["photo"] = [
                {
                    "file_id": f"photo{sent.message_id}",
                    "file_unique_id": f"u{sent.message_id}",
                    "width": 640,
                    "height": 480,
                }
            ]
            if sent.caption:
                message["caption"] = sent.caption
        return message

    # -- HTTP ------------------------------------------------------------------------------

    async def _respond(
        self, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        parsed = urllib.parse.urlsplit(target)
        prefix = f"/bot{self.token}/"
        if not parsed.path.startswith(prefix):
            return _error(401 if parsed.path.startswith("/bot") else 404, "Unauthorized")
        method = parsed.path[len(prefix) :]
        params, files = _parse_body(headers.get("content-type", ""), body)
        params.update(urllib.parse.parse_qsl(parsed.query))
        fault = self._faults[method].popleft() if self._faults[method] else None
        self.calls.append(Call(method, params, files, time.monotonic(), fault and fault.kind))
        if fault is not None and fault.kind == "http500":
            return _error(500, "Internal Server Error")
        if fault is not None and fault.kind == "too_old":  # a callback query after downtime
            return _error(400, "Bad Request: query is too old and response timeout expired "
                               "or query ID is invalid")
        if fault is not None and fault.kind == "retry_after":
            return _error(
                429,
                f"Too Many Requests: retry after {fault.retry_after}",
                parameters={"retry_after": fault.retry_after},
            )
        try:
            result = await self._api(method, params, files)
        except _ApiError as exc:
            return _error(exc.status, exc.description)
        if fault is not None and fault.kind == "malformed":
            return 200, b'{"ok": true, "result": {"message_id": '
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        return 200, json.dumps({"ok": True, "result": result}).encode()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                request_line = await reader.readline()
                if not request_line.strip():
                    break
                _, target, _ = request_line.decode("latin-1").split(" ", 2)
                headers = await _read_headers(reader)
                body = await _read_body(reader, headers)
                status, payload = await self._respond(target, headers, body)
                head = (
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                    "Connection: keep-alive\r\n\r\n"
                )
                writer.write(head.encode("latin-1") + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _error(status: int, description: str, **extra: Any) -> tuple[int, bytes]:
    body = {"ok": False, "error_code": status, "description": description, **extra}
    return status, json.dumps(body).encode()


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() != "chunked":
        return b""
    chunks = []
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readline()


def _parse_body(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Request parameters (nested objects decoded from their JSON strings) and files."""
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if content_type.startswith("application/json"):
        params = json.loads(body or b"{}")
    elif content_type.startswith("multipart/form-data"):
        parser = email.parser.BytesParser(policy=email.policy.HTTP)
        message = parser.parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        for part in message.iter_parts():  # type: ignore[attr-defined]
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                files[name] = payload
            else:
                params[name] = payload.decode("utf-8")
    elif body:
        params = dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for name, value in params.items():
        if isinstance(value, str) and value[:1] in ("{", "["):
            with contextlib.suppress(ValueError):
                params[name] = json.loads(value)
    return params, files


def fast_config(base_url: str, **changes: Any) -> BotConfig:
    """A bot config pointing at the fake server at `base_url`, with back-offs short enough for
    tests, time-outs no loaded machine reaches (unless `changes` sets `timeouts`) and no flood
    limits (unless it sets `flood`)."""
    settings: dict[str, Any] = {
        "timeouts": PATIENT_TIMEOUTS, "retry": FAST_RETRY, "flood": NO_FLOOD_LIMITS, **changes
    }
    return BotConfig(token=TEST_TOKEN, api_base_url=base_url, **settings)


@contextlib.asynccontextmanager
async def bot_polling(
    responder: ChatResponder, base_url: str, *, flood_control: FloodControl | None = None,
    **changes: Any,
) -> AsyncIterator[None]:
    """Serve `responder` with the real bot code, long-polling the fake server at `base_url`
    (in this process, or in another one: benchmarks/bot_load.py's `apart` runs).

    `changes` override `BotConfig` fields (access, rate_burst, webhook, ...); `flood_control`
    is the outgoing limiter to use instead of the one the config makes (a test's recording
    subclass). On exit the bot finishes its replies in flight and closes the responder, as on
    SIGTERM.
    """
    config = fast_config(base_url, **changes)
    application = build_application(config, responder, flood=flood_control)
    async with running(application, config):
        yield


@contextlib.asynccontextmanager
async def bot_on_fake_telegram(
    responder: ChatResponder, *, flood_control: FloodControl | None = None, **changes: Any
) -> AsyncIterator[FakeTelegram]:
    """`bot_polling` against a fresh fake server in this process and event loop."""
    async with (
        FakeTelegram(TEST_TOKEN) as server,
        bot_polling(responder, server.base_url, flood_control=flood_control, **changes),
    ):
        yield server
