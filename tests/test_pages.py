"""The public model list: `/models/` (HTML, checked in headless Chromium) and
`/assets/models.json`, generated from the catalog, with names, types and prices only."""

from __future__ import annotations

import os
import re
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
    ready = {name for name, m in models.items() if m["configured"]}
    assert "tricky/<b>bold</b>&co" in ready and "demo/echo" in ready  # key set / none needed
    assert "openai/gpt-4o-mini" not in ready and "anthropic/claude-3-5-haiku-20241022" not in ready
    assert {m["provider"] for m in models.values() if m["configured"]} == {
        "demo",
        "ollama",
        "tricky",
    }
    assert {"name": "fast", "chain": ["demo/echo"]} in data["aliases"]
    for leak in ("sk-very-secret-upstream", "TRICKY_API_KEY", "10.9.8.7", "secret-path", "http"):
        assert leak not in r.text


def test_html_page_is_escaped_and_runs_only_its_own_script(gw):
    r = httpx.get(f"{gw.url}/models/")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self';")
    html = r.text
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/assets/models.js" defer>']
    js = httpx.get(f"{gw.url}/assets/models.js")
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "fetch(" not in js.text and "http" not in js.text  # no network from the page
    assert "<code>&lt;b&gt;bold&lt;/b&gt;&amp;co</code>" not in html  # the name has its provider
    assert "<code>tricky/&lt;b&gt;bold&lt;/b&gt;&amp;co</code>" in html
    assert "$1.25 / 1M input tokens · $10 / 1M output tokens" in html
    for leak in ("sk-very-secret-upstream", "TRICKY_API_KEY", "10.9.8.7", "secret-path"):
        assert leak not in html
    assert httpx.get(f"{gw.url}/models", follow_redirects=True).text == html
    assert (
        '<tr data-type="chat" data-provider="tricky" data-configured="yes"><td data-label="Model">'
        "<code>tricky/&lt;b&gt;bold&lt;/b&gt;&amp;co</code></td>" in html
    )
    assert '<td data-label="Key" data-sort="yes"><span class="ok"' in html


def test_home_answers_browsers_with_html_and_clients_with_json(gw):
    data = httpx.get(f"{gw.url}/", headers={"accept": "application/json"})
    assert data.headers["content-type"] == "application/json"
    links = {link["href"]: link["title"] for link in data.json()["links"]}
    assert list(links) == [
        "/docs",
        "/models/",
        "/assets/models.json",
        "/v1/models",
        "/status",
        "/metrics",
        "/healthz",
    ]
    assert httpx.get(f"{gw.url}/").json() == data.json()  # curl's */* gets JSON too
    browser = httpx.get(f"{gw.url}/", headers={"accept": "text/html,application/xhtml+xml"})
    assert browser.headers["content-type"] == "text/html; charset=utf-8"
    for href in links:
        assert f'<a href="{href}">{href}</a>' in browser.text
    for href in ("/models/", "/assets/models.json", "/metrics", "/healthz"):
        assert httpx.get(f"{gw.url}{href}").status_code == 200, href


def test_pages_can_be_turned_off(tmp_path):
    config = write_config(tmp_path, "[server]\npublic_models_page = false\n")
    with running_gateway(config, {}) as gateway:
        assert httpx.get(f"{gateway.url}/models/").status_code == 404
        assert httpx.get(f"{gateway.url}/assets/models.json").status_code == 404
        links = [link["href"] for link in httpx.get(f"{gateway.url}/").json()["links"]]
        assert "/models/" not in links and "/metrics" in links


def chromium_args(tmp_path: Path) -> list[str]:
    chromium = shutil.which("chromium")
    need(chromium is not None, "Debian's chromium is not installed (scripts/ensure-chromium)")
    assert chromium is not None
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ]


def dom(args: list[str], url: str, width: int = 1280) -> str:
    return subprocess.run(
        [*args, f"--window-size={width},900", "--virtual-time-budget=3000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    ).stdout


def shown(page: str) -> list[str]:
    """The model names of the rows the script left visible, in order."""
    rows = re.findall(r"<tr data-type[^>]*?( hidden=\"\")?><td[^>]*><code>([^<]*)</code>", page)
    return [name for hidden, name in rows if not hidden]


@pytest.mark.browser
def test_model_list_page_in_headless_chromium(gw, tmp_path):
    args = chromium_args(tmp_path)
    page = dom(args, f"{gw.url}/models/")
    assert "<title>Models</title>" in page
    assert '<form class="filters" id="filters" role="search">' in page  # the script ran
    assert '<td data-label="Type">embedding</td>' in page
    assert '<td class="num" data-label="Context" data-sort="8192">8,192</td>' in page
    for kind in ("image", "speech", "transcription"):
        assert f'<tr data-type="{kind}"' in page
    assert "tricky/&lt;b&gt;bold&lt;/b&gt;&amp;co" in page  # rendered as text, not markup
    assert "<b>bold</b>" not in page
    everything = shown(page)
    assert len(everything) == len(httpx.get(f"{gw.url}/assets/models.json").json()["models"])

    embeddings = shown(dom(args, f"{gw.url}/models/?type=embedding&provider=demo"))
    assert embeddings == ["demo/embed"]
    assert shown(dom(args, f"{gw.url}/models/?q=ECHO")) == ["demo/echo"]  # not speecH Openai
    assert shown(dom(args, f"{gw.url}/models/?q=demo%20embed")) == ["demo/embed"]
    ready = shown(dom(args, f"{gw.url}/models/?ready=1&sort=Model"))
    assert ready == sorted(ready) and "tricky/<b>bold</b>&co" not in ready  # escaped in DOM
    assert {n.split("/")[0] for n in ready} == {"demo", "ollama", "tricky"}
    by_window = shown(dom(args, f"{gw.url}/models/?provider=demo&sort=Context%20window&desc=1"))
    assert by_window[0] == "demo/echo"  # the only demo model with a context window
    assert 'aria-sort="descending"' in dom(args, f"{gw.url}/models/?sort=Price&desc=1")


@pytest.mark.browser
@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)])
def test_model_list_screenshots_at_desktop_and_phone_widths(gw, tmp_path, width, height):
    """Taken to be looked at (set ROUTER_SCREENSHOTS=DIR to keep them); checked here only
    for being the page at that size."""
    args = chromium_args(tmp_path)
    keep = os.environ.get("ROUTER_SCREENSHOTS")
    shot = (Path(keep) if keep else tmp_path) / f"models-{width}.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*args, f"--screenshot={shot}", f"--window-size={width},{height}", f"{gw.url}/models/"],
        capture_output=True,
        timeout=90,
        check=True,
    )
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG")
    assert (int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")) == (
        width,
        height,
    )
