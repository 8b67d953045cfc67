"""The container and deployment files are valid and agree with the drain: compose.yaml checked
by Debian's docker-compose, the Kubernetes manifests built offline by `kubectl kustomize`,
every routing.toml they ship decoded by the gateway's own config Structs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import msgspec
import yaml

from conftest import need
from router.config import Settings

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "k8s"


def _settings(text: str) -> Settings:
    return msgspec.toml.decode(text.encode(), type=Settings)  # typos fail here


def _docs() -> dict[str, dict[str, object]]:
    docs: dict[str, dict[str, object]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


def test_compose_file_is_valid_for_docker_compose():
    need(shutil.which("docker-compose") is not None, "Debian's docker-compose is not installed")
    env = {**os.environ, "ROUTER_MASTER_KEY": "k", "POSTGRES_PASSWORD": "p"}
    env["GRAFANA_ADMIN_PASSWORD"] = "g"
    run = subprocess.run(
        ["docker-compose", "-f", str(REPO / "compose.yaml"), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


def test_compose_wires_the_companions_and_outlasts_the_drain():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"router", "postgres", "redis", "prometheus", "grafana"}
    router = services["router"]
    assert router["read_only"] is True and router["stop_signal"] == "SIGTERM"
    routing = _settings((REPO / "deploy/compose/routing.toml").read_text())
    assert int(router["stop_grace_period"].rstrip("s")) > routing.shutdown.drain_timeout
    assert routing.storage.database.startswith("postgresql://router@postgres")
    mounts = [m.split(":")[0] for s in services.values() for m in s.get("volumes", [])]
    assert "./deploy/prometheus/alerts.yml" in mounts
    assert "./deploy/grafana/router.json" in mounts
    assert "rule_files" in yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())


def test_kubernetes_manifests_build_offline_with_kustomize():
    need(shutil.which("kubectl") is not None, "kubectl is not installed")
    run = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(run.stdout))
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Secret",
            "Service",
        ]
    )


def test_kubernetes_probes_grace_and_config_agree_with_the_drain():
    docs = _docs()
    routing = _settings(docs["ConfigMap"]["data"]["routing.toml"])  # type: ignore[index]
    pod = docs["Deployment"]["spec"]["template"]["spec"]  # type: ignore[index]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["terminationGracePeriodSeconds"] > routing.shutdown.drain_timeout + 2
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["envFrom"] == [{"secretRef": {"name": docs["Secret"]["metadata"]["name"]}}]  # type: ignore[index]
    selector = docs["Deployment"]["spec"]["selector"]["matchLabels"]  # type: ignore[index]
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector  # type: ignore[index]
    assert docs["Service"]["spec"]["selector"] == selector  # type: ignore[index]
    target = docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]  # type: ignore[index]
    assert (target["kind"], target["name"]) == ("Deployment", "router")


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_tini():
    text = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    assert re.search(r"^USER 10001$", text, re.M)
    assert "/healthz" in text.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    assert re.search(r'^ENTRYPOINT \["/usr/bin/tini", "--", "router", "serve"\]$', text, re.M)
    baked = _settings((REPO / "deploy/routing.container.toml").read_text())
    assert (baked.server.host, baked.storage.database) == ("0.0.0.0", "/data/router.db")
    assert baked.server.dev_master_key is None
