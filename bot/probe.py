"""``python -m bot.probe``: exit 0 when the bot's ``/healthz`` on this machine answers 200.

For container health checks (the Dockerfile's ``HEALTHCHECK``) where no curl is installed. It
asks ``http://127.0.0.1:<port>/healthz``, the port being ``METRICS_PORT`` when set, else the
webhook port in webhook mode (``WEBHOOK_PORT``, default 8443). Standard library only, so it
starts in a few milliseconds and never loads the bot. Prints one line: the answer's body (it
holds no secret) or why there was none.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping

TIMEOUT = 4.0  # seconds; under the HEALTHCHECK's own timeout
DEFAULT_WEBHOOK_PORT = "8443"


def health_port(env: Mapping[str, str]) -> str | None:
    """The local port that answers ``/healthz``, or None when none is configured."""
    metrics = env.get("METRICS_PORT", "").strip()
    if metrics:
        return metrics
    if env.get("WEBHOOK_URL", "").strip():
        return env.get("WEBHOOK_PORT", "").strip() or DEFAULT_WEBHOOK_PORT
    return None


def probe(env: Mapping[str, str], *, timeout: float = TIMEOUT) -> tuple[bool, str]:
    """Ask ``/healthz``; (healthy, one line saying what came back)."""
    port = health_port(env)
    if port is None:
        return False, "nothing serves /healthz: set METRICS_PORT (or run in webhook mode)"
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status == 200, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:  # 503: the body says which dependency failed
        return False, exc.read().decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        return False, f"no answer on port {port}: {type(exc).__name__}"


def main() -> None:
    """Exit 0 when healthy, 1 otherwise."""
    healthy, said = probe(os.environ)
    print(" ".join(said.split()))
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
