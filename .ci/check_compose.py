"""What docker-compose.yml promises, checked on the resolved configuration (`docker compose config`,
no engine needed): api and worker share one upstream configuration; the API is published on
127.0.0.1 unless ASSISTD_BIND says otherwise; the ollama profile adds Ollama, which is the default
upstream; a host Ollama is reachable as host.docker.internal; ASSISTD_API_KEY reaches the API.

Usage: python .ci/check_compose.py docker compose   (the Compose v2 command line to use)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

COMPOSE = sys.argv[1:] or ["docker", "compose"]
ENV_KEYS = ("ASSISTD_DATABASE_URL", "ASSISTD_UPSTREAM_BASE_URL", "ASSISTD_UPSTREAM_API_KEY", "ASSISTD_UPSTREAM_ROUTES")


def config(*args: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_") and k != "COMPOSE_PROFILES"}
    out = subprocess.run(
        [*COMPOSE, "-f", "docker-compose.yml", *args, "config", "--format", "json"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def check(cond: bool, what: str) -> None:
    if not cond:
        sys.exit(f"check_compose: {what}")


plain = config()
services = plain["services"]
check(set(services) == {"api", "worker", "db"}, f"default services: {sorted(services)}")
api, worker = services["api"], services["worker"]
for key in ENV_KEYS:
    check(api["environment"].get(key) == worker["environment"].get(key), f"api and worker differ on {key}")
check(api["environment"]["ASSISTD_UPSTREAM_BASE_URL"] == "http://ollama:11434/v1", "default upstream is not ollama")
[port] = api["ports"]
check(port["host_ip"] == "127.0.0.1" and port["published"] == "8000", f"api published as {port}")
check(not api["environment"].get("ASSISTD_API_KEY"), "an API key is set by default")
for svc in (api, worker):
    hosts = [h.replace(":", "=", 1) if "=" not in h else h for h in svc.get("extra_hosts", [])]
    check("host.docker.internal=host-gateway" in hosts, "no host.docker.internal for a host Ollama")

with_ollama = config("--profile", "ollama")
check("ollama" in with_ollama["services"], "the ollama profile adds no ollama service")
check(with_ollama["services"]["api"]["depends_on"]["ollama"]["required"] is False, "api must not require ollama")

host = "http://host.docker.internal:11434/v1"
key = "sk-compose-check-0123456789abcdef"
custom = config(ASSISTD_UPSTREAM_BASE_URL=host, ASSISTD_BIND="0.0.0.0", ASSISTD_API_KEY=key)["services"]
check(custom["api"]["environment"]["ASSISTD_UPSTREAM_BASE_URL"] == host, "api ignores ASSISTD_UPSTREAM_BASE_URL")
check(custom["worker"]["environment"]["ASSISTD_UPSTREAM_BASE_URL"] == host, "worker ignores ASSISTD_UPSTREAM_BASE_URL")
check(custom["api"]["ports"][0]["host_ip"] == "0.0.0.0", "ASSISTD_BIND is not the published address")
check(custom["api"]["environment"]["ASSISTD_API_KEY"] == key, "ASSISTD_API_KEY does not reach the api")
print(
    "check_compose: OK (shared upstream settings, 127.0.0.1 by default, ollama profile, host.docker.internal, API key)"
)
