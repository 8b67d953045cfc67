"""Gemini `generateContent` on the wire: the request body and the responses, as msgspec
Structs (field names are the API's camelCase), with their encoder and decoders built once.
`router.protocols.gemini` translates.
"""

from __future__ import annotations

from typing import Any

import msgspec

# ---- wire types: what we send ----------------------------------------------------------------


class Blob(msgspec.Struct):
    mimeType: str
    data: str


class FileData(msgspec.Struct):
    mimeType: str
    fileUri: str


class FnCall(msgspec.Struct):
    name: str
    args: dict[str, Any]


class FnResponse(msgspec.Struct):
    name: str
    response: dict[str, Any]


class Part(msgspec.Struct, omit_defaults=True):
    text: str | None = None
    inlineData: Blob | None = None
    fileData: FileData | None = None
    functionCall: FnCall | None = None
    functionResponse: FnResponse | None = None
    thoughtSignature: str | None = None


class Content(msgspec.Struct):
    role: str
    parts: list[Part]


class System(msgspec.Struct):
    parts: list[Part]


class ThinkingConfig(msgspec.Struct, omit_defaults=True):
    thinkingBudget: int
    includeThoughts: bool | None = None


class GenerationConfig(msgspec.Struct, omit_defaults=True):
    maxOutputTokens: int | None = None
    temperature: float | None = None
    topP: float | None = None
    topK: int | None = None
    presencePenalty: float | None = None
    frequencyPenalty: float | None = None
    stopSequences: list[str] | None = None
    seed: int | None = None
    responseMimeType: str | None = None
    responseJsonSchema: Any = None
    thinkingConfig: ThinkingConfig | None = None


class FnDeclaration(msgspec.Struct, omit_defaults=True):
    name: str
    description: str | None = None
    parametersJsonSchema: dict[str, object] | None = None


class Tool(msgspec.Struct):
    functionDeclarations: list[FnDeclaration]


class SearchTool(msgspec.Struct):
    google_search: dict[str, object] = msgspec.field(default_factory=dict)


class FnConfig(msgspec.Struct, omit_defaults=True):
    mode: str  # AUTO | ANY | NONE
    allowedFunctionNames: list[str] | None = None


class ToolConfig(msgspec.Struct):
    functionCallingConfig: FnConfig


class Body(msgspec.Struct, omit_defaults=True):
    contents: list[Content]
    systemInstruction: System | None = None
    generationConfig: GenerationConfig | None = None
    tools: list[Tool | SearchTool] | None = None
    toolConfig: ToolConfig | None = None


# ---- wire types: what comes back ---------------------------------------------------------------


class OutCall(msgspec.Struct):
    name: str = ""
    args: dict[str, Any] | None = None
    id: str | None = None


class OutPart(msgspec.Struct):
    text: str | None = None
    thought: bool = False
    functionCall: OutCall | None = None
    thoughtSignature: str | None = None


class OutContent(msgspec.Struct):
    parts: list[OutPart] = []


class Web(msgspec.Struct):
    uri: str = ""
    title: str = ""


class Chunk(msgspec.Struct):
    web: Web | None = None


class Support(msgspec.Struct):
    groundingChunkIndices: list[int] = []


class Grounding(msgspec.Struct):
    webSearchQueries: list[str] = []
    groundingChunks: list[Chunk] = []
    groundingSupports: list[Support] = []


class Candidate(msgspec.Struct):
    content: OutContent | None = None
    finishReason: str | None = None
    groundingMetadata: Grounding | None = None


class UsageMetadata(msgspec.Struct):
    promptTokenCount: int = 0
    candidatesTokenCount: int = 0
    thoughtsTokenCount: int = 0
    cachedContentTokenCount: int = 0
    toolUsePromptTokenCount: int = 0


class Feedback(msgspec.Struct):
    blockReason: str | None = None


class Detail(msgspec.Struct):
    type: str = msgspec.field(default="", name="@type")
    reason: str | None = None
    retryDelay: str | None = None


class Error(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""
    details: list[Detail] = []


class Response(msgspec.Struct):
    candidates: list[Candidate] = []
    usageMetadata: UsageMetadata | None = None
    promptFeedback: Feedback | None = None
    responseId: str | None = None
    error: Error | None = None


class ErrorEnvelope(msgspec.Struct):
    error: Error | None = None


ENCODER = msgspec.json.Encoder()
ARGS = msgspec.json.Decoder(dict[str, Any])
RESPONSE = msgspec.json.Decoder(Response)
ERROR = msgspec.json.Decoder(ErrorEnvelope)
ERRORS = msgspec.json.Decoder(list[ErrorEnvelope])  # streaming endpoints wrap it in a list
