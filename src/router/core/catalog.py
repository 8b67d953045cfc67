"""Model names -> targets: aliases, `provider/model` and bare names, resolved once and cached.

Built at start-up from the settings; no request resolves the same name twice.
"""

from __future__ import annotations

import msgspec

from router.config import Deployment, ModelType, Provider, Settings
from router.core.strategies import Unit, single
from router.core.types import Asked, Target
from router.errors import NotFoundError, RequestError

_CACHE_LIMIT = 4096  # unlisted names cached; bounded so arbitrary names cannot grow memory


class Catalog:
    """What the gateway can route to."""

    def __init__(self, settings: Settings, keys: dict[str, str]) -> None:
        self.settings = settings
        self.providers = settings.providers
        self.keys = keys
        self.aliases = settings.aliases
        self.bare = self._bare_index(settings)
        self._targets: dict[str, Target] = {}
        for provider in self.providers.values():
            for model in provider.models:
                self._targets[f"{provider.name}/{model}"] = self._make(provider, model)
        self.deployed = self._deployed(settings.deployments)

    def _deployed(self, deployments: tuple[Deployment, ...]) -> dict[str, Unit]:
        """Deployed model name -> its deployments as one unit (weights from the config)."""
        groups: dict[str, list[Deployment]] = {}
        for d in deployments:
            groups.setdefault(d.model, []).append(d)
        units = {}
        for model, group in groups.items():
            targets = tuple(self._deployment(d) for d in group)
            for t in targets:
                self._targets[t.ref] = t
            units[model] = Unit(model, targets, tuple(d.weight for d in group))
        return units

    def _deployment(self, d: Deployment) -> Target:
        base = self.providers[d.provider]
        provider = msgspec.structs.replace(
            base,
            name=d.name,
            base_url=(d.base_url or base.base_url).rstrip("/"),
            api_key_env=d.api_key_env or base.api_key_env,
        )
        key = self.keys.get(d.name) if d.api_key_env else self.keys.get(base.name)
        return Target(provider, d.served, base.models.get(d.served), key)

    @staticmethod
    def _bare_index(settings: Settings) -> dict[str, tuple[str, ...]]:
        """Bare model name -> providers listing it, in the configured preference order."""
        rank = {name: i for i, name in enumerate(settings.routing.preference)}
        index: dict[str, list[str]] = {}
        for provider in settings.providers.values():
            for model in provider.models:
                index.setdefault(model, []).append(provider.name)
        return {
            model: tuple(sorted(names, key=lambda n: (rank.get(n, len(rank)), n)))
            for model, names in index.items()
        }

    def _make(self, provider: Provider, model: str) -> Target:
        return Target(provider, model, provider.models.get(model), self.keys.get(provider.name))

    def target(self, ref: str) -> Target | None:
        """The target for an exact `provider/model`, or None if no such thing may be routed."""
        found = self._targets.get(ref)
        if found is not None:
            return found
        provider_name, _, model = ref.partition("/")
        provider = self.providers.get(provider_name)
        if provider is None or not model or provider.only_listed_models:
            return None
        target = self._make(provider, model)
        if len(self._targets) < _CACHE_LIMIT:
            self._targets[ref] = target
        return target

    def expand(self, name: str, field: str) -> list[Target]:
        """Targets for one requested name: an alias's chain, a `provider/model`, or a bare
        model name served by the most preferred provider that lists it."""
        return [t for unit in self.units(name, field) for t in unit.targets]

    def units(self, name: str, field: str) -> list[Unit]:
        """`expand`, as units: one per model, a deployed model's deployments together."""
        chain = self.aliases.get(name)
        if chain is not None:
            return [u for ref in chain if (u := self._unit(ref)) is not None]
        unit = self.deployed.get(name)
        if unit is not None:
            return [unit]
        return [single(self._one(name, field))]

    def _unit(self, ref: str) -> Unit | None:
        unit = self.deployed.get(ref)
        if unit is not None:
            return unit
        target = self.target(ref)
        return None if target is None else single(target)

    def _one(self, name: str, field: str) -> Target:
        target = self.target(name)
        if target is None:
            providers = self.bare.get(name)
            if providers:
                target = self._bare_target(name, providers)
        if target is None:
            raise self.not_found(name, field)
        return target

    @staticmethod
    def not_found(name: str, field: str) -> NotFoundError:
        return NotFoundError(
            "model_not_found", f"The model `{name}` does not exist or is not available.", field
        )

    def _bare_target(self, name: str, providers: tuple[str, ...]) -> Target:
        """The most preferred provider listing `name`, among those that are configured (have
        their key, or need none) when any is; else the most preferred, to name its key."""
        targets = [self._targets[f"{p}/{name}"] for p in providers]
        ready = [t for t in targets if t.key or not t.provider.api_key_env]
        return (ready or targets)[0]

    def listed(self, kind: ModelType | None = None) -> list[Target]:
        """Every catalog model (optionally of one type), in a stable order."""
        return [
            t
            for ref, t in sorted(self._targets.items())
            if t.info is not None and (kind is None or t.info.type == kind)
        ]


_NOUN = {
    "embedding": "an embedding",
    "image": "an image",
    "speech": "a speech",
    "transcription": "a transcription",
    "chat": "a chat",
}


def of_kind(targets: list[Target], kind: ModelType, first: Asked | None) -> list[Target]:
    """The targets whose catalog type is `kind` (unlisted models are taken at their word);
    a 400 naming the caller's field when none is."""
    typed = [t for t in targets if t.info is None or t.info.type == kind]
    if typed or not targets:
        return typed
    found = targets[0].info.type if targets[0].info else "chat"
    name, field = (first.name, first.field) if first else (targets[0].ref, None)
    raise RequestError(
        "wrong_model_type",
        f"The model `{name}` is {_NOUN[found]} model, not {_NOUN[kind]} model.",
        field,
    )
