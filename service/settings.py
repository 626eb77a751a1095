"""One settings object, read from the environment (prefix ``KIPIMO_``) and passed in."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

# The repository's data folders, used when the package runs from a checkout.
REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KIPIMO_", frozen=True)

    data_dir: Path = Path("kipimo-data")
    database_url: str | None = None  # default: SQLite in data_dir
    checklists_dir: Path = REPO_ROOT / "checklists"
    models_dir: Path = REPO_ROOT / "models"
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

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'kipimo.sqlite3').resolve()}"

    @property
    def photos_dir(self) -> Path:
        return self.data_dir / "photos"
