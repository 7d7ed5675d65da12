"""The deployment files agree with the code: compose, the proxy, Prometheus, the Dockerfile."""

from __future__ import annotations

import re
from typing import Any

import yaml

from bot.config import Settings
from bot.metrics import Metrics
from bot.ops import DEFAULT_WEBHOOK_PORT
from tests.e2e_support import REPO

BOTS = ("bot1", "bot2")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return data


def test_compose_runs_postgres_two_replicas_and_a_proxy() -> None:
    services = compose()["services"]
    assert {"db", "bot1", "bot2", "proxy"} <= set(services)
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    for name in BOTS:
        bot = services[name]
        assert bot["env_file"] == ".env"
        assert bot["depends_on"]["db"] == {"condition": "service_healthy"}
        env = bot["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://chatops:")
        assert env["DATABASE_URL"].endswith("@db:5432/chatops")
        assert env["WEBHOOK_PORT"] == str(DEFAULT_WEBHOOK_PORT)
        assert env["WEBHOOK_URL"].startswith("${WEBHOOK_URL:?"), "required, never defaulted"
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), "one key list for both"
        unknown = {key for key in env if key.lower() not in Settings.model_fields}
        assert not unknown, f"not settings of the bot: {unknown}"
    # One process migrates first: the second starts once the first is healthy.
    assert services["bot2"]["depends_on"]["bot1"] == {"condition": "service_healthy"}


def test_the_proxy_sends_to_both_replicas_and_keeps_metrics_inside() -> None:
    proxy = compose()["services"]["proxy"]
    mounted = [v.split(":")[0] for v in proxy["volumes"]]
    assert "./deploy/Caddyfile" in mounted
    caddyfile = (REPO / "deploy" / "Caddyfile").read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams is not None
    assert upstreams.group(1).split() == [f"{b}:{DEFAULT_WEBHOOK_PORT}" for b in BOTS]
    assert "respond /metrics* 404" in caddyfile


def test_prometheus_scrapes_each_replica() -> None:
    prometheus = compose()["services"]["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    config = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"{b}:{DEFAULT_WEBHOOK_PORT}" for b in BOTS]


def test_the_image_exposes_its_ports_and_checks_its_health() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    metrics_port = re.search(r"METRICS_PORT=(\d+)", dockerfile)
    assert metrics_port is not None
    expose = re.search(r"^EXPOSE (.+)$", dockerfile, re.M)
    assert expose is not None
    assert expose.group(1).split() == [str(DEFAULT_WEBHOOK_PORT), metrics_port.group(1)]
    assert 'CMD ["python", "-m", "bot.probe"]' in dockerfile
    assert "HEALTHCHECK --interval=30s" in dockerfile


def test_the_readme_lists_every_metric_and_the_compose_commands() -> None:
    readme = (REPO / "README.md").read_text()
    families = list(Metrics().registry.collect())
    assert len(families) >= 10
    for family in families:
        assert f"`{family.name}" in readme, f"{family.name} is not in the README"
    assert "## Operations: metrics, health, compose" in readme
    assert "docker compose up -d --build" in readme
