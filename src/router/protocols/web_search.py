"""The gateway-run web search (`[search]` in routing.toml): one search API as data (where it
lives, how the key goes, how results come back) and `WebSearch`, the core's `Searcher`, which
sends its one request through the app's upstream session.

    tavily   POST {base}/search            Authorization: Bearer <key>   results[].content
    brave    GET  {base}/res/v1/web/search X-Subscription-Token: <key>  web.results[].description
    searxng  GET  {base}/search?format=json (self-hosted, no key)       results[].content
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from urllib.parse import urlencode

import msgspec

from router.config import Search
from router.core.types import Found
from router.errors import ConfigError, Failure, UpstreamError
from router.protocols.errors import classify_http
from router.upstream import HttpCall, Upstream


class _Api(msgspec.Struct, frozen=True):
    base_url: str
    key_env: str | None
    path: str
    method: str


APIS = {
    "tavily": _Api("https://api.tavily.com", "TAVILY_API_KEY", "/search", "POST"),
    "brave": _Api("https://api.search.brave.com", "BRAVE_API_KEY", "/res/v1/web/search", "GET"),
    "searxng": _Api("", None, "/search", "GET"),
}


class _Result(msgspec.Struct):
    url: str = ""
    title: str = ""
    content: str = ""  # tavily, searxng
    description: str = ""  # brave


class _Web(msgspec.Struct):
    results: list[_Result] = []


class _Answer(msgspec.Struct):
    results: list[_Result] = []  # tavily, searxng
    web: _Web | None = None  # brave


_ANSWER = msgspec.json.Decoder(_Answer)
_ENCODER = msgspec.json.Encoder()


class WebSearch:
    """Searches one API; built once at start-up from `[search]` and the environment."""

    def __init__(
        self, config: Search, env: dict[str, str], upstream: Callable[[], Upstream]
    ) -> None:
        api = APIS[config.api]
        self.name: str = config.api
        self.fee: Decimal = config.per_search or Decimal(0)
        self.limit = config.max_results
        self.timeout = config.timeout
        self.upstream = upstream
        self.method = api.method
        base = env.get(f"{config.api.upper()}_BASE_URL") or config.base_url or api.base_url
        if not base:
            raise ConfigError("routing.toml", f"[search] api {config.api!r} needs a base_url")
        self.url = base.rstrip("/") + api.path
        key_env = config.api_key_env or api.key_env
        key = env.get(key_env, "") if key_env else ""
        if key_env and not key:
            raise ConfigError("routing.toml", f"[search] needs its API key: set {key_env}")
        self.headers = _headers(config.api, key)

    async def search(self, query: str) -> tuple[Found, ...]:
        call = self._call(query)
        status, headers, body = await self.upstream().request(self.method, call, self.timeout)
        if status >= 400:
            raise classify_http(status, headers, f"{self.name} answered {status}")
        try:
            answer = _ANSWER.decode(body)
        except msgspec.DecodeError:
            raise UpstreamError(Failure.MALFORMED, f"malformed {self.name} answer") from None
        results = answer.web.results if answer.web is not None else answer.results
        return tuple(
            Found(r.url, r.title, r.content or r.description)
            for r in results[: self.limit]
            if r.url
        )

    def _call(self, query: str) -> HttpCall:
        if self.method == "POST":
            body = _ENCODER.encode({"query": query, "max_results": self.limit})
            return HttpCall(self.url, self.headers, body)
        params = {"q": query, "count": self.limit} if self.name == "brave" else {"q": query}
        if self.name == "searxng":
            params["format"] = "json"
        return HttpCall(f"{self.url}?{urlencode(params)}", self.headers, b"")


def _headers(api: str, key: str) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if api == "tavily":
        headers |= {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    elif api == "brave":
        headers["X-Subscription-Token"] = key
    return headers
