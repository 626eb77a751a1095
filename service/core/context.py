"""``ServiceContext``: what every use case needs (settings, database, photo store, clock).

``create_app`` keeps one on ``app.state.ctx``; the CLI opens its own with ``open_context``.
No FastAPI, no click: the same context serves HTTP, the CLI and in-process callers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from service.core.clock import Clock, FrozenClock, SystemClock
from service.settings import Settings
from service.storage.db import Database, open_database
from service.storage.store import PhotoStore

__all__ = ["ServiceContext", "clock_for", "open_context"]


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    store: PhotoStore
    clock: Clock = field(default_factory=SystemClock)

    def now(self) -> dt.datetime:
        return self.clock.now()

    def close(self) -> None:
        self.db.dispose()


def open_context(settings: Settings, *, clock: Clock | None = None) -> ServiceContext:
    """Open the database and photo store named by ``settings`` (does not migrate)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return ServiceContext(
        settings=settings,
        db=open_database(settings.resolved_database_url),
        store=PhotoStore(settings.photos_dir),
        clock=clock or clock_for(settings),
    )


def clock_for(settings: Settings) -> Clock:
    """The system clock, or a frozen one when ``KIPIMO_FROZEN_TIME`` is set."""
    if settings.frozen_time is not None:
        at = settings.frozen_time
        return FrozenClock(at if at.tzinfo else at.replace(tzinfo=dt.UTC))
    return SystemClock()
