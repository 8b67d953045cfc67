"""schemathesis against a real `router serve` process (the demo provider only: a model of a
provider without a key answers 503 `provider_not_configured` by design, and schemathesis
harvests model names from /v1/models): every operation of
/openapi.json fuzzed from its schemas and examples, positive and negative bodies, checked for
no server error (5xx) and for status, content type and body (SSE events included) conforming
to the document. Bounded (examples per operation) and deterministic (a seed)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import httpx

from gateway_harness import MASTER_KEY, write_config
from served import serving

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


def test_schemathesis_finds_nothing(tmp_path):
    config = write_config(tmp_path)
    for provider in (tmp_path / "providers").glob("*.toml"):
        if provider.name != "demo.toml":
            provider.unlink()
    with serving(config, {}, workers=1) as served:
        doc = httpx.get(f"{served.url}/openapi.json").json()
        documented = {f"{m.upper()} {path}" for path, item in doc["paths"].items() for m in item}
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{served.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {MASTER_KEY}",
                "--checks",
                CHECKS,
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "20",
                "--seed",
                "17",
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--request-timeout",
                "20",
                "--no-color",
                "--report",
                "junit",
                "--report-junit-path",
                str(tmp_path / "junit.xml"),
            ],
            capture_output=True,
            text=True,
            timeout=150,
            cwd=tmp_path,
        )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-6000:]
    cases = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    tested = {case.get("name"): list(case) for case in cases}
    # the CLI leaves out the operation that serves the document it was given
    assert set(tested) == documented - {"GET /openapi.json"}
    assert len(tested) == 33
    assert {name: found for name, found in tested.items() if found} == {}  # no failure, no error
    assert "Test cases:" in out and " failed" not in out.split("Test cases:")[1], out[-3000:]
