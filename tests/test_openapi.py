"""The OpenAPI 3.1 document at /openapi.json: one operation for every route the gateway serves,
schemas from the surfaces' Structs as the gateway really encodes them; and /docs, its reference
page, rendered offline from the vendored Swagger UI in headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from conftest import need
from gateway_harness import MASTER_KEY, running_gateway, write_config
from kit import attempts, post
from router.app import create_app
from router.config import load_settings
from router.runtime import Runtime

METHODS = {"get", "post", "patch", "delete", "put"}


def _routes(config: Path) -> set[tuple[str, str]]:
    env = {"ROUTER_MASTER_KEY": MASTER_KEY}
    app = create_app(Runtime(load_settings(config, env), env, "127.0.0.1"))
    out = set()
    for route in app.routes:
        assert isinstance(route, Route)
        if route.path == "/docs/{name}":  # the page's own script and style, no API
            continue
        path = route.path.replace(":path}", "}")
        out |= {(m.lower(), path) for m in route.methods or () if m != "HEAD"}
    return out


def _operations(doc: dict) -> set[tuple[str, str]]:
    return {(m, path) for path, item in doc["paths"].items() for m in item if m in METHODS}


def test_every_route_is_documented_and_nothing_else(tmp_path):
    config = write_config(tmp_path)
    with running_gateway(config, {}) as gw:
        doc = httpx.get(f"{gw.url}/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    routes = _routes(config)
    assert _operations(doc) == routes
    assert len(routes) == 34
    for wanted in (
        ("post", "/api/v1/completions"),
        ("post", "/v1/chat/completions"),
        ("post", "/v1/audio/transcriptions"),
        ("get", "/v1/models/{model}"),
        ("post", "/admin/keys/{key_id}/revoke"),
        ("get", "/metrics"),
        ("get", "/assets/models.json"),
    ):
        assert wanted in routes


def test_pages_turned_off_leave_the_document(tmp_path):
    config = write_config(tmp_path, "[server]\npublic_models_page = false\n")
    with running_gateway(config, {}) as gw:
        doc = httpx.get(f"{gw.url}/openapi.json").json()
        assert _operations(doc) == _routes(config)
    assert "/models/" not in doc["paths"] and "/assets/models.json" not in doc["paths"]
    assert "/v1/embeddings" in doc["paths"]


def test_schemas_say_what_the_gateway_sends(demo_gateway):
    doc = httpx.get(f"{demo_gateway.url}/openapi.json").json()
    schemas = doc["components"]["schemas"]
    # Decimal is written as a JSON number (ENCODER's decimal_format), not msgspec's string
    assert schemas["OutCosts"]["properties"]["total_tokens_cost"] == {
        "anyOf": [{"type": "number"}, {"type": "null"}]
    }
    assert schemas["openai_chunks.OutUsage"]["properties"]["cost"] == {"type": "number"}
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    assert chat["security"] == [{"bearer": []}]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatBody"
    }
    ok = chat["responses"]["200"]["content"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatCompletion"}
    event = ok["text/event-stream"]["schema"]["properties"]["data"]
    assert event["if"] == {"const": "[DONE]"}
    assert event["else"]["contentSchema"] == {
        "anyOf": [
            {"$ref": "#/components/schemas/ChatCompletionChunk"},
            {"$ref": "#/components/schemas/StreamErrorEvent"},
        ]
    }
    assert set(chat["responses"]) == {"200", *map(str, (400, 401, 403, 404, 408, 413, 429))} | {
        "500",
        "502",
        "503",
        "504",
    }
    assert chat["responses"]["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OpenAIError"
    }
    iron = doc["paths"]["/api/v1/completions"]["post"]["responses"]["400"]
    assert iron["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OwnError"
    }
    upload = doc["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]
    form = upload["multipart/form-data"]["schema"]
    assert form["required"] == ["file", "model"]
    assert form["properties"]["file"]["contentMediaType"] == "application/octet-stream"
    assert form["properties"]["model"] == {"type": "string"}
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    assert doc["paths"]["/admin/keys"]["post"]["responses"]["201"]
    assert doc["components"]["securitySchemes"] == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <key>`",
        },
        "x-api-key": {"type": "apiKey", "in": "header", "name": "x-api-key"},  # /v1/messages
    }
    assert doc["paths"]["/v1/messages"]["post"]["security"] == [{"bearer": []}, {"x-api-key": []}]
    for leak in ("127.0.0.1", "sk-", "API_KEY"):
        assert leak not in httpx.get(f"{demo_gateway.url}/openapi.json").text


def test_docs_page_and_assets_are_local(demo_gateway):
    r = httpx.get(f"{demo_gateway.url}/docs")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "connect-src 'self';" in csp
    assert "http" not in r.text.replace('href="/openapi.json"', "")  # nothing from elsewhere
    js = httpx.get(f"{demo_gateway.url}/docs/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert len(js.content) > 1_000_000
    assert httpx.get(f"{demo_gateway.url}/docs/swagger-ui.css").status_code == 200
    assert httpx.get(f"{demo_gateway.url}/docs/nothing.js").status_code == 404


@pytest.mark.browser
def test_docs_page_renders_in_headless_chromium(demo_gateway, tmp_path):
    chromium = shutil.which("chromium")
    need(chromium is not None, "Debian's chromium is not installed (scripts/ensure-chromium)")
    assert chromium is not None
    args = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--virtual-time-budget=10000",  # let the script fetch and render the document
    ]
    url = f"{demo_gateway.url}/docs"
    dom = subprocess.run(
        [*args, "--dump-dom", url], capture_output=True, text=True, timeout=90, check=True
    ).stdout
    assert "<title>router API reference</title>" in dom
    for path in ("/v1/chat/completions", "/api/v1/completions", "/admin/keys/{key_id}/revoke"):
        assert f'data-path="{path}"' in dom
    assert 'class="opblock opblock-post' in dom
    shot = tmp_path / "docs.png"
    subprocess.run(
        [*args, f"--screenshot={shot}", "--window-size=1200,1600", url],
        capture_output=True,
        timeout=90,
        check=True,
    )
    assert shot.read_bytes().startswith(b"\x89PNG")


# ---- found while fuzzing the document's operations by hand ----------------------------------

HI = [{"role": "user", "content": "hi"}]


def test_a_model_name_with_a_control_character_is_a_clean_400(demo_gateway):
    chat = post(demo_gateway, "/v1/chat/completions", {"model": "demo/echo\u0000", "messages": HI})
    assert chat.status_code == 400
    assert chat.json()["error"]["param"] == "model"
    assert chat.json()["error"]["code"] == "invalid_value"
    iron = post(
        demo_gateway,
        "/api/v1/completions",
        {"models": ["demo/echo", "demo/echo\u001b"], "messages": HI},
    )
    assert iron.status_code == 400 and iron.json()["error"]["field"] == "models[1]"
    body = {"model": "demo/embed", "fallback_models": ["x\u0085"], "input": "a"}
    embed = post(demo_gateway, "/v1/embeddings", body)
    assert embed.status_code == 400 and embed.json()["error"]["param"] == "fallback_models[0]"


def test_a_non_ascii_model_name_is_answered_with_an_escaped_header(demo_gateway):
    chat = post(demo_gateway, "/v1/chat/completions", {"model": "demo/эхо", "messages": HI})
    assert chat.status_code == 200 and chat.json()["model"] == "demo/эхо"
    assert attempts(chat) == [("demo/\\u044d\\u0445\\u043e", "ok", "200")]
    embed = post(demo_gateway, "/v1/embeddings", {"model": "demo/эмбед", "input": "a"})
    assert embed.status_code == 200
    assert embed.headers["x-router-model"] == "demo/\\u044d\\u043c\\u0431\\u0435\\u0434"


def test_unknown_admin_and_iron_labs_paths_answer_json_as_documented(demo_gateway):
    url, headers = demo_gateway.url, demo_gateway.headers
    # a key id holding a slash matches no route: still the documented 404 shape
    r = httpx.get(f"{url}/admin/keys/a%2Fb", headers=headers)
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "unknown_url"
    r = httpx.put(f"{url}/api/v1/completions", headers=headers)
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert r.headers["allow"] == "POST"
    page = httpx.get(f"{url}/nothing-here")
    assert page.status_code == 404 and page.text == "Not Found"
