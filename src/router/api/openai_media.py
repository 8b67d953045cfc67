"""The OpenAI-compatible non-chat endpoints, each through the gateway's retries and fallbacks:

    POST /v1/embeddings             string or list input, `dimensions`, float or base64
    POST /v1/images/generations     `b64_json` or `url`
    POST /v1/audio/speech           audio relayed as it is produced, with its content type
    POST /v1/audio/transcriptions   multipart upload up to 25 MB; json, text, srt, vtt,
                                    verbose_json

The provider's answer is relayed as it sent it. Every answer carries `x-router-attempts`,
`x-router-model` (the `provider/model` that answered) and, when the catalog prices the model,
`x-router-cost` (USD). `models` / `fallback_models` extend the chain as for chat.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Literal

import msgspec
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Send

from router.api.common import Begun, asked, begin, endpoint, header_safe, trail_header
from router.core.call import Call
from router.core.media import (
    EmbeddingInput,
    EmbeddingRequest,
    ImageRequest,
    MediaRequest,
    SpeechRequest,
    TranscriptionRequest,
    Upload,
)
from router.core.media_service import MediaCall, MediaResult, MediaService
from router.core.types import Asked
from router.errors import RequestError, UpstreamError
from router.runtime import Runtime

log = logging.getLogger("router")

MAX_UPLOAD = 25 * 1024 * 1024
MAX_DIMENSIONS = 8192  # above the largest embedding models' (3072, 4096)
MAX_INPUTS = 2048  # OpenAI's own limit per request
_FORM_SLACK = 256 * 1024  # the other form fields and the multipart framing
_TRANSCRIPT_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")

# ---- requests -----------------------------------------------------------------------------


class EmbeddingsBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    model: str
    input: EmbeddingInput
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = None
    user: str | None = None
    models: list[str] = []
    fallback_models: list[str] = []


class ImagesBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prompt: str
    model: str | None = None
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: str | None = None
    output_compression: int | None = None
    background: str | None = None
    moderation: str | None = None
    style: str | None = None
    user: str | None = None
    stream: bool | None = None
    partial_images: int | None = None
    models: list[str] = []
    fallback_models: list[str] = []


class SpeechBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    model: str
    input: str
    voice: str | dict[str, str]
    instructions: str | None = None
    response_format: str | None = None
    speed: float | None = None
    stream_format: Literal["audio", "sse"] | None = None
    models: list[str] = []
    fallback_models: list[str] = []


_EMBEDDINGS = msgspec.json.Decoder(EmbeddingsBody)
_IMAGES = msgspec.json.Decoder(ImagesBody)
_SPEECH = msgspec.json.Decoder(SpeechBody)


def _invalid(message: str, param: str) -> RequestError:
    return RequestError("invalid_value", message, param)


def embedding_request(body: EmbeddingsBody) -> EmbeddingRequest:
    given = body.input
    if given == "" or given == []:
        raise _invalid("`input` must not be empty.", "input")
    if not isinstance(given, str) and len({type(item) for item in given}) > 1:
        raise _invalid("`input` must be strings, token ids or token-id lists, not a mix.", "input")
    if body.dimensions is not None and not 1 <= body.dimensions <= MAX_DIMENSIONS:
        raise _invalid(f"`dimensions` must be between 1 and {MAX_DIMENSIONS}.", "dimensions")
    if not isinstance(given, str) and len(given) > MAX_INPUTS:
        raise _invalid(f"`input` may hold at most {MAX_INPUTS} items.", "input")
    return EmbeddingRequest(
        input=body.input,
        encoding_format=body.encoding_format,
        dimensions=body.dimensions,
        user=body.user,
    )


def image_request(body: ImagesBody) -> ImageRequest:
    if body.model is None:
        raise RequestError("missing_required_parameter", "`model` is required.", "model")
    if not body.prompt.strip():
        raise _invalid("`prompt` must not be empty.", "prompt")
    if body.n is not None and not 1 <= body.n <= 10:
        raise _invalid("`n` must be between 1 and 10.", "n")
    if body.stream or body.partial_images:
        param = "stream" if body.stream else "partial_images"
        raise RequestError(
            "unsupported_parameter", "Streamed image generation is not supported.", param
        )
    return ImageRequest(
        prompt=body.prompt,
        n=body.n,
        size=body.size,
        quality=body.quality,
        response_format=body.response_format,
        output_format=body.output_format,
        output_compression=body.output_compression,
        background=body.background,
        moderation=body.moderation,
        style=body.style,
        user=body.user,
    )


def speech_request(body: SpeechBody) -> SpeechRequest:
    if not body.input:
        raise _invalid("`input` must not be empty.", "input")
    if body.speed is not None and not 0.25 <= body.speed <= 4:
        raise _invalid("`speed` must be between 0.25 and 4.", "speed")
    return SpeechRequest(
        input=body.input,
        voice=body.voice,
        instructions=body.instructions,
        response_format=body.response_format,
        speed=body.speed,
        stream_format=body.stream_format,
    )


# ---- transcription form -------------------------------------------------------------------


class TranscriptionForm(msgspec.Struct, kw_only=True):
    """The text fields of a transcription upload, collected by name."""

    model: str | None = None
    language: str | None = None
    prompt: str | None = None
    response_format: str | None = None
    temperature: str | None = None
    timestamp_granularities: list[str] = []
    include: list[str] = []
    models: list[str] = []
    fallback_models: list[str] = []


_LISTS = {
    "timestamp_granularities": "timestamp_granularities",
    "timestamp_granularities[]": "timestamp_granularities",
    "include": "include",
    "include[]": "include",
    "models": "models",
    "models[]": "models",
    "fallback_models": "fallback_models",
    "fallback_models[]": "fallback_models",
}
_SCALARS = frozenset({"model", "language", "prompt", "response_format", "temperature"})


def transcription_form(
    items: list[tuple[str, str | UploadFile]],
) -> tuple[TranscriptionForm, Upload]:
    form = TranscriptionForm()
    upload: Upload | None = None
    for name, value in items:
        if isinstance(value, UploadFile):
            if name != "file":
                raise RequestError("unknown_parameter", f"Unexpected file field `{name}`.", name)
            upload = _upload(value)
        elif name in _SCALARS:
            setattr(form, name, value)
        elif name in _LISTS:
            getattr(form, _LISTS[name]).append(value)
        elif name != "stream" or value.lower() not in ("false", "0", ""):
            code = "unsupported_parameter" if name == "stream" else "unknown_parameter"
            raise RequestError(code, f"`{name}` is not supported here.", name)
    if upload is None:
        raise RequestError("missing_required_parameter", "`file` is required.", "file")
    if not form.model:
        raise RequestError("missing_required_parameter", "`model` is required.", "model")
    return form, upload


def _upload(value: UploadFile) -> Upload:
    size = value.size or 0
    if size > MAX_UPLOAD:
        raise _too_large()
    if size == 0:
        raise _invalid("The uploaded file is empty.", "file")
    content_type = value.content_type or "application/octet-stream"
    return Upload(value.filename or "audio", content_type, value.file, size)


def _too_large() -> RequestError:
    return RequestError(
        "file_too_large", f"The file is larger than {MAX_UPLOAD // 2**20} MB.", "file", status=413
    )


def transcription_request(form: TranscriptionForm, upload: Upload) -> TranscriptionRequest:
    kind = form.response_format
    if kind is not None and kind not in _TRANSCRIPT_FORMATS:
        choices = ", ".join(_TRANSCRIPT_FORMATS)
        raise _invalid(f"`response_format` must be one of {choices}.", "response_format")
    temperature = None
    if form.temperature is not None:
        try:
            temperature = float(form.temperature)
        except ValueError:
            raise _invalid("`temperature` must be a number.", "temperature") from None
    return TranscriptionRequest(
        upload=upload,
        language=form.language,
        prompt=form.prompt,
        response_format=kind,  # type: ignore[arg-type]  # checked against the literal above
        temperature=temperature,
        timestamp_granularities=tuple(form.timestamp_granularities),
        include=tuple(form.include),
    )


async def _limited(request: Request) -> AsyncGenerator[bytes, None]:
    """The request body as it arrives, refused as soon as it passes the upload limit."""
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_UPLOAD + _FORM_SLACK:
            raise _too_large()
        yield chunk


async def read_form(request: Request) -> list[tuple[str, str | UploadFile]]:
    """The multipart form, files spooled (memory up to 1 MB, then a temporary file)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise RequestError("invalid_content_type", "Send the audio as multipart/form-data.", "file")
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > MAX_UPLOAD + _FORM_SLACK:
        raise _too_large()
    parser = MultiPartParser(
        request.headers, _limited(request), max_files=1, max_fields=64, max_part_size=64 * 1024
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise RequestError("invalid_multipart", str(exc), None) from None
    return form.multi_items()


# ---- answers ------------------------------------------------------------------------------


def respond(result: MediaResult, media: MediaService) -> Response:
    headers = {
        "x-router-attempts": trail_header(result.attempts),
        "x-router-model": header_safe(result.target.ref),
    }
    if result.costs is not None:
        headers["x-router-cost"] = format(result.costs.total_tokens_cost, "f")
    reply = result.reply
    if reply.rest is None:
        headers["content-type"] = reply.content_type
        return Response(reply.body, 200, headers)
    return RelayedAudio(result, media, headers)


class RelayedAudio(StreamingResponse):
    """Audio relayed as it arrives. If the upstream breaks off after the first chunk, the
    answer is left unfinished, so the server drops the connection and the client sees a
    broken transfer, never a silently truncated file."""

    def __init__(self, result: MediaResult, media: MediaService, headers: dict[str, str]) -> None:
        reply = result.reply
        assert reply.rest is not None
        super().__init__(
            _relay(reply.body, reply.rest), headers=headers, media_type=reply.content_type
        )
        self.result = result
        self.media = media

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except UpstreamError as exc:
            log.warning("audio relay broke off: %s (%s)", exc.failure.value, exc.message)
            self.media.relayed(self.result, exc)
            return
        self.media.relayed(self.result, None)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _relay(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """The first chunk, then the rest; the upstream connection is released when the client
    leaves or the upstream fails."""
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()


def routes(rt: Runtime) -> list[Route]:
    async def run(
        begun: Begun,
        models: tuple[Asked, ...],
        fallbacks: list[str],
        media: MediaRequest,
    ) -> Response:
        call: MediaCall = Call(  # the bare class: a subscripted generic's call is slow
            principal=begun.principal,
            request_id=begun.request_id,
            models=models,
            fallbacks=asked("fallback_models", fallbacks),
            request=media,
            received=begun.received,
            surface="openai",
            timeout=begun.deadline(False),
        )
        return respond(await rt.media.run(call), rt.media)

    async def embeddings(begun: Begun, body: EmbeddingsBody, request: Request) -> Response:
        media = embedding_request(body)
        return await run(
            begun, asked("models", body.models, body.model), body.fallback_models, media
        )

    async def images(begun: Begun, body: ImagesBody, request: Request) -> Response:
        media = image_request(body)
        assert body.model is not None
        return await run(
            begun, asked("models", body.models, body.model), body.fallback_models, media
        )

    async def speech(begun: Begun, body: SpeechBody, request: Request) -> Response:
        media = speech_request(body)
        return await run(
            begun, asked("models", body.models, body.model), body.fallback_models, media
        )

    async def transcriptions(request: Request) -> Response:
        begun = await begin(rt, request)
        items = await read_form(request)
        try:
            form, upload = transcription_form(items)
            media = transcription_request(form, upload)
            assert form.model is not None
            models = asked("models", form.models, form.model)
            return await run(begun, models, form.fallback_models, media)
        finally:
            for _, value in items:
                if isinstance(value, UploadFile):
                    await value.close()

    return [
        Route("/v1/embeddings", endpoint(rt, _EMBEDDINGS, embeddings), methods=["POST"]),
        Route("/v1/images/generations", endpoint(rt, _IMAGES, images), methods=["POST"]),
        Route("/v1/audio/speech", endpoint(rt, _SPEECH, speech), methods=["POST"]),
        Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
    ]
