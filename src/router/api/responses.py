"""The OpenAI Responses surface: `POST /v1/responses`, `GET` and `DELETE /v1/responses/{id}`.

What Codex and the OpenAI SDKs speak. To an OpenAI model whose catalog entry lists the
`responses` capability the body goes natively to OpenAI's Responses endpoint, everything
passed through (`router.protocols.openai_responses`); to every other target it is translated
through the canonical core (`router.api.responses_translate`), and what had to be left out is
named in `x-router-dropped`. Answers (JSON and the event stream) are rendered from canonical
events, so they look the same whichever provider answered. Responses are stored unless
`store` is false, and `previous_response_id` continues one on any provider.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from router.api.common import ENCODER, Begun, begin, json_response, read_body, sse, trail_header
from router.api.errors import OpenAIError, OpenAIErrorBody
from router.api.openapi import CALL, JSON, READ, SSE, TEXT, Errors, Op, Raw
from router.api.responses_render import (
    ResponseObject,
    finish,
    new_id,
    output_items,
    output_text,
    skeleton,
)
from router.api.responses_request import (
    Decoded,
    ResponsesBody,
    decode_body,
    items_of,
    validate,
)
from router.api.responses_stream import ResponsesRenderer
from router.api.responses_translate import Translated, translate
from router.core.call import Call
from router.core.chat import ChatCall
from router.core.types import Asked, Completion, Native, Target
from router.errors import RequestError
from router.runtime import Runtime
from router.store.response_records import StoredResponse

_ITEMS = msgspec.json.Decoder(list[dict[str, object]])
NOT_OPENAI = ("client_metadata",)
"""Sent by Codex, absent from OpenAI's published `CreateResponse`: dropped on the native path."""


class Prepared(msgspec.Struct, frozen=True):
    """One request, ready for the gateway, with what rendering and storing need."""

    body: ResponsesBody
    call: ChatCall
    translated: Translated
    native: Native
    history: list[object]  # every input item of this turn, as sent: the stored conversation


def not_found(message: str) -> Response:
    body = OpenAIErrorBody(message=message, type="invalid_request_error", param=None, code=None)
    return json_response(OpenAIError(body), 404)


async def _history(rt: Runtime, previous: str | None) -> list[dict[str, object]]:
    if previous is None:
        return []
    stored = await rt.responses.get(previous)
    if stored is None:
        raise RequestError(
            "previous_response_not_found",
            f"Previous response with id '{previous}' not found.",
            "previous_response_id",
            status=404,
        )
    return _ITEMS.decode(stored.items)


async def prepare(rt: Runtime, decoded: Decoded, begun: Begun) -> Prepared:
    body = decoded.body
    prior = await _history(rt, body.previous_response_id)
    sent = decoded.raw.get("input")
    new = [{"type": "message", "role": "user", "content": sent}] if isinstance(sent, str) else sent
    assert isinstance(new, list)
    items = items_of(prior, "previous_response_id") + decoded.items if prior else decoded.items
    translated = translate(body, items)
    fields = dict(decoded.raw)
    fields.pop("previous_response_id", None)
    for name in NOT_OPENAI:
        fields.pop(name, None)
    if prior:
        fields["input"] = [*prior, *new]
    native = Native("openai", fields, capability="responses")
    request = msgspec.structs.replace(translated.request, native=native)
    call: ChatCall = Call(  # the bare class: a subscripted generic's call is slow
        principal=begun.principal,
        models=(Asked(body.model, "model"),),
        request=request,
        surface="responses",
        received=begun.received,
        stream=body.stream,
        timeout=begun.timeout,
    )
    return Prepared(body, call, translated, native, [*prior, *new])


def _check_blocked(rt: Runtime, prepared: Prepared) -> None:
    """A 400 when a target would get this request translated but cannot honour part of it."""
    blocked = prepared.translated.blocked
    if not blocked:
        return
    for target in rt.chat.plan(prepared.call).targets:
        if prepared.native.for_target(target) is None:
            field, why = blocked[0]
            raise RequestError(
                "unsupported_parameter",
                f"`{field}` cannot be sent to {target.ref}: {why}.",
                field,
            )


def _headers(prepared: Prepared, target: Target | None, trail: str) -> dict[str, str]:
    headers = {"x-router-attempts": trail}
    dropped = prepared.translated.dropped
    if target is not None and prepared.native.for_target(target) is not None:
        dropped = tuple(name for name in dropped if name in NOT_OPENAI)
    if dropped:
        headers["x-router-dropped"] = ", ".join(dropped)
    return headers


def _saver(rt: Runtime, prepared: Prepared) -> Callable[[ResponseObject], None]:
    def save(response: ResponseObject) -> None:
        if prepared.body.store is False:
            return
        items = ENCODER.encode([*prepared.history, *response.output])
        rt.responses.save(StoredResponse(response.id, ENCODER.encode(response), items))

    return save


def routes(rt: Runtime) -> list[Route]:
    async def create(request: Request) -> Response:
        begun = await begin(rt, request)
        decoded = decode_body(await read_body(request))
        body = decoded.body
        validate(body)
        prepared = await prepare(rt, decoded, begun)
        _check_blocked(rt, prepared)
        save = _saver(rt, prepared)
        if body.stream:
            stream = await rt.chat.open_stream(prepared.call)
            response = skeleton(new_id("resp"), body, stream.target.ref)
            renderer = ResponsesRenderer(response, prepared.translated.custom, save)
            answer = sse(stream, renderer, rt)
            answer.headers.update(_headers(prepared, stream.target, trail_header(stream.trail)))
            return answer
        completion = await rt.chat.complete(prepared.call)
        return _complete(rt, prepared, completion, save)

    def _complete(
        rt: Runtime,
        prepared: Prepared,
        completion: Completion,
        save: Callable[[ResponseObject], None],
    ) -> Response:
        ref = f"{completion.provider}/{completion.model}"
        response = skeleton(new_id("resp"), prepared.body, ref)
        output = output_items(completion, prepared.translated.custom)
        finish(response, completion, output)
        save(response)
        response.output_text = output_text(output)
        target = next(iter(rt.catalog.expand(ref, "model")), None)
        headers = _headers(prepared, target, trail_header(completion.attempts))
        if completion.costs is not None:
            headers["x-router-cost"] = str(completion.costs.total_tokens_cost)
        return json_response(response, headers=headers)

    async def get(request: Request) -> Response:
        await begin(rt, request)
        ident = request.path_params["id"]
        stored = await rt.responses.get(ident)
        if stored is None:
            return not_found(f"Response with id '{ident}' not found.")
        return Response(stored.response, media_type="application/json")

    async def delete(request: Request) -> Response:
        await begin(rt, request)
        ident = request.path_params["id"]
        if not await rt.responses.delete(ident):
            return not_found(f"Response with id '{ident}' not found.")
        return json_response({"id": ident, "object": "response", "deleted": True})

    return [
        Route("/v1/responses", create, methods=["POST"]),
        Route("/v1/responses/{id}", get, methods=["GET"]),
        Route("/v1/responses/{id}", delete, methods=["DELETE"]),
    ]


_OBJECT: dict[str, object] = {JSON: Raw({"type": "object"})}
_READ = Errors(OpenAIError, READ)
OPERATIONS = (
    Op(
        "POST",
        "/v1/responses",
        "Response (OpenAI Responses API)",
        "OpenAI",
        {JSON: Raw({"type": "object"}), SSE: TEXT},
        ResponsesBody,
        Errors(OpenAIError, CALL),
    ),
    Op(
        "GET",
        "/v1/responses/{id}",
        "A stored response",
        "OpenAI",
        {JSON: Raw({"type": "object"})},
        None,
        Errors(OpenAIError, READ),
    ),
    Op(
        "DELETE",
        "/v1/responses/{id}",
        "Delete a stored response",
        "OpenAI",
        {JSON: Raw({"type": "object"})},
        None,
        Errors(OpenAIError, READ),
    ),
)
