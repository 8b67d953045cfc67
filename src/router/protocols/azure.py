"""Azure OpenAI: the OpenAI Chat Completions dialect behind per-deployment URLs.

`POST {base_url}/deployments/{deployment}/chat/completions?api-version={api_version}` with an
`api-key` header; the deployment is the catalog's `upstream_name` (else the model name). With
`api_version = "v1"` the newer `{base_url}/v1/chat/completions` route is used instead, which
takes the deployment as `model` in the body.

Bodies, answers and errors are OpenAI's, so everything but the endpoint is `OpenAIChat`'s. Azure
streams open with a chunk that has empty `choices` and only `prompt_filter_results`: the OpenAI
decoder already yields nothing for it. Content-filter refusals (400 `content_filter`) are
classified as content-policy failures by the shared table.
"""

from __future__ import annotations

from router.core.types import Target
from router.protocols.openai_chat import OpenAIChat

DEFAULT_API_VERSION = "2024-10-21"
_CACHE_LIMIT = 4096  # endpoints cached per deployment; bounded like the catalog's targets


class AzureChat(OpenAIChat):
    """The codec for Azure OpenAI deployments."""

    def endpoint(self, target: Target) -> tuple[str, dict[str, str]]:
        """URL and headers for one deployment, built once and reused by every request."""
        found = self._endpoints.get(target.ref)
        if found is None:
            found = (_url(target), self._headers(target))
            if len(self._endpoints) < _CACHE_LIMIT:
                self._endpoints[target.ref] = found
        return found

    def _headers(self, target: Target) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **target.provider.headers}
        if target.key:
            headers["api-key"] = target.key
        return headers


def _url(target: Target) -> str:
    provider = target.provider
    version = provider.api_version or DEFAULT_API_VERSION
    if version == "v1":
        return f"{provider.base_url}/v1/chat/completions"
    deployment = target.upstream_model
    return f"{provider.base_url}/deployments/{deployment}/chat/completions?api-version={version}"
