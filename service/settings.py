"""One settings object, read from the environment (prefix ``KIPIMO_``) and passed in."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The checkout's top level (checklists/, models/ and demo/ live there when the package runs from one).
REPO_ROOT = Path(__file__).resolve().parent.parent
# An installed wheel carries checklists/ and models/ here (setup.py copies them in); a checkout has none.
SHIPPED_DIR = Path(__file__).resolve().parent / "_shipped"


def shipped_folder(name: str) -> Path:
    """``checklists`` or ``models``: the wheel's copy when installed, else the checkout's folder.

    The installed copy wins because an installed ``service`` sits in site-packages, where a
    ``models/`` beside it would be some other distribution's package, not ours.
    """
    installed = SHIPPED_DIR / name
    return installed if installed.is_dir() else REPO_ROOT / name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KIPIMO_", frozen=True)

    data_dir: Path = Path("kipimo-data")
    database_url: str | None = None  # default: SQLite in data_dir
    checklists_dir: Path = shipped_folder("checklists")  # KIPIMO_CHECKLISTS_DIR overrides
    models_dir: Path = shipped_folder("models")  # KIPIMO_MODELS_DIR overrides
    max_pixels: int = 50_000_000
    # Decoded photos share KIPIMO_DECODE_MEMORY_MB of memory (inspection/budget.py; default: a quarter of what
    # this process may use, the cgroup limit or RAM); a decode that cannot start within KIPIMO_DECODE_WAIT_S
    # because other photos hold the budget is answered 503 with Retry-After.
    decode_memory_mb: int | None = Field(default=None, ge=1)
    decode_wait_s: float = Field(default=30.0, ge=0)
    max_body_bytes: int = 40 * 1024 * 1024
    onnx_threads: int = 1
    # KIPIMO_VISION=off: photos are only checked (type, size, integrity from the header), not
    # inspected; photo checks come out inconclusive. For ingest benchmarks and bulk imports.
    vision: bool = True
    # KIPIMO_FROZEN_TIME=2026-03-02T09:00:00Z: every clock reading is this instant (reproducible runs, tests)
    frozen_time: dt.datetime | None = None
    # how far a record's captured_at may lie ahead of the server's clock (phones set by hand drift)
    clock_skew_s: float = 600
    host: str = "127.0.0.1"
    port: int = 8000
    # How `qc serve` bounds idle and slow clients (service/http/serving.py; docs/deploy.md): a request's
    # headers must arrive within KIPIMO_HEADER_TIMEOUT_S of the connection (or the previous response);
    # idle keep-alive connections close after KIPIMO_KEEP_ALIVE_S; above KIPIMO_MAX_CONNECTIONS open
    # connections (clipped below the open-file limit) a new one gets 503; KIPIMO_BACKLOG waits unaccepted.
    header_timeout_s: float = 10.0
    keep_alive_s: int = 5
    max_connections: int = 2048
    backlog: int = 2048
    # Failed authentication, per client address (service/http/ratelimit.py): KIPIMO_AUTH_FAILURE_BURST
    # wrong credentials in a row, then one more each KIPIMO_AUTH_FAILURE_REFILL_S; beyond, 429 + Retry-After.
    auth_failure_burst: int = 10
    auth_failure_refill_s: float = 6.0
    # KIPIMO_WEBHOOK_URL=https://...: each stored submission and each new alert is POSTed there as JSON
    # (from the outbox, with retries; see service/core/outbox.py). Unset: no webhook.
    webhook_url: str | None = None
    webhook_timeout_s: float = 10.0
    # A dashboard sign-in ends after this long without a request, and this long after it began however busy
    # (service/core/dashboard_sessions.py); the service clock decides, so a frozen clock freezes them too.
    dashboard_idle_minutes: int = Field(default=30, ge=1)
    dashboard_session_hours: int = Field(default=12, ge=1)
    # `qc serve --proxy-headers`: believe X-Forwarded-Proto/-For, but only from these addresses (the TLS
    # proxy's); then a request that reached the proxy over https is https here (the dashboard's Secure cookie).
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kipimo.sqlite3').resolve()}"

    @property
    def photos_dir(self) -> Path:
        return self.data_dir / "photos"
