"""Web front ends served by the API process (technician app, dashboards)."""

from __future__ import annotations

from fastapi import FastAPI

from service.settings import Settings
from service.web.dashboard.routes import router as dashboard_router
from service.web.technician import mount_technician_app

__all__ = ["mount_web"]


def mount_web(app: FastAPI, settings: Settings) -> None:
    """Attach the web apps to ``app``. Called once by ``create_app``."""
    mount_technician_app(app, settings)
    app.include_router(dashboard_router)  # HTML pages for managers and auditors
