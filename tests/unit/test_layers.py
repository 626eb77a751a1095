"""Imports point inward: qc imports nothing of inspection/service nor I/O frameworks;
inspection never imports service; nothing at runtime imports torch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "qc": {"inspection", "service", "fastapi", "starlette", "sqlalchemy", "cv2", "onnxruntime", "torch",
           "requests", "httpx", "socket", "sqlite3"},
    "inspection": {"service", "fastapi", "starlette", "sqlalchemy", "torch"},
    "service": {"torch"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_inward(package):
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_modules(path) & FORBIDDEN[package]
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_the_checker_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("import cv2\nfrom sqlalchemy.orm import Session\nfrom . import sibling\n")
    assert imported_modules(sample) == {"cv2", "sqlalchemy"}
