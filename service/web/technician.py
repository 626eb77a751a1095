"""The technician app: a static progressive web app under ``/app/``.

No build step: the files in ``service/web/app/`` are served as they are. Every
response carries ``Cache-Control: no-cache`` (revalidate, so a new release is
picked up on the next online visit) and a strict Content-Security-Policy (only
this origin; no inline script, no third-party CDN). Offline use is the service
worker's job (``sw.js``), not HTTP caching.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from service.settings import Settings

APP_DIR = Path(__file__).resolve().parent / "app"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".webmanifest": "application/manifest+json; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob: data:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "worker-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
])


def shell_files(app_dir: Path = APP_DIR) -> list[Path]:
    """Every file the app is made of (what the service worker precaches)."""
    return sorted(p for p in app_dir.rglob("*") if p.is_file() and p.suffix in CONTENT_TYPES)


def _resolve(app_dir: Path, rel: str) -> Path | None:
    """The file for URL path ``rel``; None for anything missing or outside ``app_dir``."""
    target = (app_dir / (rel or "index.html")).resolve()
    if not target.is_relative_to(app_dir) or not target.is_file() or target.suffix not in CONTENT_TYPES:
        return None
    return target


@lru_cache(maxsize=64)
def _read(path: Path, mtime_ns: int, size: int) -> tuple[bytes, str]:
    """File bytes and ETag, re-read only when the file changes (mtime/size are the cache key)."""
    del mtime_ns, size
    body = path.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def mount_technician_app(app: FastAPI, settings: Settings, app_dir: Path = APP_DIR) -> None:
    """Serve ``app_dir`` at ``/app/`` (``/app`` redirects there, keeping the #token fragment)."""
    del settings  # the app reads everything it needs from the API at run time
    root = app_dir.resolve()

    @app.get("/app", include_in_schema=False)
    def app_root() -> RedirectResponse:
        # Browsers keep the URL fragment across a redirect, so /app#token=... still signs in.
        return RedirectResponse("/app/", status_code=308)

    @app.api_route("/app/{rel:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def app_file(rel: str, request: Request) -> Response:
        path = _resolve(root, rel)
        if path is None:  # same error shape as the API's handler
            return JSONResponse({"error": f"no such file in the technician app: /app/{rel}"}, status_code=404)
        stat = path.stat()
        body, etag = _read(path, stat.st_mtime_ns, stat.st_size)
        headers = {
            "Cache-Control": "no-cache",
            "ETag": etag,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": CSP,
            "Referrer-Policy": "no-referrer",
        }
        if path.name == "sw.js":
            headers["Service-Worker-Allowed"] = "/app/"
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=CONTENT_TYPES[path.suffix], headers=headers)
