"""The status page during an outage made by the fake: `/status.json` and `/status` (loaded in
headless Chromium, refreshed by its script) show the open circuit, the error ratio and the
last failure kind, without a key, a host or an upstream message."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from chaos import ACME, POLICY, ask
from conftest import need
from fakes import FakeUpstream, Fault
from gateway_harness import running_gateway, write_config


def _outage(tmp_path: Path):  # type: ignore[no-untyped-def]
    fake = FakeUpstream("openai")
    config = write_config(
        tmp_path, providers={"acme": ACME}, policy=POLICY.replace("cooldown = 0.5", "cooldown = 60")
    )
    return fake, config


def _env(fake: FakeUpstream) -> dict[str, str]:
    return {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}  # once the fake listens


def test_status_json_shows_the_outage_without_secrets(tmp_path):
    fake, config = _outage(tmp_path)
    with fake, running_gateway(config, _env(fake)) as gw:
        fake.script("primary", *[Fault.status(503)] * 3)
        fake.script("backup", Fault.ok(text="fine", usage=(5, 1)))
        assert ask(gw, ["acme/primary"], fallback_models=["acme/backup"]).status_code == 200
        r = httpx.get(f"{gw.url}/status.json")  # no key
        page = httpx.get(f"{gw.url}/status")
    assert r.status_code == 200 and page.status_code == 200
    data = r.json()
    assert data["view"] == "worker" and "one worker's view" in data["note"]
    rows = {t["target"]: t for p in data["providers"] for t in p["targets"]}
    primary = rows["acme/primary"]
    assert primary["circuit"] == "open"
    assert primary["attempts"] == 3 and primary["error_ratio"] == 1.0
    assert primary["last_failure"] == "overloaded (HTTP 503)"
    assert 0 < primary["seconds_until_probe"] <= 60
    backup = rows["acme/backup"]
    assert backup["circuit"] == "closed" and backup["error_ratio"] == 0.0
    assert backup["attempts"] == 1 and backup["last_failure"] is None
    for leak in ("sk-acme", "127.0.0.1", "http://", fake.url):
        assert leak not in r.text and leak not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


@pytest.mark.browser
def test_status_page_in_headless_chromium_during_an_outage(tmp_path):
    chromium = shutil.which("chromium")
    need(chromium is not None, "Debian's chromium is not installed (scripts/ensure-chromium)")
    assert chromium is not None
    fake, config = _outage(tmp_path)
    args = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--virtual-time-budget=3000",
    ]
    shot = tmp_path / "status.png"
    with fake, running_gateway(config, _env(fake)) as gw:
        before = subprocess.run(
            [*args, "--dump-dom", f"{gw.url}/status"],
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        ).stdout
        fake.script("primary", *[Fault.status(500)] * 3)
        fake.script("backup", Fault.ok(text="fine", usage=(5, 1)))
        r = ask(gw, ["acme/primary"], fallback_models=["acme/backup"])
        assert r.status_code == 200, r.text
        dom = subprocess.run(
            [*args, "--dump-dom", f"{gw.url}/status"],
            capture_output=True,
            text=True,
            timeout=90,
            check=True,
        ).stdout
        subprocess.run(
            [*args, f"--screenshot={shot}", "--window-size=1100,700", f"{gw.url}/status"],
            capture_output=True,
            timeout=90,
            check=True,
        )
    assert '<tr class="closed"><td><code>acme/primary</code></td>' in before
    assert '<tr class="open"><td><code>acme/primary</code></td><td class="state">open</td>' in dom
    assert "server_error (HTTP 500)" in dom
    assert "Updated " in dom  # the script ran and refreshed the table from /status.json
    assert "worker view." in dom
    assert shot.read_bytes().startswith(b"\x89PNG")
    kept = Path(__file__).parent.parent / ".pytest_cache" / "status.png"
    kept.parent.mkdir(exist_ok=True)
    shutil.copy(shot, kept)  # for a human to look at
