"""The two reference pages as the acceptance test: every example runs as the page writes it.

The pages in `../shared/reference/` (the Iron Labs completions page and the OpenAI-compatible
gateway page) are what our users hold. Their curl and Python examples are kept verbatim in
`tests/data/reference_examples.md`, with only the host, the key and `/tmp` as placeholders; a
drift test checks that data against the pages whenever the folder is present (always under CI).

Each example runs with a real client: curl as a subprocess (`bash -c`, the command as written;
the test appends only `--write-out '%{stderr}...'` to read the status code on stderr, which
changes nothing in the request), and the Python example with the official `openai` SDK in its
own interpreter. The gateway runs over loopback with the repository's providers and the
`[routing]` and `[aliases]` of the repository's `routing.toml`, in front of fake upstreams that
speak each API: OpenAI (chat, images, embeddings, speech, multipart transcription), DeepSeek
(OpenAI-compatible), Anthropic and Gemini. The client key is a virtual key limited to the
models the pages name, as the gateway page asks ("a limited virtual key").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import msgspec
import openai
import pytest
from openai.types import CreateEmbeddingResponse, ImagesResponse

from conftest import need
from fakes import FakeUpstream, Fault
from fakes.binary import mp3, speech_seconds
from gateway_harness import MASTER_KEY, REPO, Gateway, running_gateway, write_config
from kit import post

DATA = Path(__file__).resolve().parent / "data" / "reference_examples.md"
SHARED = REPO.parent / "shared" / "reference"
PAGE_HOST = {
    "ironlabs-completions.md": "https://www.chat.ironlabs.ai",
    "openai-gateway.md": "https://llm.ionclocklab.com",
}
PAGE_KEY = {"ironlabs-completions.md": "<IAI_API_Key>", "openai-gateway.md": "YOUR_API_KEY"}
STATUS = " --write-out '%{stderr}HTTP %{http_code}'"  # observation only: the status on stderr


class Example(NamedTuple):
    name: str
    page: str
    text: str


_SECTION = re.compile(r"^## (\w+) \((\S+)\)\n\n.*?\n```\w+\n(.*?)\n```$", re.M | re.S)


def load_examples() -> dict[str, Example]:
    return {m[1]: Example(m[1], m[2], m[3]) for m in _SECTION.finditer(DATA.read_text())}


EX = load_examples()
_USE = re.compile(r"(Chat|Image|Embeddings|Text to speech|Transcription)(\S+)")
RECOMMENDED = [  # (use case, model), from the page's flattened table
    (m[1], m[2]) for line in EX["recommended"].text.splitlines()[1:] if (m := _USE.fullmatch(line))
]
CHAT_MODELS = [model for use, model in RECOMMENDED if use == "Chat"]
TYPES = {
    "Chat": "chat",
    "Image": "image",
    "Embeddings": "embedding",
    "Text to speech": "speech",
    "Transcription": "transcription",
}
TRANSCRIBERS = ["whisper-1", "gpt-4o-mini-transcribe"]  # "Recommended models: ..."
CHAIN = ["openai/gpt-4o", "anthropic/claude-3-5-sonnet-20241022"]
FALLBACK = "google/gemini-2.0-flash"
PAGE_MODELS = [model for _, model in RECOMMENDED] + ["gpt-4o-mini-transcribe", *CHAIN, FALLBACK]
COMPLETIONS_FALLBACK = EX["completions"].text.replace(
    '"stream": false', f'"fallback_models": ["{FALLBACK}"],\n  "stream": false'
)

ROUTING: dict[str, Any] = tomllib.loads((REPO / "routing.toml").read_text())
PREFERENCE: list[str] = ROUTING["routing"]["preference"]


def repo_routing(aliases: dict[str, list[str]] | None = None) -> str:
    """The `[routing]` and `[aliases]` tables of the repository's routing.toml, as TOML."""
    lines = ["[routing]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in ROUTING["routing"].items()]
    lines.append("[aliases]")
    for name, chain in (aliases if aliases is not None else ROUTING["aliases"]).items():
        lines.append(f"{json.dumps(name)} = {json.dumps(chain)}")
    return "\n".join(lines) + "\n"


# ---- running the examples ------------------------------------------------------------------------


class Run(NamedTuple):
    status: int | None  # the HTTP status curl received; None for the Python example
    exit: int  # the process's exit code (curl: always 0, checked)
    out: bytes
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def fill(text: str, host: str, key: str, tmp: Path) -> str:
    return text.replace("{HOST}", host).replace("{KEY}", key).replace("{TMP}", str(tmp))


def curl(command: str) -> Run:
    done = subprocess.run(["bash", "-c", command + STATUS], capture_output=True, timeout=60)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    status = re.search(r"HTTP (\d{3})$", err)
    assert status is not None, err
    return Run(int(status[1]), 0, done.stdout, err[: status.start()])


def python(code: str, cwd: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, cwd=cwd, env=env
    )
    return Run(None, done.returncode, done.stdout, done.stderr.decode())


class Pages(msgspec.Struct):
    """A gateway with the repository's catalog and routing, fakes for every provider the pages
    route to, a virtual key for the pages' models, and a folder for the examples' files."""

    gw: Gateway
    key: str
    tmp: Path
    fakes: dict[str, FakeUpstream]

    def run(self, text: str, key: str | None = None) -> Run:
        """Run one example (curl or Python) as written, against this gateway."""
        code = fill(text, self.gw.url, self.key if key is None else key, self.tmp)
        if code.startswith("curl"):
            return curl(code)
        return python(code, self.tmp)


def issue_key(gw: Gateway, models: list[str]) -> str:
    r = post(gw, "/admin/keys", {"name": "reference pages", "models": models})
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


UPSTREAMS = {  # provider file -> (fake protocol, key variable, base URL variable)
    "openai": ("openai", "OPENAI_API_KEY", "OPENAI_BASE_URL"),
    "deepseek": ("openai", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL"),
    "anthropic": ("anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    "google": ("gemini", "GEMINI_API_KEY", "GOOGLE_BASE_URL"),
}


@pytest.fixture
def pages(tmp_path: Path) -> Iterator[Pages]:
    fakes = {name: FakeUpstream(protocol).start() for name, (protocol, _, _) in UPSTREAMS.items()}
    env: dict[str, str] = {}
    for name, (_, key_var, url_var) in UPSTREAMS.items():
        env |= {key_var: f"sk-upstream-{name}", url_var: fakes[name].url}
    files = tmp_path / "files"
    files.mkdir()
    try:
        with running_gateway(write_config(tmp_path, repo_routing()), env) as gw:
            yield Pages(gw, issue_key(gw, PAGE_MODELS), files, fakes)
    finally:
        for fake in fakes.values():
            fake.stop()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Pages]:
    """A fresh machine: the same gateway with no provider key set at all."""
    files = tmp_path / "files"
    files.mkdir()
    with running_gateway(write_config(tmp_path, repo_routing()), {}) as gw:
        yield Pages(gw, MASTER_KEY, files, {})


def only(fake: FakeUpstream) -> Any:
    """The one request a fake received, as it received it."""
    assert len(fake.seen) == 1, fake.seen
    return fake.seen[0]


# ---- the data is what the pages say --------------------------------------------------------------


def test_the_data_is_what_the_pages_say():
    need(SHARED.is_dir(), f"the reference pages are not beside the clone ({SHARED})")
    assert set(EX) == {
        "completions_template",
        "completions_response",
        "completions",
        "chat",
        "python",
        "images",
        "embeddings",
        "speech",
        "transcription",
        "recommended",
    }
    for ex in EX.values():
        page = (SHARED / ex.page).read_text()
        text = ex.text.replace("{HOST}", PAGE_HOST[ex.page]).replace("{KEY}", PAGE_KEY[ex.page])
        assert text.replace("{TMP}", "/tmp") in page, ex.name
    completions = (SHARED / "ironlabs-completions.md").read_text()
    assert f'["{FALLBACK}"]' in completions  # the page's example value of fallback_models
    assert json.dumps(CHAIN) in completions
    gateway = (SHARED / "openai-gateway.md").read_text()
    assert f"Recommended models: {', '.join(TRANSCRIBERS)}" in gateway


def test_every_example_of_the_pages_is_in_the_data():
    need(SHARED.is_dir(), f"the reference pages are not beside the clone ({SHARED})")
    pages = "".join((SHARED / page).read_text() for page in PAGE_HOST)
    curls = sum(ex.text.startswith("curl") for ex in EX.values())
    assert len(re.findall(r"^curl ", pages, re.M)) == curls == 7
    assert pages.count("from openai import OpenAI") == 1


# ---- 3. the examples, verbatim -------------------------------------------------------------------


def test_completions_example_answers_as_the_page_promises(pages):
    pages.fakes["openai"].script(
        "gpt-4o", Fault.ok(text="LLM routing picks a model.", usage=(120, 80))
    )
    run = pages.run(EX["completions"].text)
    assert run.status == 200, run.out
    body = run.json()
    assert shape(body) == shape(json.loads(EX["completions_response"].text))
    assert (body["provider"], body["model"]) == ("openai", "gpt-4o")
    assert body["message"] == {
        "role": "assistant",
        "type": "text",
        "content": [{"type": "text", "text": "LLM routing picks a model."}],
    }
    assert body["conversationTitle"] == "Explain how LLM routing works."
    usage = body["usage"]
    assert (usage["promptTokens"], usage["completionTokens"], usage["totalTokens"]) == (
        120,
        80,
        200,
    )
    # openai/gpt-4o at $2.50 / $10.00 per 1M tokens, as JSON numbers like the page's
    assert usage["costs"] == {
        "input_tokens_cost": 0.0003,
        "output_tokens_cost": 0.0008,
        "total_tokens_cost": 0.0011,
    }
    assert b'"input_tokens_cost":0.0003,' in run.out
    assert only(pages.fakes["openai"]).body == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Explain how LLM routing works."},
        ],
        "temperature": 0.7,
        "max_tokens": 1024,
    }


def shape(value: Any) -> Any:
    """The JSON types of a document, keys kept: what the page promises of a response."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return "number" if isinstance(value, int | float) else type(value).__name__


def test_completions_chain_moves_on_to_the_second_model(pages):
    pages.fakes["openai"].always("gpt-4o", Fault.status(500))
    pages.fakes["anthropic"].script(
        "claude-3-5-sonnet-20241022", Fault.ok(text="Routing, by Claude.", usage=(120, 80))
    )
    run = pages.run(EX["completions"].text)
    assert run.status == 200, run.out
    body = run.json()
    assert (body["provider"], body["model"]) == ("anthropic", "claude-3-5-sonnet-20241022")
    assert body["message"]["content"] == [{"type": "text", "text": "Routing, by Claude."}]
    # the pinned published price: $3 in, $15 out per 1M tokens
    assert body["usage"]["costs"] == {
        "input_tokens_cost": 0.00036,
        "output_tokens_cost": 0.0012,
        "total_tokens_cost": 0.00156,
    }
    assert only(pages.fakes["anthropic"]).body == {
        "model": "claude-3-5-sonnet-20241022",
        "max_tokens": 1024,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Explain how LLM routing works."}],
            }
        ],
        "system": [{"type": "text", "text": "You are a helpful assistant."}],
        "temperature": 0.7,
    }


def test_completions_fallback_models_variant(pages):
    pages.fakes["openai"].always("gpt-4o", Fault.status(500))
    pages.fakes["anthropic"].always("claude-3-5-sonnet-20241022", Fault.overloaded())
    pages.fakes["google"].script("gemini-2.0-flash", Fault.ok(text="Gemini here.", usage=(120, 80)))
    run = pages.run(COMPLETIONS_FALLBACK)
    assert run.status == 200, run.out
    body = run.json()
    assert (body["provider"], body["model"]) == ("google", "gemini-2.0-flash")
    # the pinned published price: $0.10 in, $0.40 out per 1M tokens
    assert body["usage"]["costs"] == {
        "input_tokens_cost": 0.000012,
        "output_tokens_cost": 0.000032,
        "total_tokens_cost": 0.000044,
    }
    sent = only(pages.fakes["google"]).body
    assert sent["generationConfig"]["maxOutputTokens"] == 1024


def test_completions_with_search_passes_by_the_model_that_cannot_search(pages):
    """The page's request with `"search": true`: gpt-4o cannot search on Chat Completions and
    no gateway search is configured, so Claude answers with its web search server tool."""
    pages.fakes["anthropic"].script(
        "claude-3-5-sonnet-20241022", Fault.ok(text="Routing, grounded.", usage=(120, 80))
    )
    run = pages.run(
        EX["completions"].text.replace('"stream": false', '"search": true, "stream": false')
    )
    assert run.status == 200, run.out
    body = run.json()
    assert (body["provider"], body["model"]) == ("anthropic", "claude-3-5-sonnet-20241022")
    assert body["sources"] == []  # the fake's answer cites nothing
    assert body["usage"]["searches"] == 0
    assert not pages.fakes["openai"].seen
    sent = only(pages.fakes["anthropic"]).body
    assert sent["tools"] == [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]


def test_completions_schema_template_is_refused_with_the_field(pages):
    as_written = pages.run(EX["completions_template"].text)  # the page sends no key
    assert as_written.status == 401
    assert as_written.json()["error"]["code"] == "invalid_api_key"
    keyed = pages.run(EX["completions_template"].text + " --header 'Authorization: Bearer {KEY}'")
    assert keyed.status == 400
    assert keyed.json() == {
        "error": {
            "code": "invalid_request",
            "message": "Invalid enum value '<string>'",
            "field": "messages[0].role",
        }
    }
    assert all(not fake.seen for fake in pages.fakes.values())


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_chat_example(pages, model):
    provider = pages.gw.runtime.catalog.bare[model][0]
    pages.fakes[provider].script(model, Fault.ok(text="Hello, Ion Clock Lab!"))
    run = pages.run(EX["chat"].text.replace('"gpt-4o-mini"', f'"{model}"'))
    assert run.status == 200, run.out
    body = run.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Hello, Ion Clock Lab!"
    assert body["model"] == f"{provider}/{model}"
    sent = only(pages.fakes[provider]).body
    assert sent["messages"] == [{"role": "user", "content": "Hello from Ion Clock Lab"}]
    assert sent["model"] == model


def test_python_example_with_the_openai_sdk(pages):
    pages.fakes["openai"].script("gpt-4o-mini", Fault.ok(text="Hello back from the gateway."))
    run = pages.run(EX["python"].text)
    assert (run.exit, run.out) == (0, b"Hello back from the gateway.\n"), run.err
    assert only(pages.fakes["openai"]).model == "gpt-4o-mini"


def test_images_example_written_to_a_file_and_read_by_the_sdk(pages):
    run = pages.run(EX["images"].text)
    assert (run.status, run.out) == (200, b"")  # the answer went to the file
    saved = pages.tmp / "image_response.json"
    images = ImagesResponse.model_validate_json(saved.read_bytes())
    assert images.data is not None and len(images.data) == 1  # "n": 1
    assert images.data[0].b64_json is not None
    assert images.size == "1024x1024"
    sent = only(pages.fakes["openai"]).body
    assert sent == {
        "model": "gpt-image-2",
        "prompt": "A clean minimal logo for Ion Clock Lab",
        "n": 1,
        "size": "1024x1024",
    }


def test_embeddings_example(pages):
    run = pages.run(EX["embeddings"].text)
    assert run.status == 200, run.out
    embeddings = CreateEmbeddingResponse.model_validate_json(run.out)
    assert len(embeddings.data) == 1 and len(embeddings.data[0].embedding) == 1536
    sent = only(pages.fakes["openai"]).body
    assert sent["model"] == "text-embedding-3-small"
    assert sent["input"] == "Ion Clock Lab optical clock research"


@pytest.mark.parametrize("model", TRANSCRIBERS)
def test_speech_to_mp3_then_that_file_transcribed(pages, model):
    speech = pages.run(EX["speech"].text)
    assert (speech.status, speech.out) == (200, b"")
    audio = (pages.tmp / "tts-test.mp3").read_bytes()
    assert audio == mp3(speech_seconds("Hello from Ion Clock Lab LiteLLM."))  # byte for byte
    assert audio[:2] == b"\xff\xf3"  # an MPEG audio frame
    spoken = only(pages.fakes["openai"])
    assert spoken.body == {
        "model": "tts-1",
        "input": "Hello from Ion Clock Lab LiteLLM.",
        "voice": "alloy",
    }
    pages.fakes["openai"].reset()

    run = pages.run(EX["transcription"].text.replace('"whisper-1"', f'"{model}"'))
    assert run.status == 200, run.out
    assert run.json()["text"] == f"Fake transcription of {len(audio)} bytes."
    heard = only(pages.fakes["openai"])
    assert heard.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert heard.body["model"] == model
    filename, _, size = heard.body["file"]
    assert (filename, size) == ("tts-test.mp3", len(audio))


# ---- 1. bare names, /v1/models -------------------------------------------------------------------


@pytest.mark.parametrize("model", [m for _, m in RECOMMENDED] + ["gpt-4o-mini-transcribe"])
def test_each_page_name_is_served_by_the_preferred_provider_that_lists_it(pages, model):
    catalog = pages.gw.runtime.catalog
    listing = [n for n, p in catalog.providers.items() if model in p.models]
    rank = {n: i for i, n in enumerate(PREFERENCE)}
    expected = sorted(listing, key=lambda n: (rank.get(n, len(rank)), n))[0]
    (target,) = catalog.expand(model, "model")
    assert target.ref == f"{expected}/{model}"
    assert expected in PREFERENCE  # never the Azure template, whatever the alphabet says


def test_iron_labs_surface_takes_the_same_bare_names(pages):
    pages.fakes["openai"].always("gpt-4o-mini", Fault.status(503))
    pages.fakes["deepseek"].script("deepseek-chat", Fault.ok(text="DeepSeek answers."))
    bare = EX["completions"].text.replace(json.dumps(CHAIN), '["gpt-4o-mini", "deepseek-chat"]')
    run = pages.run(bare)
    assert run.status == 200, run.out
    body = run.json()
    assert (body["provider"], body["model"]) == ("deepseek", "deepseek-chat")
    assert isinstance(body["usage"]["costs"]["total_tokens_cost"], float)


def test_an_alias_wins_over_a_bare_name(tmp_path):
    config = write_config(tmp_path, repo_routing({"gpt-4o-mini": ["demo/echo"]}))
    with running_gateway(config, {}) as gw:
        r = post(
            gw,
            "/v1/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert (r.status_code, r.json()["model"]) == (200, "demo/echo")
        ids = [m["id"] for m in httpx.get(f"{gw.url}/v1/models", headers=gw.headers).json()["data"]]
        assert ids.count("gpt-4o-mini") == 1  # listed once, as the alias


def test_models_lists_what_the_key_may_use_under_the_pages_names(pages):
    client = openai.OpenAI(api_key=pages.key, base_url=pages.gw.url + "/v1", max_retries=0)
    with client:
        listed = {m.id: (m.owned_by, m.model_extra) for m in client.models.list()}
    bare_of_refs = [ref.split("/", 1)[1] for ref in (*CHAIN, FALLBACK)]
    assert set(listed) == {*PAGE_MODELS, *bare_of_refs}
    for use, model in RECOMMENDED:
        owner = pages.gw.runtime.catalog.bare[model][0]
        assert listed[model] == (owner, {"type": TYPES[use]})
    assert listed["deepseek-chat"][0] == "deepseek"


def test_a_key_limited_to_bare_names_lists_only_those(pages):
    key = issue_key(pages.gw, ["gpt-4o-mini", "whisper-1"])
    r = httpx.get(f"{pages.gw.url}/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert [m["id"] for m in r.json()["data"]] == ["gpt-4o-mini", "whisper-1"]


# ---- 2. every model the pages name is priced -----------------------------------------------------


@pytest.mark.parametrize("model", PAGE_MODELS)
def test_every_page_model_is_in_the_catalog_with_its_price(pages, model):
    (target,) = pages.gw.runtime.catalog.expand(model, "model")
    assert target.info is not None
    assert any(price is not None for price in msgspec.structs.astuple(target.info.prices))
    public = httpx.get(f"{pages.gw.url}/assets/models.json").json()["models"]
    (entry,) = [m for m in public if m["name"] == target.ref]
    assert entry["prices"], entry


def test_the_pages_model_list_paths_list_the_pages_models(pages):
    page = httpx.get(f"{pages.gw.url}/models/")  # "Open model list: /models/", no key
    public = httpx.get(f"{pages.gw.url}/assets/models.json")  # "Open model JSON"
    assert (page.status_code, public.status_code) == (200, 200)
    listed = {m["name"]: m["type"] for m in public.json()["models"]}
    for use, model in RECOMMENDED:
        ref = "/".join((pages.gw.runtime.catalog.bare[model][0], model))
        assert listed[ref] == TYPES[use]
        provider = ref.split("/")[0]
        assert (
            f'<tr data-type="{TYPES[use]}" data-provider="{provider}" data-configured="yes">'
            f'<td data-label="Model"><code>{ref}</code></td>' in page.text
        )
    assert "sk-upstream" not in public.text + page.text  # names and types, not API keys


def test_price_refresh_leaves_the_two_missing_models_alone_and_says_so(tmp_path):
    table = REPO.parent / "shared" / "specs" / "litellm-model_prices_and_context_window.json"
    need(table.is_file(), f"the maintained price table is not beside the clone ({table})")
    providers = shutil.copytree(REPO / "providers", tmp_path / "providers")
    argv = ["prices", "refresh", "--table", str(table), "--providers", str(providers)]
    done = subprocess.run(
        [sys.executable, "-m", "router", *argv, "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    pinned = next(
        line for line in done.stdout.splitlines() if line.startswith("left alone: pinned")
    )
    for ref in ("anthropic/claude-3-5-sonnet-20241022", "google/gemini-2.0-flash"):
        assert ref in pinned
    assert "changed: 0" in done.stdout and "dry run, would write: none" in done.stdout


# ---- 4. the errors table -------------------------------------------------------------------------


def test_401_for_a_missing_or_wrong_key(pages):
    wrong = pages.run(EX["chat"].text, key="sk-rt-not-a-key")
    missing = pages.run(EX["chat"].text.replace("  -H 'Authorization: Bearer {KEY}' \\\n", ""))
    for run in (wrong, missing):
        assert run.status == 401
        assert run.json()["error"]["code"] == "invalid_api_key"
    iron = pages.run(EX["completions"].text, key="sk-rt-not-a-key")
    assert (iron.status, iron.json()["error"]["code"]) == (401, "invalid_api_key")
    sdk = pages.run(EX["python"].text, key="sk-rt-not-a-key")
    assert sdk.exit == 1 and "openai.AuthenticationError: Error code: 401" in sdk.err
    assert all(not fake.seen for fake in pages.fakes.values())


@pytest.mark.parametrize(
    ("example", "unknown", "forbidden"),
    [
        ("chat", "gpt-9", "gpt-4.1"),
        ("embeddings", "text-embedding-9", "text-embedding-3-large"),
        ("completions", "gpt-9", "openai/gpt-4.1"),
    ],
)
def test_model_not_found_is_one_answer_for_unknown_and_forbidden(
    pages, example, unknown, forbidden
):
    asked = {"chat": '"gpt-4o-mini"', "embeddings": '"text-embedding-3-small"'}
    answers = []
    for name in (unknown, forbidden):
        chosen = f'["{name}"]' if example == "completions" else f'"{name}"'
        run = pages.run(EX[example].text.replace(asked.get(example, json.dumps(CHAIN)), chosen))
        assert run.status == 404
        answers.append(run.out.replace(name.encode(), b"NAME"))
        assert f"The model `{name}` does not exist or is not available." in run.out.decode()
    assert answers[0] == answers[1]  # a key cannot probe the catalog
    assert all(not fake.seen for fake in pages.fakes.values())


UPSTREAM_REJECTION = {
    "error": {
        "message": "Invalid 'messages[0].content': string too long.",
        "type": "invalid_request_error",
        "param": "messages[0].content",
        "code": "string_above_max_length",
    }
}


def test_an_upstream_rejection_is_surfaced_as_the_providers(pages):
    pages.fakes["openai"].always("gpt-4o-mini", Fault.status(400, UPSTREAM_REJECTION))
    message = "Upstream provider error (openai): Invalid 'messages[0].content': string too long."
    run = pages.run(EX["chat"].text)
    assert run.status == 400
    error = run.json()["error"]
    assert (error["code"], error["message"]) == ("upstream_bad_request", message)
    assert error["attempts"][0]["provider"] == "openai"
    sdk = pages.run(EX["python"].text)
    assert sdk.exit == 1
    assert f"openai.BadRequestError: Error code: 400 - {message}\n" in sdk.err
    assert len(pages.fakes["openai"].seen) == 2  # a rejection is not retried


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault.status(500), 502, "upstream_error"),
        (Fault.invalid_key(), 502, "upstream_auth_error"),  # the provider refused *our* key
    ],
)
def test_an_upstream_failure_is_never_our_own_500(pages, fault, status, code):
    pages.fakes["openai"].always("gpt-image-2", fault)
    run = pages.run(EX["images"].text)
    assert (run.status, run.out) == (status, b"")
    error = json.loads((pages.tmp / "image_response.json").read_bytes())["error"]
    assert error["code"] == code
    assert error["message"].startswith("Upstream provider error (openai): ")
    assert error["attempts"][-1]["provider"] == "openai"


# ---- 5. a fresh machine, no provider key ---------------------------------------------------------


NEEDS = {
    "completions": ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"],
    "chat": ["OPENAI_API_KEY"],
    "python": ["OPENAI_API_KEY"],
    "images": ["OPENAI_API_KEY"],
    "embeddings": ["OPENAI_API_KEY"],
    "speech": ["OPENAI_API_KEY"],
    "transcription": ["OPENAI_API_KEY"],
}


def fresh_error(fresh: Pages, name: str, text: str) -> str:
    """What a fresh machine answers to one example: the error text, wherever it went."""
    run = fresh.run(text)
    if name == "python":
        assert run.exit == 1 and "openai.InternalServerError: Error code: 503" in run.err
        return run.err
    assert run.status == 503
    saved = {"images": "image_response.json", "speech": "tts-test.mp3"}.get(name)
    body = (fresh.tmp / saved).read_bytes() if saved else run.out
    error = json.loads(body)["error"]
    assert error["code"] == "provider_not_configured"
    return str(error["message"])


@pytest.mark.parametrize("name", list(NEEDS))
def test_on_a_fresh_machine_each_example_names_the_variable_to_set(fresh, name):
    if name == "transcription":
        fresh.run(EX["speech"].text)  # no audio either: the error body is what gets uploaded
    message = fresh_error(fresh, name, EX[name].text)
    for variable in NEEDS[name]:
        assert f"set {variable}" in message


def test_on_a_fresh_machine_the_other_page_models_name_their_variables(fresh):
    assert "set GEMINI_API_KEY" in fresh_error(fresh, "completions", COMPLETIONS_FALLBACK)
    deepseek = EX["chat"].text.replace('"gpt-4o-mini"', '"deepseek-chat"')
    assert "set DEEPSEEK_API_KEY" in fresh_error(fresh, "chat", deepseek)


# ---- the README's section ------------------------------------------------------------------------


def readme_section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("\n## From the reference pages\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def readme_examples() -> list[str]:
    return re.findall(r"^```(?:sh|python)\n(.*?)\n```$", readme_section(), re.M | re.S)


def test_readme_maps_every_page_example():
    section = readme_section()
    for needle in (
        "/api/v1/completions",
        "fallback_models",
        "/v1/chat/completions",
        "/v1/images/generations",
        "/v1/embeddings",
        "/v1/audio/speech",
        "/v1/audio/transcriptions",
        "/models/",
        "/assets/models.json",
        "tests/test_reference_pages.py",
        *PAGE_MODELS,
    ):
        assert needle in section, needle
    assert len(readme_examples()) == 7


def test_readme_demo_versions_answer_without_any_provider_key(tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    with running_gateway(
        write_config(tmp_path, repo_routing()), {"ROUTER_MASTER_KEY": "sk-router-dev"}
    ) as gw:
        outputs = []
        for example in readme_examples():
            text = example.replace("http://127.0.0.1:8080", gw.url).replace("/tmp/", f"{files}/")
            run = curl(text) if text.startswith("curl") else python(text, files)
            assert (run.status or 200, run.exit) == (200, 0), (example, run)
            outputs.append(run)
    completions, chat, sdk, images, embeddings, speech, transcription = outputs
    assert completions.json()["model"] == "echo" and completions.json()["provider"] == "demo"
    assert chat.json()["choices"][0]["message"]["content"] == "You said: Hello from Ion Clock Lab"
    assert sdk.out == b"You said: Hello from Ion Clock Lab\n"
    assert images.out == b""
    assert ImagesResponse.model_validate_json((files / "image_response.json").read_bytes()).data
    assert CreateEmbeddingResponse.model_validate_json(embeddings.out).data
    audio = (files / "tts-test.mp3").read_bytes()
    assert audio[:2] == b"\xff\xf3" and speech.out == b""
    assert transcription.json()["text"] == f"Demo transcription of {len(audio)} bytes."
