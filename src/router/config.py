"""routing.toml + providers/*.toml -> frozen Structs, with errors that name file and field.

Everything here is decoded once at start-up; nothing in it changes while serving.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from decimal import Decimal
from pathlib import Path
from typing import Literal, TypeVar, get_args

import msgspec

from router.errors import ConfigError

ModelType = Literal["chat", "embedding", "image", "speech", "transcription"]
Strategy = Literal["ordered", "cheapest", "fastest", "least_busy", "weighted"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
HEDGE_AFTER = re.compile(r"^(\d+(\.\d+)?|p\d{1,2}(\.\d+)?)$")  # milliseconds, or p50..p99.9


class _Frozen(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class Prices(_Frozen, frozen=True):
    """USD prices; token prices are per 1M tokens, as decimal strings in TOML."""

    input: Decimal | None = None
    output: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    reasoning: Decimal | None = None  # defaults to `output` when absent
    per_image: Decimal | None = None
    per_1m_characters: Decimal | None = None
    per_second: Decimal | None = None


class ModelInfo(_Frozen, frozen=True):
    """One model a provider serves: what it is, what it accepts, what it costs."""

    type: ModelType = "chat"
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: frozenset[str] = frozenset()  # vision tools reasoning prefill web_search ...
    unsupported_params: frozenset[str] = frozenset()  # canonical param names never sent
    prices: Prices = Prices()
    pinned_prices: bool = False  # `router prices refresh` leaves these alone
    first_token_timeout: float | None = None
    upstream_name: str | None = None  # the id sent upstream when it differs (Azure deployments)


class Provider(_Frozen, frozen=True, kw_only=True):
    """providers/<name>.toml: where a provider lives, how it speaks, what it serves."""

    name: str = ""  # filled from the file name
    protocol: str
    base_url: str
    api_key_env: str | None = None  # the *name* of the env var; None: no key needed
    api_version: str | None = None  # Azure `api-version`, Anthropic `anthropic-version`
    headers: dict[str, str] = {}
    only_listed_models: bool = False
    models: dict[str, ModelInfo] = {}
    source: str = msgspec.field(default="", name="_source")  # the file it came from


class Server(_Frozen, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8080
    master_key_env: str = "ROUTER_MASTER_KEY"
    dev_master_key: str | None = None  # accepted only when bound to loopback
    public_models_page: bool = True


class Retry(_Frozen, frozen=True):
    max_retries: int = 2
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    retry_after_cap: float = 30.0


class Timeouts(_Frozen, frozen=True):
    request: float = 300.0  # overall deadline for one call, all attempts included
    connect: float = 5.0
    response: float = 120.0  # non-streamed: whole body; streamed: response headers
    first_token: float = 30.0
    first_token_reasoning: float = 120.0
    stream_idle: float = 30.0


class Circuit(_Frozen, frozen=True):
    failure_threshold: int = 5
    failure_rate: float = 0.5
    window: int = 20
    cooldown: float = 2.0  # the first cool-down; doubles each time a probe fails...
    cooldown_max: float = 60.0  # ...up to this


class Tuned(_Frozen, frozen=True):
    """`[learned.targets."<provider/model>"]`: fixed values for one deployment, overriding
    what is learned (and the circuit's cool-downs)."""

    first_token: float | None = None
    stall: float | None = None
    cooldown: float | None = None
    cooldown_max: float | None = None


class Learned(_Frozen, frozen=True):
    """`[learned]`: timeouts learned per deployment from live traffic. Once a deployment has
    `min_samples` observations, its first-token timeout is `first_token_multiple` x its p99
    time to first token and its stall timeout `stall_multiple` x its p99 gap between chunks,
    each at least the floor and at most `timeouts.first_token` / `timeouts.stream_idle`.
    Reasoning models keep `timeouts.first_token_reasoning`."""

    min_samples: int = 20
    first_token_multiple: float = 4.0
    first_token_floor: float = 3.0
    stall_multiple: float = 8.0
    stall_floor: float = 2.0
    targets: dict[str, Tuned] = {}


class Storage(_Frozen, frozen=True):
    database: str = "router.db"  # a SQLite path, or postgresql://...
    redis_url: str | None = None  # redis://...: processes share circuit state and key changes
    redis_prefix: str = "router"  # of the channel and key names, to share one Redis


class Routing(_Frozen, frozen=True):
    preference: tuple[str, ...] = ()  # bare model names: which provider wins when several list it
    content_policy_fallback: bool = False
    only_listed_models: tuple[str, ...] = ()  # providers restricted to their catalog entries
    strategy: Strategy = "ordered"  # how the primary `models` are ordered (see `Route`)
    weights: dict[str, float] = {}  # `provider/model` -> weight, for the `weighted` strategy


class Route(_Frozen, frozen=True):
    """`[routes.<alias>]`: how one alias is routed, overriding `[routing]`."""

    strategy: Strategy | None = None
    weights: dict[str, float] = {}  # `provider/model` -> weight (`weighted`); 1 when absent
    hedge_after: int | str | None = None  # ms, or a percentile of observed TTFT ("p95")
    cache_ttl: int | None = None  # seconds to keep answers in the response cache; off if unset


class Cache(_Frozen, frozen=True):
    """`[cache]`: where the response cache keeps answers (enabled per route or request)."""

    max_entries: int = 1024  # in memory: least recently used evicted beyond this
    redis: bool = False  # keep them in `storage.redis_url` instead, shared by every process


class Deployment(_Frozen, frozen=True):
    """`[[deployments]]`: one place that serves `model`, sharing its traffic with the other
    deployments of the same `model` by `weight`. Protocol, prices and context window come
    from `provider`'s file (its entry `upstream_model`, `model` by default)."""

    name: str  # unique, not a provider's name: the trail and circuits say `name/model`
    model: str  # the name callers ask for (a catalog model's bare name, or a new one)
    provider: str
    upstream_model: str | None = None
    base_url: str | None = None  # default: the provider's
    api_key_env: str | None = None  # default: the provider's
    weight: float = 1.0

    @property
    def served(self) -> str:
        return self.upstream_model or self.model


class Settings(_Frozen, frozen=True):
    """The whole decoded configuration: routing.toml plus every provider file."""

    server: Server = Server()
    retry: Retry = Retry()
    timeouts: Timeouts = Timeouts()
    circuit: Circuit = Circuit()
    storage: Storage = Storage()
    routing: Routing = Routing()
    cache: Cache = Cache()
    learned: Learned = Learned()
    aliases: dict[str, tuple[str, ...]] = {}
    routes: dict[str, Route] = {}
    deployments: tuple[Deployment, ...] = ()
    providers_dir: str = "providers"
    providers: dict[str, Provider] = {}
    source: str = msgspec.field(default="", name="_source")


T = TypeVar("T")


def _decode(data: bytes, kind: type[T], source: str) -> T:
    try:
        return msgspec.toml.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise ConfigError(source, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ConfigError(source, f"not valid TOML: {exc}") from None


def _env_base_url(name: str, default: str, env: dict[str, str]) -> str:
    override = env.get(f"{name.upper().replace('-', '_')}_BASE_URL")
    return (override or default).rstrip("/")


def load_provider(path: Path, env: dict[str, str], restricted: frozenset[str]) -> Provider:
    """Decode one providers/<name>.toml, applying the `<NAME>_BASE_URL` override."""
    provider = _decode(path.read_bytes(), Provider, str(path))
    name = path.stem
    return msgspec.structs.replace(
        provider,
        name=name,
        source=str(path),
        base_url=_env_base_url(name, provider.base_url, env),
        only_listed_models=provider.only_listed_models or name in restricted,
    )


def check_protocols(settings: Settings, known: Collection[str]) -> None:
    """Every provider speaks a protocol of the registry (`router.protocols.REGISTRY`), which
    the composition root hands in: this module stays below the protocols layer."""
    for provider in settings.providers.values():
        if provider.protocol not in known:
            raise ConfigError(
                provider.source,
                f"unknown protocol {provider.protocol!r} - at `$.protocol`"
                f" (one of {', '.join(sorted(known))})",
            )


def resolve_keys(providers: dict[str, Provider], env: dict[str, str]) -> dict[str, str]:
    """Provider name -> API key, for providers whose key variable is set. Kept out of the
    Structs so no repr, log line or error can ever carry a key."""
    keys = {}
    for name, provider in providers.items():
        value = env.get(provider.api_key_env, "") if provider.api_key_env else ""
        if value:
            keys[name] = value
    return keys


def deployment_keys(deployments: Collection[Deployment], env: dict[str, str]) -> dict[str, str]:
    """Deployment name -> API key, for deployments with their own key variable (as
    `resolve_keys`; a deployment without one uses its provider's key)."""
    return {
        d.name: env[d.api_key_env] for d in deployments if d.api_key_env and env.get(d.api_key_env)
    }


def load_settings(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Settings:
    """Read routing.toml and the providers directory it names (relative to routing.toml)."""
    env = dict(os.environ) if env is None else env
    config_path = Path(path)
    if not config_path.is_file():
        raise ConfigError(str(config_path), "file not found")
    settings = _decode(config_path.read_bytes(), Settings, str(config_path))
    providers_dir = (config_path.parent / settings.providers_dir).resolve()
    if not providers_dir.is_dir():
        raise ConfigError(str(config_path), f"providers_dir {providers_dir} is not a directory")
    restricted = frozenset(settings.routing.only_listed_models)
    providers = {
        p.stem: load_provider(p, env, restricted) for p in sorted(providers_dir.glob("*.toml"))
    }
    _check_references(settings, providers, str(config_path))
    return msgspec.structs.replace(settings, providers=providers, source=str(config_path))


def _check_references(settings: Settings, providers: dict[str, Provider], source: str) -> None:
    for alias, chain in settings.aliases.items():
        if not chain:
            raise ConfigError(source, f"alias {alias!r} is empty - at `$.aliases.{alias}`")
        deployed = {d.model for d in settings.deployments}
        for target in chain:
            provider = target.split("/", 1)[0]
            if target in deployed:
                continue
            if "/" not in target or provider not in providers:
                raise ConfigError(
                    source,
                    f"alias {alias!r} names {target!r}, not a known provider/model"
                    f" - at `$.aliases.{alias}`",
                )
    _check_deployments(settings, providers, source)
    _check_routes(settings, source)
    for name in (*settings.routing.preference, *settings.routing.only_listed_models):
        if name not in providers:
            raise ConfigError(source, f"unknown provider {name!r} - at `$.routing`")


def _check_deployments(settings: Settings, providers: dict[str, Provider], source: str) -> None:
    names: set[str] = set()
    for i, d in enumerate(settings.deployments):
        at = f" - at `$.deployments[{i}]`"
        if d.provider not in providers:
            raise ConfigError(source, f"unknown provider {d.provider!r}{at}")
        if d.name in providers or d.name in names or "/" in d.name:
            raise ConfigError(
                source, f"deployment name {d.name!r} must be unique, not a provider's{at}"
            )
        if d.model in settings.aliases:
            raise ConfigError(source, f"deployment model {d.model!r} is an alias's name{at}")
        if d.weight <= 0:
            raise ConfigError(source, f"deployment weight must be positive{at}")
        names.add(d.name)


def _check_routes(settings: Settings, source: str) -> None:
    deployed = {d.model for d in settings.deployments}
    for name, route in settings.routes.items():
        if route.hedge_after is not None and not HEDGE_AFTER.match(str(route.hedge_after)):
            raise ConfigError(
                source,
                f"hedge_after is milliseconds or a percentile like 'p95'"
                f" - at `$.routes.{name}.hedge_after`",
            )
        if name not in settings.aliases and name not in deployed:
            raise ConfigError(
                source, f"route {name!r} is not an alias or deployed model - at `$.routes.{name}`"
            )
