"""The first hour: `router --help`/`--version`, every command documented with an example,
errors that say what to do next, the Makefile's help and variables, a routing.toml copied
elsewhere, and the start-up banner's curl line answering when pasted."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway_harness import REPO, free_port, write_config
from router import __version__
from router.cli.main import parser

SUBCOMMANDS = [["serve"], ["check"], ["keys"], ["prices"], ["prices", "refresh"]]
SUBCOMMANDS += [["keys", a] for a in ("create", "list", "update", "revoke")]


def router(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], **(env or {})},
        cwd=cwd,
    )


def test_version_and_overview():
    version = router("--version")
    assert (version.returncode, version.stdout) == (0, f"router {__version__}\n")
    overview = router("--help")
    assert overview.returncode == 0
    for command in ("serve", "check", "keys", "prices"):
        assert re.search(rf"^    {command} +\S", overview.stdout, re.M), command
        assert re.search(rf"^  {command} +.+ +router {command}", overview.stdout, re.M), command
    assert "ROUTER_CONFIG" in overview.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_every_option_has_a_description_and_every_command_an_example(command):
    sub = parser()
    for name in command:
        sub = next(
            a.choices[name]
            for a in sub._actions
            if isinstance(a.choices, dict) and name in a.choices
        )
    for action in sub._actions:
        assert action.help, f"router {' '.join(command)}: {action.option_strings or action.dest}"
    assert "example" in (sub.epilog or ""), command
    assert f"router {' '.join(command)}" in (sub.epilog or ""), command
    shown = router(*command, "--help")
    assert shown.returncode == 0 and "example" in shown.stdout


def test_mistakes_say_what_to_do_next(tmp_path):
    typo = router("srve")
    assert typo.returncode == 2
    assert typo.stderr.endswith("  next: did you mean `router serve`? Or run `router --help`\n")
    missing = router("check", "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert f"{tmp_path / 'nope.toml'}: file not found" in missing.stderr
    assert "pass --config PATH, or set ROUTER_CONFIG=PATH" in missing.stderr


def test_the_command_line_loads_no_web_stack():
    code = (
        "import sys, router.cli.main, router.cli.keys, router.cli.prices;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('starlette', 'aiohttp', 'uvicorn', 'sse_starlette')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout == "[]\n"


# ---- configuration that travels --------------------------------------------------------------


def test_a_routing_toml_copied_elsewhere_uses_the_shipped_providers(tmp_path):
    shutil.copy(REPO / "routing.toml", tmp_path / "routing.toml")
    r = router("check", "--config", str(tmp_path / "routing.toml"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    shipped = (REPO / "src" / "router" / "providers").resolve()
    assert r.stdout.splitlines()[1] == (
        f"providers: {shipped} (shipped with router: no provider files in {tmp_path / 'providers'})"
    )
    beside = write_config(tmp_path / "own")
    r = router("check", "--config", str(beside))
    assert r.stdout.splitlines()[1] == f"providers: {(tmp_path / 'own' / 'providers').resolve()}"


def test_an_explicit_providers_dir_that_is_missing_is_an_error_with_its_line(tmp_path):
    (tmp_path / "routing.toml").write_text('# mine\nproviders_dir = "elsewhere"\n')
    r = router("check", "--config", str(tmp_path / "routing.toml"))
    assert r.returncode == 2
    assert (
        f"{tmp_path / 'routing.toml'}:2: providers_dir {tmp_path / 'elsewhere'} is not a"
        in r.stderr
    )


# ---- make ----------------------------------------------------------------------------------


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    need_make = shutil.which("make")
    assert need_make is not None, "make is part of the documented set-up"
    # -o: the virtualenv counts as installed (the suite runs inside it), so nothing installs
    return subprocess.run(
        [need_make, "-s", "-o", ".venv/.installed-run", "-o", ".venv/.installed", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def test_make_alone_lists_every_target_with_its_description():
    plain = subprocess.run(["make", "-s"], capture_output=True, text=True, cwd=REPO, timeout=30)
    listed = dict(re.findall(r"^  (\S+) +(.+)$", plain.stdout, re.M))
    makefile = (REPO / "Makefile").read_text()
    phony = re.search(r"^\.PHONY: (.+)$", makefile, re.M)
    assert phony is not None
    for target in phony.group(1).split():
        assert listed.get(target), f"make help does not describe {target}"
    assert listed["run"].startswith("install the gateway alone")
    assert "pip install" not in plain.stdout


def test_make_run_installs_the_package_alone_and_test_adds_the_dev_extras():
    dry = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "run", "test"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    ).stdout
    installs = re.findall(r"pip install --quiet (.+)$", dry, re.M)
    assert installs == ["--upgrade pip", "-e .", "-e '.[dev,otel]'"]
    assert dry.index("-e .\n") < dry.index("router serve") < dry.index("-e '.[dev,otel]'")


def test_make_honours_router_config_host_port_and_workers(tmp_path):
    config = write_config(tmp_path, "[aliases]\nmine = ['demo/echo']\n")
    checked = make("check", env={"ROUTER_CONFIG": str(config)})
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{config}: ok (") and "1 aliases" in checked.stdout
    dry = make(
        "-n", "run", "PORT=9123", "HOST=127.0.0.2", "WORKERS=4", env={"ROUTER_CONFIG": str(config)}
    )
    assert dry.stdout.strip() == (
        f".venv/bin/router serve --config {config} --workers 4 --host 127.0.0.2 --port 9123"
    )


# ---- the banner --------------------------------------------------------------------------


def test_banner_names_what_to_try_and_its_curl_line_answers(tmp_path):
    shutil.copy(REPO / "routing.toml", tmp_path / "routing.toml")
    port = free_port()
    env = {"PORT": str(port), "OPENAI_API_KEY": "sk-upstream-secret", "HOME": str(tmp_path)}
    with subprocess.Popen(
        [sys.executable, "-m", "router", "serve"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], **env},
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        _check_banner(proc, port)


def _check_banner(proc: subprocess.Popen[str], port: int) -> None:
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline()]
        while not lines[-1].startswith("    curl ") and len(lines) < 20 and lines[-1]:
            lines.append(proc.stderr.readline())
        banner = "".join(lines)
        url = f"http://127.0.0.1:{port}"
        assert lines[0].startswith(f"router {__version__} listening on {url} (1 worker, config ")
        assert "  providers with keys: openai\n" in banner
        assert "sk-upstream-secret" not in banner
        assert "  master key:          sk-router-dev (the development key" in banner
        assert "  try the model:       demo/echo\n" in banner
        for page in ("/models/", "/status", "/metrics"):
            assert f"{url}{page}\n" in banner
        curl = lines[-1].strip()
        assert curl.startswith(f"curl -s {url}/v1/chat/completions ")
        answer = _paste(curl, url)
        assert '"content":"You said: Hello!"' in answer
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)


def _paste(line: str, url: str) -> str:
    """The banner's curl line run by a shell, as pasted, once the server answers."""
    assert shutil.which("curl"), "curl is needed to paste the banner's line"
    deadline = time.monotonic() + 20
    while True:
        r = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=20)
        if r.returncode == 0 and r.stdout:
            return r.stdout
        assert time.monotonic() < deadline, r.stderr
        time.sleep(0.1)
