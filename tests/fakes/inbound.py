"""What reached a fake upstream: routing by protocol, body decoding, and the `Seen` record.

Routes (everything else is a 404):

    openai     POST /v1/chat/completions, /v1/embeddings, /v1/images/generations,
               /v1/audio/speech, /v1/audio/transcriptions;  GET /v1/models
    anthropic  POST /v1/messages, /v1/messages/count_tokens
    gemini     POST /v1beta/models/{model}:generateContent,
               POST /v1beta/models/{model}:streamGenerateContent?alt=sse
    azure      POST /openai/deployments/{deployment}/{endpoint}   (model = deployment)
               POST /openai/v1/{endpoint}  (model from the body); GET /openai/v1/models
    all        GET /fake-files/{name}  (image URLs handed out by /images/generations)
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import BodyPartReader, web

_ENDPOINTS = {
    "chat/completions": "chat",
    "embeddings": "embeddings",
    "images/generations": "images",
    "audio/speech": "speech",
    "audio/transcriptions": "transcriptions",
}
_GEMINI = re.compile(r"/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)")
_AZURE_DEPLOYMENT = re.compile(r"/openai/deployments/([^/]+)/(.+)")
_decode = msgspec.json.Decoder().decode


class Seen(msgspec.Struct, frozen=True, kw_only=True):
    """One request as the fake received it; `body` for multipart holds the form fields, with
    file fields as `(filename, content_type, size_bytes)`."""

    t: float
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    model: str | None
    stream: bool
    body: Any
    outcome: str


class Route(msgspec.Struct, frozen=True):
    endpoint: str  # chat embeddings images speech transcriptions models file
    model: str | None = None  # when the path names it
    stream: bool | None = None  # when the path decides it


def resolve(protocol: str, method: str, path: str) -> Route | None:
    """The endpoint a request is for, or None when this protocol does not serve it."""
    if method == "GET":
        if path.startswith("/fake-files/"):
            return Route("file")
        models = {"openai": "/v1/models", "azure": "/openai/v1/models"}.get(protocol)
        return Route("models") if path == models else None
    if method != "POST":
        return None
    if protocol == "openai" and path.startswith("/v1/"):
        return _endpoint(path[4:])
    if protocol == "anthropic":
        counting = Route("count_tokens") if path == "/v1/messages/count_tokens" else None
        return Route("chat") if path == "/v1/messages" else counting
    if protocol == "gemini":
        match = _GEMINI.fullmatch(path)
        return Route("chat", match[1], match[2] == "streamGenerateContent") if match else None
    if protocol == "azure":
        match = _AZURE_DEPLOYMENT.fullmatch(path)
        if match:
            route = _endpoint(match[2])
            return Route(route.endpoint, match[1]) if route else None
        if path.startswith("/openai/v1/"):
            return _endpoint(path[len("/openai/v1/") :])
    return None


def _endpoint(rest: str) -> Route | None:
    endpoint = _ENDPOINTS.get(rest)
    return Route(endpoint) if endpoint else None


async def read_body(request: web.Request) -> Any:
    """The decoded JSON body, the multipart form (files streamed, only sized), the raw text
    when it is not JSON, or None when empty."""
    if request.content_type.startswith("multipart/"):
        return await _read_form(request)
    raw = await request.read()
    if not raw:
        return None
    try:
        return _decode(raw)
    except msgspec.DecodeError:
        return raw.decode("utf-8", "replace")


async def _read_form(request: web.Request) -> dict[str, Any]:
    form: dict[str, Any] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is None:
            value = await part.text()
            form[part.name] = value if part.name not in form else f"{form[part.name]},{value}"
            continue
        size = 0
        while chunk := await part.read_chunk(64 * 1024):
            size += len(chunk)
        content_type = part.headers.get("Content-Type", "application/octet-stream")
        form[part.name] = (part.filename, content_type, size)
    return form


def wants_stream(route: Route, body: Any) -> bool:
    if route.stream is not None:
        return route.stream
    if not isinstance(body, dict):
        return False
    if route.endpoint == "speech":
        return body.get("stream_format") == "sse"
    return body.get("stream") is True


def model_of(route: Route, body: Any) -> str | None:
    if route.model is not None:
        return route.model
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        return str(body["model"])
    return None


def api_key_of(protocol: str, request: web.Request) -> str | None:
    """The credential each protocol's clients send."""
    bearer = request.headers.get("Authorization", "")
    token = bearer[7:] if bearer.startswith("Bearer ") else None
    if protocol == "anthropic":
        return request.headers.get("x-api-key")
    if protocol == "gemini":
        return request.headers.get("x-goog-api-key") or request.query.get("key")
    if protocol == "azure":
        return request.headers.get("api-key") or token
    return token
