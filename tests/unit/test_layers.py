"""Imports point inward (docs/architecture.md): qc imports nothing of inspection/service nor I/O frameworks;
inspection never imports service; inside service, core and storage know nothing of HTTP, the web, the CLI
or reports; the demo lives beside the package and nothing in it imports the demo; nothing imports torch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# folder -> module prefixes its files may not import ("fastapi" also forbids "fastapi.routing", ...)
FORBIDDEN = {
    "qc": {"inspection", "service", "demo", "fastapi", "starlette", "sqlalchemy", "cv2", "onnxruntime", "torch",
           "requests", "httpx", "socket", "sqlite3", "click"},
    "inspection": {"service", "demo", "fastapi", "starlette", "sqlalchemy", "torch", "click"},
    "service": {"torch", "demo"},
    "service/core": {"fastapi", "starlette", "click", "uvicorn", "service.http", "service.web", "service.cli",
                     "service.reports"},
    "service/storage": {"fastapi", "starlette", "click", "service.core", "service.http", "service.web",
                        "service.cli", "service.reports", "inspection"},
    "service/http": {"click", "service.cli"},
    "service/web": {"click", "service.cli"},
    "service/reports": {"fastapi", "starlette", "click", "service.http", "service.cli"},
}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, with each of its dotted prefixes ('a.b.c' -> a, a.b, a.b.c)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    full: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            full.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            full.add(node.module)
            full.update(f"{node.module}.{a.name}" for a in node.names)
    return {".".join(name.split(".")[:i]) for name in full for i in range(1, name.count(".") + 2)}


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_point_inward(folder):
    offenders = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        bad = imported_modules(path) & FORBIDDEN[folder]
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_every_service_room_is_a_package_the_wheel_will_carry():
    rooms = [p for p in (ROOT / "service").rglob("*") if p.is_dir() and any(p.glob("*.py"))]
    assert [str(p.relative_to(ROOT)) for p in rooms if not (p / "__init__.py").exists()] == []


def test_the_checker_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import cv2\nfrom sqlalchemy.orm import Session\n"
                      "from service import http\nfrom . import sibling\n")
    found = imported_modules(sample)
    assert {"cv2", "sqlalchemy", "sqlalchemy.orm", "service.http"} <= found
    assert not any("sibling" in name for name in found)
    assert found & FORBIDDEN["service/core"] == {"service.http"}
