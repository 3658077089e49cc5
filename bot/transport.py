"""The HTTP client python-telegram-bot talks to the Bot API through: aiohttp.

python-telegram-bot's own `HTTPXRequest` spends several times aiohttp's CPU on every Bot API
call (httpx and httpcore speak HTTP/1.1 and keep their pool in pure Python; aiohttp parses
HTTP in C). The bot makes about two calls a message (a getUpdates and a sendMessage) in the
process whose other thread decodes, under one interpreter lock, so under load that CPU becomes
reply latency (docs/BENCHMARKS.md, "HTTP serving", has the profile and the figures). PTB leaves
the transport pluggable (`telegram.request.BaseRequest`); its community package's aiohttp
request is not published on PyPI, hence this small one.

Semantics kept from `HTTPXRequest`: the four PTB timeouts, `TimedOut` for any timeout and
`NetworkError` for any other transport failure (PTB's retry and error handling key on those
two), proxies from the environment (`HTTPS_PROXY`, `NO_PROXY`, ...; looked up once per
origin, where aiohttp's `trust_env` would read the environment and stat `~/.netrc` in a thread
on every call), a bounded connection pool, and multipart uploads for files (the attention
picture of `/why`).
"""

from __future__ import annotations

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

from bot.config import Timeouts


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` over one `aiohttp.ClientSession`, opened in `initialize`.

    aiohttp has no write timeout and counts the wait for a pooled connection together with
    connecting, so the mapping is: `pool + connect` bounds getting a connection, `connect`
    the TCP connect alone, `read` each read of the socket, and the sum of all four the whole
    call (what keeps a stalled upload from hanging: the write phase's own bound).
    """

    def __init__(self, *, connection_pool_size: int, timeouts: Timeouts) -> None:
        self._pool_size = connection_pool_size
        self._timeouts = timeouts
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str | None, int | None], _Proxy] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts.read

    async def initialize(self) -> None:
        # PTB initialises a request once per Bot that shares it; the session must be made
        # inside the running event loop, which is why it is not made in __init__.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("this AiohttpRequest is not initialized")
        timeout = self._timeout(
            _given(read_timeout, self._timeouts.read),
            _given(write_timeout, self._timeouts.write),
            _given(connect_timeout, self._timeouts.connect),
            _given(pool_timeout, self._timeouts.pool),
        )
        proxy, proxy_auth = self._proxy(URL(url))
        try:
            async with self._session.request(
                method,
                url,
                data=_body(request_data),
                timeout=timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:  # aiohttp's timeouts all derive from it
            raise TimedOut(f"Bot API call timed out ({type(exc).__name__})") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc

    def _proxy(self, url: URL) -> _Proxy:
        """The environment's proxy for `url`'s origin (and its credentials), as httpx would
        use it by default; (None, None) where none is set or NO_PROXY exempts the host."""
        origin = (url.scheme, url.host, url.port)
        if origin not in self._proxies:
            try:
                self._proxies[origin] = get_env_proxy_for_url(url)
            except LookupError:
                self._proxies[origin] = (None, None)
        return self._proxies[origin]

    @staticmethod
    def _timeout(
        read: float | None, write: float | None, connect: float | None, pool: float | None
    ) -> aiohttp.ClientTimeout:
        phases = (read, write, connect, pool)
        total = None if any(p is None for p in phases) else sum(p for p in phases if p is not None)
        acquire = None if connect is None or pool is None else connect + pool
        return aiohttp.ClientTimeout(
            total=total, connect=acquire, sock_connect=connect, sock_read=read
        )


_Proxy = tuple[URL | None, aiohttp.BasicAuth | None]


def _given(value: ODVInput[float], default: float | None) -> float | None:
    """A call's own timeout, or this request's default where PTB passed DEFAULT_NONE."""
    return default if isinstance(value, DefaultValue) else value


def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
    """Form fields as PTB encodes them: url-encoded, or multipart when files go along."""
    if request_data is None:
        return None
    fields = request_data.json_parameters
    files = request_data.multipart_data
    if not files:
        return fields or None
    form = aiohttp.FormData(fields)
    for name, (filename, content, mime_type) in files.items():
        form.add_field(name, content, filename=filename, content_type=mime_type)
    return form
