"""How the gateway reaches a target over HTTP: `HttpBackend` implements the core's `Backend`
(`router.core.ports`) by pairing a wire codec with the pooled upstream. The built-in demo
provider is a backend of its own that needs no network. The registry in `router.protocols`
maps each protocol name to one of these.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from router.core.media import MediaKind, MediaReply, MediaRequest, TranscriptionRequest
from router.core.types import ChatRequest, Event, Target
from router.protocols.base import Codec
from router.protocols.openai_media import OpenAIMedia
from router.upstream import Upstream


class HttpBackend:
    """A wire codec sent over the app's one upstream session; with a media codec it also
    serves embeddings, images, speech and transcription."""

    def __init__(self, codec: Codec, upstream: Upstream, media: OpenAIMedia | None = None) -> None:
        self.codec = codec
        self.upstream = upstream
        self.media = media
        self.media_kinds: frozenset[MediaKind] = media.kinds if media else frozenset()
        self.accepts: frozenset[str] = codec.accepts
        self.dialect: str = codec.dialect

    async def complete(
        self, target: Target, request: ChatRequest, timeout: float | None
    ) -> list[Event]:
        call = self.codec.build(target, request, stream=False)
        return await self.upstream.complete(self.codec, call, timeout)

    def stream(
        self,
        target: Target,
        request: ChatRequest,
        first_token: float,
        stall: float | None = None,
    ) -> AsyncGenerator[list[Event], None]:
        call = self.codec.build(target, request, stream=True)
        return self.upstream.stream(self.codec, call, first_token, stall)

    async def forward(self, target: Target, request: MediaRequest, timeout: float) -> MediaReply:
        media = self.media
        assert media is not None, "no media codec for this protocol"
        if isinstance(request, TranscriptionRequest):
            form = media.build_upload(target, request)
            answer = await self.upstream.upload(
                form.url, form.headers, form.fields, request.upload, timeout
            )
        elif media.streamed(request):
            call = media.build(target, request)
            content_type, chunks = await self.upstream.open_bytes(media.classify, call, timeout)
            first = await anext(aiter(chunks), b"")  # the commit point: audio has started
            usage = media.usage(request, content_type, b"")
            return MediaReply(content_type=content_type, body=first, rest=chunks, usage=usage)
        else:
            answer = await self.upstream.request("POST", media.build(target, request), timeout)
        status, headers, body = answer
        if status >= 400:
            raise media.classify(status, headers, body)
        content_type = headers.get("Content-Type", "application/json")
        usage = media.usage(request, content_type, body)
        return MediaReply(content_type=content_type, body=body, usage=usage)
