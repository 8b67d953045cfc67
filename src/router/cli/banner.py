"""What `router serve` prints before it starts: where it listens, what is usable, where to
look, and one curl line that answers when pasted. Names only: never a key but the documented
development key (and only when that is the key in use)."""

from __future__ import annotations

import shlex

import msgspec

from router import __version__
from router.config import Settings, resolve_keys

_JSON = msgspec.json.Encoder().encode


def client_host(host: str) -> str:
    """The address a local client reaches a server bound to `host` at."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def demo_model(settings: Settings, keyed: set[str]) -> str | None:
    """A chat model that answers now: a demo-protocol one, else one whose provider has a key."""
    for wanted in (lambda p: p.protocol == "demo", lambda p: p.name in keyed):
        for provider in settings.providers.values():
            if not wanted(provider):
                continue
            for name, info in provider.models.items():
                if info.type == "chat":
                    return f"{provider.name}/{name}"
    return None


def curl_line(url: str, model: str, key_text: str) -> str:
    body = _JSON({"model": model, "messages": [{"role": "user", "content": "Hello!"}]}).decode()
    return (
        f'curl -s {url}/v1/chat/completions -H "Authorization: Bearer {key_text}"'
        f" -H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )


def banner(
    settings: Settings, env: dict[str, str], host: str, port: int, workers: int
) -> list[str]:
    """The lines to print; `env` decides which provider keys and which master key are in use."""
    url = f"http://{client_host(host)}:{port}"
    keyed = set(resolve_keys(settings.providers, env))
    keyless = sorted(n for n, p in settings.providers.items() if p.api_key_env is None)
    env_name = settings.server.master_key_env
    dev = None if env.get(env_name) else settings.server.dev_master_key
    key_text = dev or f"${env_name}"
    model = demo_model(settings, keyed)
    lines = [
        f"router {__version__} listening on http://{host}:{port}"
        f" ({workers} worker{'s' if workers > 1 else ''}, config {settings.source})",
        "  providers with keys: "
        + (", ".join(sorted(keyed)) or "none yet (export e.g. OPENAI_API_KEY; see providers/)"),
        f"  needing no key:      {', '.join(keyless) or 'none'}",
    ]
    if dev:
        lines.append(
            f"  master key:          {dev} (the development key, loopback only;"
            f" set {env_name} in production)"
        )
    else:
        lines.append(f"  master key:          from ${env_name}")
    if model:
        lines.append(f"  try the model:       {model}")
    lines += [
        f"  model list:          {url}/models/",
        f"  status page:         {url}/status",
        f"  metrics:             {url}/metrics",
        f"  docs:                {url}/",
    ]
    if model:
        lines += ["  paste this to try it:", "    " + curl_line(url, model, key_text)]
    return lines
