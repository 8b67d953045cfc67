"""The public model list: `/models/` (HTML, checked in headless Chromium) and
`/assets/models.json`, generated from the catalog, with names, types and prices only."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import need
from gateway_harness import Gateway, running_gateway, write_config

TRICKY = """
protocol = "openai"
base_url = "http://10.9.8.7:1234/secret-path/v1"
api_key_env = "TRICKY_API_KEY"

[models."<b>bold</b>&co"]
context_window = 4096
[models."<b>bold</b>&co".prices]
input = "1.25"
output = "10.00"
"""


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    config = write_config(tmp_path, '[aliases]\nfast = ["demo/echo"]\n', {"tricky": TRICKY})
    with running_gateway(config, {"TRICKY_API_KEY": "sk-very-secret-upstream"}) as gateway:
        yield gateway


def test_json_lists_names_types_and_prices_only(gw):
    r = httpx.get(f"{gw.url}/assets/models.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    data = r.json()
    models = {m["name"]: m for m in data["models"]}
    assert {name: models[name]["type"] for name in models if name.startswith("demo/")} == {
        "demo/echo": "chat",
        "demo/embed": "embedding",
        "demo/image": "image",
        "demo/speak": "speech",
        "demo/transcribe": "transcription",
    }
    assert models["demo/echo"]["context_window"] == 8192
    assert models["openai/gpt-4o-mini"]["prices"] == {
        "input_per_1m_tokens": 0.15,
        "output_per_1m_tokens": 0.60,
        "cached_input_per_1m_tokens": 0.075,
    }
    assert models["openai/tts-1"]["prices"] == {"per_1m_characters": 15.0}
    assert {"name": "fast", "chain": ["demo/echo"]} in data["aliases"]
    for leak in ("sk-very-secret-upstream", "TRICKY_API_KEY", "10.9.8.7", "secret-path", "http"):
        assert leak not in r.text


def test_html_page_is_escaped_and_scriptless(gw):
    r = httpx.get(f"{gw.url}/models/")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in r.headers["content-security-policy"]
    html = r.text
    assert "<script" not in html
    assert "<code>&lt;b&gt;bold&lt;/b&gt;&amp;co</code>" not in html  # the name has its provider
    assert "<code>tricky/&lt;b&gt;bold&lt;/b&gt;&amp;co</code>" in html
    assert "$1.25 / 1M input tokens · $10 / 1M output tokens" in html
    for leak in ("sk-very-secret-upstream", "TRICKY_API_KEY", "10.9.8.7", "secret-path"):
        assert leak not in html
    assert httpx.get(f"{gw.url}/models", follow_redirects=True).text == html


def test_pages_can_be_turned_off(tmp_path):
    config = write_config(tmp_path, "[server]\npublic_models_page = false\n")
    with running_gateway(config, {}) as gateway:
        assert httpx.get(f"{gateway.url}/models/").status_code == 404
        assert httpx.get(f"{gateway.url}/assets/models.json").status_code == 404


@pytest.mark.browser
def test_model_list_page_in_headless_chromium(gw, tmp_path):
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
    ]
    dom = subprocess.run(
        [*args, "--dump-dom", f"{gw.url}/models/"],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    ).stdout
    assert "<title>Models</title>" in dom
    assert '<tr data-type="embedding"><td><code>demo/embed</code></td><td>embedding</td>' in dom
    assert '<tr data-type="chat"><td><code>demo/echo</code></td><td>chat</td>' in dom
    assert '<td class="num">8,192</td>' in dom
    for kind in ("image", "speech", "transcription"):
        assert f'<tr data-type="{kind}">' in dom
    assert "tricky/&lt;b&gt;bold&lt;/b&gt;&amp;co" in dom  # rendered as text, not markup
    assert "<b>bold</b>" not in dom
    shot = tmp_path / "models.png"
    subprocess.run(
        [*args, f"--screenshot={shot}", "--window-size=1200,900", f"{gw.url}/models/"],
        capture_output=True,
        timeout=90,
        check=True,
    )
    assert shot.read_bytes().startswith(b"\x89PNG")
