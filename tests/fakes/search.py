"""`FakeSearch`: web search as the real APIs do it, over real loopback HTTP, strict about the
request shape (a search tool in the wrong form gets the real API's 400).

    {origin}/openai/v1     Chat Completions: *-search-preview models need `web_search_options`
                           and refuse sampling parameters; url_citation annotations back
    {origin}/anthropic     Messages with the `web_search_20250305` server tool: server_tool_use,
                           web_search_tool_result, text citations, usage.server_tool_use
    {origin}/gemini/v1beta generateContent with the `google_search` tool: groundingMetadata
    {origin}/tavily        POST /search (Bearer key): results
Other OpenAI models answer plainly, citing `[n]` if the request carries numbered sources;
`fail` (a set of model names) answers those with a 500.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

from aiohttp import web

PAGES = [
    ("https://weather.example/rome", "Rome weather today"),
    ("https://news.example/rome-heat", "Heat wave in Rome"),
]
ANSWER = "Rome is sunny and hot today."
TAVILY_KEY = "tvly-test"
_REFUSED = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


class FakeSearch:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []  # (path, body)
        self.queries: list[str] = []
        self.fail: set[str] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeSearch:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(sock), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _open(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_post("/openai/v1/chat/completions", self._openai)
        app.router.add_post("/anthropic/v1/messages", self._anthropic)
        app.router.add_post("/gemini/v1beta/models/{call}", self._gemini)
        app.router.add_post("/tavily/search", self._tavily)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _close(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _read(self, request: web.Request) -> dict[str, Any]:
        body = await request.json()
        self.seen.append((request.path, body))
        return body

    # ---- OpenAI ---------------------------------------------------------------------------

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request)
        model = body["model"]
        if model in self.fail:
            return _error(500, "server_error", "boom")
        searching = model.endswith("-search-preview")
        if searching and not isinstance(body.get("web_search_options"), dict):
            return _error(400, "invalid_request_error", "web_search_options is required")
        if not searching and "web_search_options" in body:
            return _error(400, "invalid_request_error", "Web search options not supported")
        for name in _REFUSED:
            if searching and name in body:
                return _error(400, "invalid_request_error", f"Unsupported parameter: '{name}'")
        text, cites = (ANSWER, _url_citations()) if searching else _grounded(body)
        usage = {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
        if not body.get("stream"):
            message = {"role": "assistant", "content": text, "annotations": cites}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return web.json_response({"id": "c1", "choices": [choice], "usage": usage})
        deltas = [{"role": "assistant", "content": text}, {"annotations": cites}]
        chunks = [{"choices": [{"index": 0, "delta": d}]} for d in deltas]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        chunks.append({"choices": [], "usage": usage})
        return await _sse(request, [(None, c) for c in chunks], done=True)

    # ---- Anthropic ------------------------------------------------------------------------

    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request)
        tools = body.get("tools", [])
        server = [t for t in tools if t.get("type", "").startswith("web_search")]
        for tool in server:
            if tool != {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}:
                return _anthropic_error(f"tools.0: unexpected server tool {tool}")
        if not server:
            return _anthropic_error("this fake answers only web search requests")
        results = [
            {"type": "web_search_result", "url": u, "title": t, "encrypted_content": "e"}
            for u, t in PAGES
        ]
        cite = {
            "type": "web_search_result_location",
            "url": PAGES[1][0],
            "title": PAGES[1][1],
            "encrypted_index": "x",
            "cited_text": "heat",
        }
        use = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"}
        outcome = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1"}
        usage = {
            "input_tokens": 30,
            "output_tokens": 10,
            "server_tool_use": {"web_search_requests": 1},
        }
        if not body.get("stream"):
            content = [
                use | {"input": {"query": "rome weather"}},
                outcome | {"content": results},
                {"type": "text", "text": ANSWER, "citations": [cite]},
            ]
            return web.json_response(
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": content,
                    "stop_reason": "end_turn",
                    "usage": usage,
                }
            )
        start = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
        events = [
            {"type": "message_start", "message": start | {"usage": {"input_tokens": 30}}},
            {"type": "content_block_start", "index": 0, "content_block": use | {"input": {}}},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"query":"rome"}'},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": outcome | {"content": results},
            },
            {"type": "content_block_stop", "index": 1},
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "text", "text": "", "citations": []},
            },
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "citations_delta", "citation": cite},
            },
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "text_delta", "text": ANSWER},
            },
            {"type": "content_block_stop", "index": 2},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage},
            {"type": "message_stop"},
        ]
        return await _sse(request, [(e["type"], e) for e in events], done=False)

    # ---- Gemini ---------------------------------------------------------------------------

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request)
        if body.get("tools") != [{"google_search": {}}]:
            return web.json_response(
                {"error": {"code": 400, "message": "Invalid tools", "status": "INVALID_ARGUMENT"}},
                status=400,
            )
        grounding = {
            "webSearchQueries": ["rome weather today"],
            "groundingChunks": [{"web": {"uri": u, "title": t}} for u, t in PAGES],
            "groundingSupports": [
                {"segment": {"startIndex": 0, "endIndex": 10}, "groundingChunkIndices": [1, 0]}
            ],
        }
        usage = {"promptTokenCount": 12, "candidatesTokenCount": 7, "totalTokenCount": 19}
        content = {"role": "model", "parts": [{"text": ANSWER}]}
        final = {
            "candidates": [
                {"content": content, "finishReason": "STOP", "groundingMetadata": grounding}
            ],
            "usageMetadata": usage,
        }
        if request.match_info["call"].endswith(":generateContent"):
            return web.json_response(final)
        first = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Rome "}]}}]}
        final["candidates"][0]["content"] = {"role": "model", "parts": [{"text": ANSWER[5:]}]}
        return await _sse(request, [(None, first), (None, final)], done=False)

    # ---- Tavily ---------------------------------------------------------------------------

    async def _tavily(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TAVILY_KEY}":
            return web.json_response({"detail": {"error": "Unauthorized"}}, status=401)
        body = await self._read(request)
        if set(body) != {"query", "max_results"}:
            return web.json_response({"detail": {"error": "bad request"}}, status=400)
        self.queries.append(body["query"])
        results = [
            {"title": t, "url": u, "content": f"About {t.lower()}.", "score": 0.9} for u, t in PAGES
        ]
        return web.json_response({"query": body["query"], "results": results})


def _url_citations() -> list[dict[str, Any]]:
    return [
        {
            "type": "url_citation",
            "url_citation": {"url": u, "title": t, "start_index": 0, "end_index": 5},
        }
        for u, t in reversed(PAGES)
    ]


def _grounded(body: dict[str, Any]) -> tuple[str, list[Any]]:
    """A plain model's answer: cites [2] then [1] when the gateway gave it numbered sources."""
    context = " ".join(str(m.get("content")) for m in body["messages"] if m["role"] == "system")
    if "[1] " + PAGES[0][1] in context and "[2] " + PAGES[1][1] in context:
        return "It is hot [2], and sunny [1].", []
    return "No sources given.", []


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind}}, status=status)


def _anthropic_error(message: str) -> web.Response:
    error = {"type": "invalid_request_error", "message": message}
    return web.json_response({"type": "error", "error": error}, status=400)


async def _sse(
    request: web.Request, events: list[tuple[str | None, Any]], done: bool
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        await response.write(f"{head}data: {json.dumps(data)}\n\n".encode())
    if done:
        await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response
