"""How a rendered answer goes onto the socket, and how each transport fault breaks it.

Only this module writes to aiohttp responses. Counting rules for `after_chunks` (N) of cut,
stall, malformed and stream_error:
a stream sends its frames in order and stops right after the N-th `content` frame, or just
before the first `final`/`end` frame when it has fewer; with N = 0 it sends only the frames
before the first content (e.g. Anthropic's message_start). A whole body is cut in half, or
after N pieces when it is chunked (audio).
"""

from __future__ import annotations

import asyncio

import msgspec
from aiohttp import web

from fakes.faults import Fault
from fakes.frames import Answer, Frame, Stream, Whole


async def hang(request: web.Request) -> web.StreamResponse:
    """Never answer: ends when the client disconnects or the server stops (both cancel)."""
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


async def abort(request: web.Request) -> web.StreamResponse:
    """Drop the TCP connection at once; what was sent so far stays sent."""
    if request.transport is not None:
        request.transport.abort()
    return await hang(request)


async def serve(
    request: web.Request, fault: Fault, answer: Answer | None, broken: bytes
) -> web.StreamResponse:
    if fault.kind == "reset":
        return await abort(request)
    if fault.kind == "silent" or answer is None:
        return await hang(request)
    if fault.reply.delay:
        await asyncio.sleep(fault.reply.delay)
    if isinstance(answer, Stream):
        return await _stream(request, fault, answer, broken)
    return await _whole(request, fault, answer)


def prefix(frames: tuple[Frame, ...], after_chunks: int) -> list[Frame]:
    """The frames sent before a cut/stall/malformed fault strikes (see the module docstring)."""
    out: list[Frame] = []
    seen = 0
    for frame in frames:
        if frame.kind in ("final", "end") or (frame.kind == "content" and seen == after_chunks):
            break
        out.append(frame)
        if frame.kind == "content":
            seen += 1
            if seen == after_chunks:
                break
    return out


async def _stream(
    request: web.Request, fault: Fault, answer: Stream, broken: bytes
) -> web.StreamResponse:
    frames = list(answer.frames)
    if fault.kind == "no_done":
        frames = [f for f in frames if f.kind != "end"]
    if fault.kind in ("cut", "stall", "malformed", "stream_error"):
        frames = prefix(answer.frames, fault.after_chunks)
    headers = {"Content-Type": answer.content_type, "Cache-Control": "no-cache"}
    response = web.StreamResponse(headers=headers | answer.headers)
    await response.prepare(request)
    waiting = fault.kind == "slow_first_token"
    for index, frame in enumerate(frames):
        if waiting and (frame.kind != "meta" or not fault.preamble):
            await asyncio.sleep(fault.delay)
            waiting = False
        if index and fault.reply.chunk_delay:
            await asyncio.sleep(fault.reply.chunk_delay)
        await response.write(frame.data)
    return await _finish(request, response, fault, broken)


async def _finish(
    request: web.Request, response: web.StreamResponse, fault: Fault, broken: bytes
) -> web.StreamResponse:
    if fault.kind == "cut":
        return await abort(request)
    if fault.kind == "stall":
        return await hang(request)
    if fault.kind in ("malformed", "stream_error"):
        await response.write(broken)
    await response.write_eof()
    return response


async def _whole(request: web.Request, fault: Fault, answer: Whole) -> web.StreamResponse:
    if fault.kind == "stream_error":
        fault = msgspec.structs.replace(fault, kind="ok")
    body = answer.body
    pieces = list(answer.pieces)
    if fault.kind in ("cut", "stall"):
        pieces = pieces[: fault.after_chunks] if answer.chunked else [body[: len(body) // 2]]
    elif fault.kind == "malformed":
        body = body[: max(1, len(body) // 2)]
        pieces = [body]
    elif fault.kind == "slow_first_token":
        await asyncio.sleep(fault.delay)
    headers = {"Content-Type": answer.content_type} | answer.headers
    response = web.StreamResponse(status=answer.status, headers=headers)
    if answer.chunked:
        response.enable_chunked_encoding()
    else:
        response.content_length = len(body)
    await response.prepare(request)
    for index, piece in enumerate(pieces):
        if index and fault.reply.chunk_delay:
            await asyncio.sleep(fault.reply.chunk_delay)
        await response.write(piece)
    return await _finish(request, response, fault, b"")
