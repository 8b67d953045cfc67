"""Configuration: strict decoding with file + field in every error, env overrides, dev key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway_harness import REPO, write_config
from router.config import load_settings, resolve_keys
from router.errors import ConfigError
from router.runtime import Runtime, master_key


def test_repo_configuration_is_valid():
    settings = load_settings(REPO / "routing.toml", env={})
    assert "openai" in settings.providers and "demo" in settings.providers
    assert settings.aliases["demo"] == ("demo/echo",)


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[retry]\nmax_retires = 3\n", "unknown field `max_retires` - at `$.retry`"),
        ("[timeouts]\nrequest = 'soon'\n", "Expected `float`, got `str` - at `$.timeouts.request`"),
        ("[aliases]\nfast = ['nowhere/model']\n", "alias 'fast' names 'nowhere/model'"),
        ("[routing]\npreference = ['nosuch']\n", "unknown provider 'nosuch'"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_bad_routing_toml_names_file_and_field(tmp_path, toml, needle):
    config = write_config(tmp_path, toml, policy="")
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    assert str(config) in str(err.value)
    assert needle in str(err.value)


def test_bad_provider_file_names_file_and_field(tmp_path):
    config = write_config(tmp_path, providers={"bad": 'protocol = "openai"\nbase_url = 1\n'})
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    assert "providers/bad.toml" in str(err.value)
    assert "`$.base_url`" in str(err.value)


def test_unknown_protocol_is_refused(tmp_path):
    """The registry is the one list of protocols; the runtime checks every file against it."""
    config = write_config(tmp_path, providers={"bad": 'protocol = "soap"\nbase_url = "x"\n'})
    settings = load_settings(config, env={})
    with pytest.raises(ConfigError, match="unknown protocol 'soap'") as err:
        Runtime(settings, {}, "127.0.0.1")
    assert "providers/bad.toml" in str(err.value)


def test_base_url_and_keys_come_from_the_environment(tmp_path):
    env = {"GROQ_BASE_URL": "http://mirror.local/v1/", "OPENAI_API_KEY": "sk-x"}
    settings = load_settings(write_config(tmp_path), env=env)
    assert settings.providers["groq"].base_url == "http://mirror.local/v1"
    assert resolve_keys(settings.providers, env) == {"openai": "sk-x"}
    assert "sk-x" not in repr(settings)


def test_dev_key_only_on_loopback():
    settings = load_settings(REPO / "routing.toml", env={})
    assert master_key(settings, {}, "127.0.0.1") == "sk-router-dev"
    assert master_key(settings, {"ROUTER_MASTER_KEY": "real"}, "0.0.0.0") == "real"
    with pytest.raises(ConfigError, match="not loopback"):
        master_key(settings, {}, "0.0.0.0")


def _router(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=REPO,
    )


def test_router_check_command(tmp_path):
    ok = _router("check", "--config", str(REPO / "routing.toml"))
    assert ok.returncode == 0 and ": ok (" in ok.stdout
    bad = write_config(tmp_path, "[retry]\nmax_retires = 3\n", policy="")
    failed = _router("check", "--config", str(bad))
    assert failed.returncode == 2
    assert "unknown field `max_retires`" in failed.stderr


def test_serve_refuses_the_dev_key_on_a_public_address():
    env = {"PATH": "/usr/bin:/bin"}
    r = _router("serve", "--config", str(REPO / "routing.toml"), "--host", "0.0.0.0", env=env)
    assert r.returncode == 2
    assert "ROUTER_MASTER_KEY" in r.stderr


def test_config_path_from_environment(tmp_path: Path):
    config = write_config(tmp_path, "[aliases]\nmine = ['demo/echo']\n")
    r = _router("check", env={"ROUTER_CONFIG": str(config), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "1 aliases" in r.stdout


def test_errors_give_the_line_and_a_did_you_mean(tmp_path):
    config = write_config(tmp_path, "\n[timeouts]\nconect = 3.0\n", policy="")
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    assert str(err.value) == (
        f"{config}:6: Object contains unknown field `conect` - at `$.timeouts`;"
        " did you mean `connect`?"
    )
    bad = 'protocol = "openai"\nbase_url = "x"\n[models."m".prices]\ninptu = "1"\n'
    config = write_config(tmp_path / "p", providers={"bad": bad})
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    assert str(err.value).startswith(f"{config.parent / 'providers' / 'bad.toml'}:4: ")
    assert str(err.value).endswith("did you mean `input`?")
    config = write_config(tmp_path / "a", "[aliases]\nfast = ['nowhere/model']\n", policy="")
    with pytest.raises(ConfigError, match=rf"^{config}:5: alias 'fast' names 'nowhere/model'"):
        load_settings(config, env={})
