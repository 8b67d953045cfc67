"""The provider catalog (providers/*.toml) and `router prices refresh` (router.prices)."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from openai_env import openai_env
from router.cli.catalog_edit import format_price
from router.cli.main import main as router_main
from router.cli.price_table import TableEntry, table_prices
from router.cli.prices import ModelResult, RefreshReport, refresh_prices
from router.config import Prices, Provider, load_provider
from router.errors import ConfigError
from router.protocols import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ROOT / "providers"
DATA = Path(__file__).resolve().parent / "data"
REAL_TABLE = ROOT.parent / "shared" / "specs" / "litellm-model_prices_and_context_window.json"
SUBSET_TABLE = DATA / "litellm-catalog-subset.json"  # the entries the catalog uses, copied
DISAGREEING_TABLE = DATA / "litellm-disagreeing.json"

PINNED = {
    "anthropic/claude-3-5-sonnet-20241022",
    "anthropic/claude-3-5-haiku-20241022",
    "anthropic/claude-opus-4-20250514",
    "anthropic/claude-sonnet-4-20250514",
    "demo/echo",
    "demo/embed",
    "demo/image",
    "demo/speak",
    "demo/transcribe",
    "google/gemini-2.0-flash",
    "groq/llama-3.1-8b-instant",
    "groq/llama-3.3-70b-versatile",
    "groq/moonshotai/kimi-k2-instruct",
    "groq/moonshotai/kimi-k2-instruct-0905",
    "ollama/gpt-oss:20b",
    "xai/grok-3-mini",
    "xai/grok-4",
    "xai/grok-4-fast",
}


def load(name: str, directory: Path = PROVIDERS) -> Provider:
    return load_provider(directory / f"{name}.toml", env={}, restricted=frozenset())


def catalog(directory: Path = PROVIDERS) -> dict[str, Provider]:
    return {p.stem: load(p.stem, directory) for p in sorted(directory.glob("*.toml"))}


def refs(results: tuple[ModelResult, ...]) -> set[str]:
    return {r.ref for r in results}


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.toml"))}


@pytest.fixture
def providers_copy(tmp_path: Path) -> Path:
    target = tmp_path / "providers"
    shutil.copytree(PROVIDERS, target)
    return target


# ---- the catalog -----------------------------------------------------------------------------


def test_every_provider_file_decodes_with_its_wire_protocol_url_and_key_variable():
    expected = {
        "anthropic": ("anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY"),
        "azure": ("azure", "https://YOUR-RESOURCE.openai.azure.com/openai", "AZURE_API_KEY"),
        "deepseek": ("openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
        "demo": ("demo", "builtin:", None),
        "fireworks": ("openai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
        "google": ("gemini", "https://generativelanguage.googleapis.com/v1beta", "GEMINI_API_KEY"),
        "groq": ("openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        "mistral": ("openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        "ollama": ("openai", "http://localhost:11434/v1", None),
        "openai": ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        "openrouter": ("openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        "together": ("openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        "vllm": ("openai", "http://localhost:8000/v1", None),
        "xai": ("openai", "https://api.x.ai/v1", "XAI_API_KEY"),
    }
    found = {n: (p.protocol, p.base_url, p.api_key_env) for n, p in catalog().items()}
    assert found == expected
    assert {p.protocol for p in catalog().values()} == set(REGISTRY)


def test_native_protocol_versions_and_the_azure_template():
    assert load("anthropic").api_version == "2023-06-01"
    azure = load("azure")
    assert azure.api_version == "2024-10-21"
    assert azure.only_listed_models is True
    # deployments named after their model, as the template's comment asks
    assert {m: i.upstream_name for m, i in azure.models.items()} == {m: m for m in azure.models}
    assert {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "o4-mini", "text-embedding-3-small"} < set(
        azure.models
    )
    assert len(azure.models) == 91


def test_demo_provider_serves_every_model_type_for_free():
    demo = load("demo")
    assert {m: i.type for m, i in demo.models.items()} == {
        "echo": "chat",
        "embed": "embedding",
        "image": "image",
        "speak": "speech",
        "transcribe": "transcription",
    }
    echo = demo.models["echo"]
    assert echo.context_window == 8192
    assert echo.capabilities == frozenset({"vision", "tools", "prefill"})
    zero = Decimal(0)
    assert echo.prices == Prices(input=zero, output=zero)
    assert demo.models["embed"].prices == Prices(input=zero, output=zero)
    assert demo.models["image"].prices == Prices(per_image=zero)
    assert demo.models["speak"].prices == Prices(per_1m_characters=zero)
    assert demo.models["transcribe"].prices == Prices(per_second=zero)
    assert all(i.pinned_prices for i in demo.models.values())


REFERENCE_MODELS = [
    # (provider, model, type, prices) - every model the two reference pages name
    ("openai", "gpt-4o", "chat", {"input": "2.50", "output": "10.00", "cached_input": "1.25"}),
    ("openai", "gpt-4o-mini", "chat", {"input": "0.15", "output": "0.60", "cached_input": "0.075"}),
    ("openai", "gpt-4.1-mini", "chat", {"input": "0.40", "output": "1.60", "cached_input": "0.10"}),
    (
        "deepseek",
        "deepseek-chat",
        "chat",
        {"input": "0.28", "output": "0.42", "cached_input": "0.028", "cache_write": "0"},
    ),
    ("openai", "gpt-image-2", "image", {"input": "5", "output": "30", "cached_input": "1.25"}),
    ("openai", "text-embedding-3-small", "embedding", {"input": "0.02", "output": "0"}),
    ("openai", "tts-1", "speech", {"per_1m_characters": "15"}),
    ("openai", "whisper-1", "transcription", {"per_second": "0.0001"}),
    (
        "openai",
        "gpt-4o-mini-transcribe",
        "transcription",
        {"input": "1.25", "output": "5", "per_second": "0.00005"},
    ),
    (
        "anthropic",
        "claude-3-5-sonnet-20241022",
        "chat",
        {
            "input": "3",
            "output": "15",
            "cached_input": "0.30",
            "cache_write": "3.75",
            "per_search": "0.01",
        },
    ),
    (
        "google",
        "gemini-2.0-flash",
        "chat",
        {
            "input": "0.10",
            "output": "0.40",
            "cached_input": "0.025",
            "per_grounded_request": "0.035",
        },
    ),
]


@pytest.mark.parametrize(("provider", "model", "kind", "prices"), REFERENCE_MODELS)
def test_reference_page_models_are_listed_and_priced(provider, model, kind, prices):
    info = load(provider).models[model]
    assert info.type == kind
    assert info.prices == Prices(**{k: Decimal(v) for k, v in prices.items()})


def test_page_models_missing_from_the_table_are_pinned_with_a_published_price():
    assert load("anthropic").models["claude-3-5-sonnet-20241022"].pinned_prices is True
    assert load("google").models["gemini-2.0-flash"].pinned_prices is True
    assert load("openai").models["gpt-4o"].pinned_prices is False


def test_every_pinned_model_is_exactly_the_expected_set_and_says_why():
    pinned = {
        f"{n}/{m}" for n, p in catalog().items() for m, i in p.models.items() if i.pinned_prices
    }
    assert pinned == PINNED
    for ref in pinned - {r for r in pinned if r.startswith("demo/")}:
        provider, model = ref.split("/", 1)
        lines = (PROVIDERS / f"{provider}.toml").read_text().splitlines()
        header = lines.index(f'[models."{model}"]')
        comment = []
        for line in reversed(lines[:header]):
            if not line.startswith("#"):
                break
            comment.append(line)
        assert any(line.startswith("# Pinned") for line in comment), ref


def test_chat_models_are_priced_for_accounting_and_reasoning_models_use_the_gateway_default():
    for name, provider in catalog().items():
        for model, info in provider.models.items():
            if info.type == "chat":
                assert info.prices.input is not None and info.prices.output is not None, model
            if "reasoning" in info.capabilities:
                assert info.first_token_timeout is None, f"{name}/{model}"


def test_mistral_lists_the_fields_it_rejects_with_422():
    mistral = load("mistral")
    assert mistral.models["mistral-large-latest"].unsupported_params == frozenset(
        {"seed", "stream_options", "user", "reasoning_effort"}
    )
    assert mistral.models["mistral-small-latest"].unsupported_params == frozenset(
        {"seed", "stream_options", "user"}
    )


def test_openai_reasoning_models_get_max_completion_tokens_and_no_sampling_params():
    reasoning = frozenset({"max_tokens", "temperature", "top_p", "stop"})
    openai = load("openai").models
    for model in ("o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano"):
        assert openai[model].unsupported_params == reasoning, model
    assert load("azure").models["o4-mini"].unsupported_params == reasoning
    assert openai["gpt-4o"].unsupported_params == frozenset()


def test_prefill_capability_follows_what_each_provider_supports():
    assert "prefill" in load("anthropic").models["claude-sonnet-4-20250514"].capabilities
    assert "prefill" in load("deepseek").models["deepseek-chat"].capabilities
    assert "prefill" in load("mistral").models["mistral-large-latest"].capabilities
    assert not any("prefill" in i.capabilities for i in load("openai").models.values())


# ---- table -> catalog prices -----------------------------------------------------------------


def test_per_token_prices_become_exact_per_million_decimals():
    entry = TableEntry(
        mode="chat",
        input_cost_per_token=Decimal("1.04e-06"),
        output_cost_per_token=Decimal("1.2e-05"),
        cache_read_input_token_cost=Decimal("2.75e-07"),
        cache_creation_input_token_cost=Decimal("3.75e-06"),
        output_cost_per_reasoning_token=Decimal("2.5e-06"),
    )
    prices = table_prices(entry)
    assert {k: format_price(v) for k, v in prices.items()} == {
        "input": "1.04",
        "output": "12.00",
        "cached_input": "0.275",
        "cache_write": "3.75",
        "reasoning": "2.50",
    }


def test_image_speech_and_transcription_prices_map_to_their_own_fields():
    image = TableEntry(
        mode="image_generation",
        input_cost_per_token=Decimal("5e-06"),
        output_cost_per_image_token=Decimal("3e-05"),
    )
    assert table_prices(image) == {"input": Decimal("5"), "output": Decimal("30")}
    flat_image = TableEntry(mode="image_generation", input_cost_per_image=Decimal("0.009"))
    assert table_prices(flat_image) == {"per_image": Decimal("0.009")}
    chat_with_images = TableEntry(mode="chat", input_cost_per_image=Decimal("0.001"))
    assert table_prices(chat_with_images) == {}
    speech = TableEntry(mode="audio_speech", input_cost_per_character=Decimal("1.5e-05"))
    assert table_prices(speech) == {"per_1m_characters": Decimal("15")}
    whisper = TableEntry(
        input_cost_per_second=Decimal("0.0001"), output_cost_per_second=Decimal("0.0002")
    )
    assert table_prices(whisper) == {"per_second": Decimal("0.0001")}


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("2.5", "2.50"),
        ("10", "10.00"),
        ("0.0", "0.00"),
        ("0.075", "0.075"),
        ("3.083e-05", "0.00003083"),
    ],
)
def test_prices_are_written_with_two_decimals_or_as_many_as_needed(value, text):
    assert format_price(Decimal(value)) == text


# ---- refresh -----------------------------------------------------------------------------------


TABLES = [
    pytest.param(
        REAL_TABLE,
        id="shared-specs-table",
        marks=pytest.mark.skipif(not REAL_TABLE.is_file(), reason="shared/specs not present"),
    ),
    pytest.param(SUBSET_TABLE, id="fixture-subset"),
]


@pytest.mark.parametrize("table", TABLES)
def test_refresh_is_idempotent_on_the_committed_catalog(table, providers_copy):
    before = snapshot(providers_copy)
    report = refresh_prices(providers_copy, table)
    assert report.by_status("changed") == ()
    assert report.by_status("missing") == ()
    assert refs(report.by_status("pinned")) == PINNED
    assert len(report.by_status("unchanged")) == 892
    assert report.by_status("added") == ()
    assert report.written == ()
    assert snapshot(providers_copy) == before


def test_pinned_entries_survive_a_disagreeing_table_and_a_change_is_written(providers_copy):
    before = snapshot(providers_copy)
    report = refresh_prices(providers_copy, DISAGREEING_TABLE)

    changes = ("input 2.50 -> 3.00", "output 10.00 -> 12.00", "cached_input 1.25 -> 1.50")
    assert report.by_status("changed") == (
        ModelResult("openai", "gpt-4o", "changed", "gpt-4o", changes),
        ModelResult("openrouter", "openai/gpt-4o", "changed", "gpt-4o", changes),
    )
    assert refs(report.by_status("pinned")) == PINNED
    # a bare OpenAI key never prices another provider's model of the same name
    assert "azure/gpt-4o" in refs(report.by_status("missing"))
    assert report.written == (
        str(providers_copy / "openai.toml"),
        str(providers_copy / "openrouter.toml"),
    )
    after = snapshot(providers_copy)
    unchanged = set(before) - {"openai.toml", "openrouter.toml"}
    assert {n: after[n] for n in unchanged} == {n: before[n] for n in unchanged}

    old = before["openai.toml"].decode().splitlines()
    new = after["openai.toml"].decode().splitlines()
    start = old.index('[models."gpt-4o".prices]')
    assert len(new) == len(old)
    assert [(i, a, b) for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b] == [
        (start + 1, 'input = "2.50"', 'input = "3.00"'),
        (start + 2, 'output = "10.00"', 'output = "12.00"'),
        (start + 3, 'cached_input = "1.25"', 'cached_input = "1.50"'),
    ]
    gpt_4o = load("openai", providers_copy).models["gpt-4o"]
    assert gpt_4o.prices == Prices(
        input=Decimal("3.00"), output=Decimal("12.00"), cached_input=Decimal("1.50")
    )
    assert catalog(providers_copy).keys() == catalog().keys()


def test_dry_run_reports_the_same_and_writes_nothing(providers_copy):
    before = snapshot(providers_copy)
    report = refresh_prices(providers_copy, DISAGREEING_TABLE, dry_run=True)
    assert refs(report.by_status("changed")) == {"openai/gpt-4o", "openrouter/openai/gpt-4o"}
    assert report.dry_run is True
    assert report.written == (
        str(providers_copy / "openai.toml"),
        str(providers_copy / "openrouter.toml"),
    )
    assert snapshot(providers_copy) == before


HANDWRITTEN = """\
# a provider written by hand
protocol = "openai"
base_url = "http://localhost:1/v1"  # trailing comment

[models."a"]   # model a
context_window = 1000
capabilities = [
    "tools",   # a multi-line array: [not.a.header]
]

[models."a".prices]
input = "1.00"    # keep this comment
output = '2.00'
cache_write = "9.99"

# introduces b
[models.b]
type = "chat"
"""

EDITED = """\
# a provider written by hand
protocol = "openai"
base_url = "http://localhost:1/v1"  # trailing comment

[models."a"]   # model a
context_window = 2000
capabilities = [
    "tools",   # a multi-line array: [not.a.header]
]
max_output_tokens = 500

[models."a".prices]
input = "1.50"    # keep this comment
output = '2.00'
cached_input = "0.50"

# introduces b
[models.b]
type = "chat"

[models.b.prices]
input = "0.10"
output = "0.20"
"""

HANDWRITTEN_TABLE = """{
  "hand/a": {"litellm_provider": "hand", "max_input_tokens": 2000, "max_output_tokens": 500,
             "input_cost_per_token": 1.5e-06, "output_cost_per_token": 2e-06,
             "cache_read_input_token_cost": 5e-07},
  "b": {"litellm_provider": "hand", "input_cost_per_token": 1e-07, "output_cost_per_token": 2e-07}
}"""


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_the_editor_replaces_adds_and_drops_keys_and_keeps_everything_else(tmp_path, newline):
    providers = tmp_path / "providers"
    providers.mkdir()
    (providers / "hand.toml").write_bytes(HANDWRITTEN.replace("\n", newline).encode())
    table = tmp_path / "table.json"
    table.write_text(HANDWRITTEN_TABLE)

    report = refresh_prices(providers, table)

    assert report.by_status("changed") == (
        ModelResult(
            "hand",
            "a",
            "changed",
            "hand/a",
            (
                "input 1.00 -> 1.50",
                "cached_input unset -> 0.50",
                "cache_write 9.99 -> unset",
                "context_window 1000 -> 2000",
                "max_output_tokens unset -> 500",
            ),
        ),
        ModelResult("hand", "b", "changed", "b", ("input unset -> 0.10", "output unset -> 0.20")),
    )
    assert (providers / "hand.toml").read_bytes() == EDITED.replace("\n", newline).encode()
    assert refresh_prices(providers, table).by_status("changed") == ()


def test_a_layout_the_editor_cannot_rewrite_is_refused_and_nothing_is_written(tmp_path):
    providers = tmp_path / "providers"
    providers.mkdir()
    good = 'protocol = "openai"\nbase_url = "http://x"\n\n[models.a.prices]\ninput = "1"\n'
    (providers / "good.toml").write_text(good)  # would change, but sorts before the bad one
    text = 'protocol = "openai"\nbase_url = "http://x"\n\n[models.a]\nprices = { input = "1" }\n'
    (providers / "hand.toml").write_text(text)
    table = tmp_path / "table.json"
    table.write_text(
        '{"good/a": {"litellm_provider": "good", "input_cost_per_token": 2e-06},'
        ' "hand/a": {"litellm_provider": "hand", "input_cost_per_token": 2e-06}}'
    )

    with pytest.raises(ConfigError, match=r"hand\.toml: cannot be edited safely"):
        refresh_prices(providers, table)
    assert (providers / "hand.toml").read_text() == text
    assert (providers / "good.toml").read_text() == good


def test_unknown_models_and_unpriced_entries_are_reported_not_in_table(tmp_path):
    providers = tmp_path / "providers"
    providers.mkdir()
    text = 'protocol = "openai"\nbase_url = "http://x"\n\n[models.a]\n\n[models.b]\n'
    (providers / "hand.toml").write_text(text)
    table = tmp_path / "table.json"
    table.write_text('{"hand/b": {"litellm_provider": "hand", "mode": "chat"}}')

    report = refresh_prices(providers, table)
    assert report.by_status("missing") == (
        ModelResult("hand", "a", "missing"),
        ModelResult("hand", "b", "missing", "hand/b", note="entry has no price"),
    )
    assert (providers / "hand.toml").read_text() == text


def test_render_is_a_concise_summary():
    report = RefreshReport(
        (
            ModelResult("p", "a", "changed", "p/a", ("input 1.00 -> 2.00",)),
            ModelResult("p", "b", "unchanged", "p/b"),
            ModelResult("p", "c", "pinned"),
            ModelResult("p", "d", "missing"),
        ),
        ("providers/p.toml",),
    )
    assert report.render() == (
        "changed: 1\n"
        "  p/a: input 1.00 -> 2.00\n"
        "unchanged: 1\n"
        "left alone: pinned: 1 - p/c\n"
        "not in table: 1 - p/d\n"
        "written: providers/p.toml"
    )


def test_main_refreshes_and_prints_the_report(providers_copy, capsys):
    argv = ["refresh", "--table", str(DISAGREEING_TABLE), "--providers", str(providers_copy)]
    assert router_main(["prices", *argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "changed: 2\n"
        "  openai/gpt-4o: input 2.50 -> 3.00; output 10.00 -> 12.00; cached_input 1.25 -> 1.50\n"
        "  openrouter/openai/gpt-4o: input 2.50 -> 3.00; output 10.00 -> 12.00;"
        " cached_input 1.25 -> 1.50\n"
        "unchanged: 0\n"
        "left alone: pinned: 18 - anthropic/claude-3-5-sonnet-20241022, "
    )
    assert out.endswith(
        f"dry run, would write: {providers_copy / 'openai.toml'}, "
        f"{providers_copy / 'openrouter.toml'}\n"
    )


def test_main_fails_cleanly_without_a_table(tmp_path, capsys):
    assert router_main(["prices", "refresh", "--table", str(tmp_path / "nope.json")]) == 1
    assert capsys.readouterr().err == f"router prices: {tmp_path / 'nope.json'}: file not found\n"


# ---- new models from the table ---------------------------------------------------------------

NEW_MODELS_TABLE = """{
  "hand/known": {"litellm_provider": "hand", "mode": "chat", "input_cost_per_token": 1e-06,
                 "output_cost_per_token": 2e-06},
  "hand/full-1": {"litellm_provider": "hand", "mode": "chat", "max_input_tokens": 200000,
                  "max_output_tokens": 64000, "input_cost_per_token": 3e-06,
                  "output_cost_per_token": 1.5e-05, "cache_read_input_token_cost": 3e-07,
                  "cache_creation_input_token_cost": 3.75e-06,
                  "output_cost_per_reasoning_token": 1e-05, "supports_vision": true,
                  "supports_function_calling": true, "supports_reasoning": true,
                  "supports_assistant_prefill": true, "supports_web_search": true,
                  "supports_response_schema": true, "supports_pdf_input": true},
  "hand/pic": {"litellm_provider": "hand", "mode": "image_generation",
               "output_cost_per_image": 0.04},
  "hand/say": {"litellm_provider": "hand", "mode": "audio_speech",
               "input_cost_per_character": 1.5e-05},
  "hand/hear": {"litellm_provider": "hand", "mode": "audio_transcription",
                "input_cost_per_second": 0.0001, "output_cost_per_second": 0.0001},
  "hand/vec": {"litellm_provider": "hand", "mode": "embedding", "max_input_tokens": 8191,
               "input_cost_per_token": 2e-08, "output_cost_per_token": 0.0},
  "hand/mod": {"litellm_provider": "hand", "mode": "moderation", "input_cost_per_token": 0.0},
  "hand/half": {"litellm_provider": "hand", "mode": "chat", "input_cost_per_token": 1e-06},
  "hand/low/1024-x-1024/pic": {"litellm_provider": "hand", "mode": "image_generation",
                               "output_cost_per_image": 0.01},
  "other/stranger": {"litellm_provider": "other", "mode": "chat", "input_cost_per_token": 1e-06,
                     "output_cost_per_token": 1e-06}
}"""

KNOWN_ONLY = """protocol = "openai"
base_url = "http://x"

[models."known".prices]
input = "1.00"
output = "2.00"
"""

ADDED_TEXT = """
[models."full-1"]
context_window = 200000
max_output_tokens = 64000
capabilities = ["vision", "tools", "reasoning", "prefill", "web_search", "json_mode"]

[models."full-1".prices]
input = "3.00"
output = "15.00"
cached_input = "0.30"
cache_write = "3.75"
reasoning = "10.00"

[models."hear"]
type = "transcription"

[models."hear".prices]
per_second = "0.0001"

[models."pic"]
type = "image"

[models."pic".prices]
per_image = "0.04"

[models."say"]
type = "speech"

[models."say".prices]
per_1m_characters = "15.00"

[models."vec"]
type = "embedding"
context_window = 8191

[models."vec".prices]
input = "0.02"
output = "0.00"
"""


def test_refresh_adds_the_tables_new_models_with_every_price_kind(tmp_path):
    providers = tmp_path / "providers"
    providers.mkdir()
    (providers / "hand.toml").write_text(KNOWN_ONLY)
    table = tmp_path / "table.json"
    table.write_text(NEW_MODELS_TABLE)

    dry = refresh_prices(providers, table, dry_run=True)
    assert (providers / "hand.toml").read_text() == KNOWN_ONLY
    assert [(r.model, r.table_key, r.note) for r in dry.by_status("added")] == [
        (
            "full-1",
            "hand/full-1",
            "chat, input 3.00, output 15.00, cached_input 0.30, cache_write 3.75, reasoning 10.00",
        ),
        ("hear", "hand/hear", "transcription, per_second 0.0001"),
        ("pic", "hand/pic", "image, per_image 0.04"),
        ("say", "hand/say", "speech, per_1m_characters 15.00"),
        ("vec", "hand/vec", "embedding, input 0.02, output 0.00"),
    ]
    assert dry.skipped == (
        ("a per-size, per-quality or regional price variant", 1),
        ("mode moderation not served", 1),
        ("no price for what it serves", 1),
    )
    assert "  hand/pic: image, per_image 0.04" in dry.render().splitlines()

    report = refresh_prices(providers, table)
    assert refs(report.by_status("added")) == refs(dry.by_status("added"))
    assert (providers / "hand.toml").read_text() == KNOWN_ONLY + ADDED_TEXT
    models = load("hand", providers).models
    assert models["full-1"].prices == Prices(
        input=Decimal("3.00"),
        output=Decimal("15.00"),
        cached_input=Decimal("0.30"),
        cache_write=Decimal("3.75"),
        reasoning=Decimal("10.00"),
    )
    assert models["full-1"].capabilities == frozenset(
        {"vision", "tools", "reasoning", "prefill", "web_search", "json_mode"}
    )
    again = refresh_prices(providers, table)
    assert (again.by_status("added"), again.written) == ((), ())


def test_every_catalog_model_is_priced_for_what_it_serves():
    unpriced = []
    for name, provider in catalog().items():
        for model, info in provider.models.items():
            p = info.prices
            if info.type == "chat":
                ok = p.input is not None and p.output is not None
            else:
                units = (p.input, p.per_image, p.per_1m_characters, p.per_second)
                ok = any(u is not None for u in units)
            if not ok:
                unpriced.append(f"{name}/{model}")
    assert unpriced == []
    assert sum(len(p.models) for p in catalog().values()) == 910


@pytest.mark.parametrize(
    ("provider", "undated", "dated"),
    [
        ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
        ("anthropic", "claude-opus-4-7", "claude-opus-4-7-20260416"),
        ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
        ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ],
)
def test_undated_aliases_and_the_dated_names_in_responses_are_both_priced(provider, undated, dated):
    models = load(provider).models
    assert models[undated].prices.input is not None
    assert models[undated].prices.output is not None
    assert models[dated].prices == models[undated].prices


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-sonnet-4-5-20250929"])
def test_claude_sonnet_4_5_answers_with_its_costs(tmp_path, model):
    with openai_env(tmp_path) as env:
        raw = env.client().chat.completions.with_raw_response.create(
            model=f"anthropic/{model}", messages=[{"role": "user", "content": "hi"}]
        )
        usage = raw.parse().usage
        assert usage is not None
        # the Anthropic fake's recorded reply: 16 in, 34 out, at $3 / $15 per 1M
        assert (usage.prompt_tokens, usage.completion_tokens) == (16, 34)
        assert Decimal(raw.headers["x-router-cost"]) == Decimal("0.000558")
