"""routing.toml + providers/*.toml -> frozen Structs, with errors that name file and field.

Everything here is decoded once at start-up; nothing in it changes while serving.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal, TypeVar, get_args

import msgspec

from router.config_checks import check_deployments, check_limits, check_routes
from router.config_lines import locate
from router.errors import ConfigError

ModelType = Literal["chat", "embedding", "image", "speech", "transcription"]
Strategy = Literal["ordered", "cheapest", "fastest", "least_busy", "weighted"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


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
    per_search: Decimal | None = None  # each web search the model ran (`usage.searches`)
    per_grounded_request: Decimal | None = None  # an answer grounded by any search at all


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
    # A parameter the protocol cannot honour (n, logprobs, penalties ...): "drop" sends the
    # request without it (named in `x-router-dropped`), "skip" passes this provider by.
    on_unsupported: Literal["drop", "skip"] = "drop"
    extra_params: frozenset[str] = frozenset()  # `extra_body` keys passed to this provider
    source: str = msgspec.field(default="", name="_source")  # the file it came from


class Server(_Frozen, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8080
    master_key_env: str = "ROUTER_MASTER_KEY"
    dev_master_key: str | None = None  # accepted only when bound to loopback
    public_models_page: bool = True
    max_inflight: Annotated[int, msgspec.Meta(ge=1)] = 1024  # per worker; beyond: 503 overloaded
    # upstream connections open at once per worker (0: no pool limit; max_inflight bounds them)
    upstream_connections: Annotated[int, msgspec.Meta(ge=0)] = 0


class Shutdown(_Frozen, frozen=True):
    """SIGTERM: serve on for `grace_period`, then refuse connections; cut streams at
    `drain_timeout` (both in seconds, counted from the signal)."""

    grace_period: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    drain_timeout: Annotated[float, msgspec.Meta(gt=0)] = 600.0


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


class Budget(_Frozen, frozen=True):
    """A spending cap in USD over fixed windows of `duration` (`60s`, `5m`, `1h`, `1d`,
    `30d`, or the calendar `month`, UTC) counted from `start` (unix seconds); crossing
    `soft_budget` only alerts (metric and log)."""

    max_budget: Decimal
    duration: str = "month"
    soft_budget: Decimal | None = None
    start: float = 0.0


class RateLimit(_Frozen, frozen=True):
    """Requests and tokens per minute, and requests at once (None: no limit)."""

    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None


class Limits(_Frozen, frozen=True):
    """`[limits]`: the global budget, team and provider budgets, per-deployment rate limits
    (`"provider/model" = {rpm, tpm}`), and what to do when Redis cannot be reached."""

    on_redis_error: Literal["allow", "deny"] = "allow"
    default_max_tokens: int = 4096  # the reservation when a request sets no maximum
    budget: Budget | None = None
    teams: dict[str, Budget] = {}
    providers: dict[str, Budget] = {}
    deployments: dict[str, RateLimit] = {}

    @property
    def configured(self) -> bool:
        return bool(self.budget or self.teams or self.providers or self.deployments)


class Search(_Frozen, frozen=True):
    """`[search]`: the search API the gateway runs for models that cannot search themselves.
    The key is read from the variable `api_key_env` names; `base_url` (or `<API>_BASE_URL`)
    overrides the API's public address (a self-hosted SearXNG has no public one)."""

    api: Literal["tavily", "brave", "searxng"]
    api_key_env: str | None = None  # default: TAVILY_API_KEY / BRAVE_API_KEY; SearXNG: none
    base_url: str | None = None
    max_results: Annotated[int, msgspec.Meta(ge=1, le=20)] = 5
    per_search: Decimal | None = None  # what one search costs, USD (added to the answer's)
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0


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
    shutdown: Shutdown = Shutdown()
    limits: Limits = Limits()
    cache: Cache = Cache()
    learned: Learned = Learned()
    search: Search | None = None
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
        raise _located(kind, data, source, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ConfigError(source, f"not valid TOML: {exc}") from None


def _located(kind: type, data: bytes, source: str, message: str) -> ConfigError:
    """A ConfigError naming `file:line` and, for an unknown key, the one probably meant."""
    return ConfigError(*locate(kind, data.decode("utf-8", "replace"), source, message))


def packaged_providers() -> Path:
    """The provider files shipped with router (`router/providers`, a link to the repository's
    providers/ in a source checkout)."""
    return (Path(__file__).parent / "providers").resolve()


def providers_dir(settings: Settings, config_path: Path) -> Path:
    """`providers_dir` relative to routing.toml; when left at its default and that folder has
    no provider files (a routing.toml copied elsewhere), the providers shipped with router."""
    beside = (config_path.parent / settings.providers_dir).resolve()
    if settings.providers_dir == "providers" and not any(beside.glob("*.toml")):
        return packaged_providers()
    return beside


def _env_base_url(name: str, default: str, env: dict[str, str]) -> str:
    override = env.get(f"{name.upper().replace('-', '_')}_BASE_URL")
    return (override or default).rstrip("/")


def load_provider(path: Path, env: dict[str, str], restricted: frozenset[str]) -> Provider:
    """Decode one providers/<name>.toml, applying the `<NAME>_BASE_URL` override."""
    data = path.read_bytes()
    provider = _decode(data, Provider, str(path))
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
    data = config_path.read_bytes()
    settings = _decode(data, Settings, str(config_path))
    folder = providers_dir(settings, config_path)
    if not folder.is_dir():
        raise _located(
            Settings,
            data,
            str(config_path),
            f"providers_dir {folder} is not a directory - at `$.providers_dir`",
        )
    restricted = frozenset(settings.routing.only_listed_models)
    providers = {p.stem: load_provider(p, env, restricted) for p in sorted(folder.glob("*.toml"))}
    try:
        _check_references(settings, providers, str(config_path))
    except ConfigError as exc:
        raise _located(Settings, data, exc.source, exc.message) from None
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
    check_limits(settings.limits, providers, source)
    check_deployments(settings, providers, source)
    check_routes(settings, source)
    for name in (*settings.routing.preference, *settings.routing.only_listed_models):
        if name not in providers:
            raise ConfigError(source, f"unknown provider {name!r} - at `$.routing`")
