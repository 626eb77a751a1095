"""One settings object, read from the environment (prefix ``KIPIMO_``) and passed in."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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
    max_body_bytes: int = 40 * 1024 * 1024
    onnx_threads: int = 1
    # KIPIMO_VISION=off: photos are only checked (type, size, integrity from the header), not
    # inspected; photo checks come out inconclusive. For ingest benchmarks and bulk imports.
    vision: bool = True
    # KIPIMO_FROZEN_TIME=2026-03-02T09:00:00Z: every clock reading is this instant (reproducible runs, tests)
    frozen_time: dt.datetime | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # KIPIMO_WEBHOOK_URL=https://...: each stored submission and each new alert is POSTed there as JSON
    # (from the outbox, with retries; see service/core/outbox.py). Unset: no webhook.
    webhook_url: str | None = None
    webhook_timeout_s: float = 10.0

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kipimo.sqlite3').resolve()}"

    @property
    def photos_dir(self) -> Path:
        return self.data_dir / "photos"
