"""Many deployments of one model: traffic shared by weight, siblings before the chain moves on."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from chaos import ACME, POLICY
from fakes import FakeUpstream, Fault
from gateway_harness import Gateway, running_gateway, write_config
from kit import ask, attempts
from router.config import load_settings
from router.errors import ConfigError

REGIONS = ("east", "west", "north")


def deployments(urls: dict[str, str], weights: dict[str, float]) -> str:
    return "".join(
        f"""
[[deployments]]
name = "{name}"
model = "gpt-x"
provider = "acme"
upstream_model = "primary"
base_url = "{url}"
api_key_env = "{name.upper()}_KEY"
weight = {weights.get(name, 1.0)}
"""
        for name, url in urls.items()
    )


@contextmanager
def three(
    tmp_path: Path, weights: dict[str, float], extra: str = ""
) -> Iterator[tuple[dict[str, FakeUpstream], FakeUpstream, Gateway]]:
    with ExitStack() as stack:
        fakes = {n: stack.enter_context(FakeUpstream("openai", api_key=f"sk-{n}")) for n in REGIONS}
        backup = stack.enter_context(FakeUpstream("openai"))
        text = deployments({n: f.url for n, f in fakes.items()}, weights) + extra
        policy = POLICY.replace("cooldown = 0.5", "cooldown = 60.0")
        config = write_config(tmp_path, text, providers={"acme": ACME}, policy=policy)
        env = {f"{n.upper()}_KEY": f"sk-{n}" for n in REGIONS}
        env |= {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": backup.url}
        gw = stack.enter_context(running_gateway(config, env))
        gw.runtime.chooser.rand = random.Random(11).random
        yield fakes, backup, gw


def served(fakes: dict[str, FakeUpstream]) -> dict[str, int]:
    return {n: len(f.seen) for n, f in fakes.items()}


def test_deployments_share_traffic_by_weight_each_with_its_own_key(tmp_path):
    with three(tmp_path, {"east": 2.0}) as (fakes, backup, gw):
        codes = Counter(ask(gw, ["gpt-x"]).status_code for _ in range(120))
        assert codes == {200: 120}
        counts = served(fakes)
        assert sum(counts.values()) == 120
        assert 50 <= counts["east"] <= 70  # weight 2 of 4: ~60
        assert 20 <= counts["west"] <= 40 and 20 <= counts["north"] <= 40  # ~30 each
        assert {s.model for f in fakes.values() for s in f.seen} == {"primary"}
        assert all(s.outcome == "ok" for f in fakes.values() for s in f.seen)  # keys matched
        assert backup.seen == []


def test_a_failing_deployment_falls_back_to_its_siblings_before_the_chain(tmp_path):
    with three(tmp_path, {}) as (fakes, backup, gw):
        fakes["east"].always("*", Fault.status(500))
        fakes["west"].always("*", Fault.status(500))
        for _ in range(20):
            r = ask(gw, ["gpt-x", "acme/backup"], maxRetries=0)
            assert r.status_code == 200
            assert r.json()["provider"] == "north"
            *failed, answered = attempts(r)
            assert {target for target, _, _ in failed} <= {"east/primary", "west/primary"}
            assert answered == ("north/primary", "ok", "200")
        assert backup.seen == []
        # east and west opened their circuits after 3 failures each: now skipped
        assert len(fakes["east"].seen) == 3 and len(fakes["west"].seen) == 3
        assert sorted(attempts(r)) == [
            ("east/primary", "circuit_open", "-"),
            ("north/primary", "ok", "200"),
            ("west/primary", "circuit_open", "-"),
        ]
        fakes["north"].always("*", Fault.status(500))
        r = ask(gw, ["gpt-x", "acme/backup"], maxRetries=0)
        assert r.json()["provider"] == "acme" and r.json()["model"] == "backup"
        *siblings, answered = attempts(r)  # the siblings in their random order, then the chain
        assert sorted(siblings) == [
            ("east/primary", "circuit_open", "-"),
            ("north/primary", "server_error", "500"),
            ("west/primary", "circuit_open", "-"),
        ]
        assert answered == ("acme/backup", "ok", "200")


def test_an_alias_can_name_a_deployed_model(tmp_path):
    extra = '[aliases]\nsmart = ["acme/backup", "gpt-x"]\n'
    with three(tmp_path, {}, extra) as (_fakes, backup, gw):
        backup.always("*", Fault.status(400))
        r = ask(gw, ["smart"])
        assert r.status_code == 200
        assert r.json()["provider"] in REGIONS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "acme"\nmodel = "m"\nprovider = "acme"', "must be unique, not a provider's"),
        ('name = "a"\nmodel = "m"\nprovider = "nope"', "unknown provider 'nope'"),
        ('name = "a"\nmodel = "m"\nprovider = "acme"\nweight = 0', "weight must be positive"),
    ],
)
def test_bad_deployments_fail_at_start_up(tmp_path, text, message):
    config = write_config(tmp_path, f"[[deployments]]\n{text}\n", providers={"acme": ACME})
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(config, env={})
    assert "$.deployments[0]" in str(info.value)
