"""Reading standards from the checklists/ folder (the file I/O that qc/ does not do)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from qc.errors import Problem, StandardInvalid
from qc.standards import Standard, parse_standard

LIBRARY_DIR = "_library"


def load_library(checklists_dir: Path) -> dict[str, dict[str, Any]]:
    """The shared question sets, by file stem (``include: [stem]``)."""
    library: dict[str, dict[str, Any]] = {}
    for path in sorted((checklists_dir / LIBRARY_DIR).glob("*.yaml")):
        library[path.stem] = _read_yaml(path)
    return library


def load_standard_file(path: Path, *, checklists_dir: Path | None = None) -> Standard:
    """Parse one standard file; ``include`` resolves against the folder's ``_library``."""
    root = checklists_dir or _guess_checklists_dir(path)
    library = load_library(root) if root else {}
    standard = parse_standard(_read_yaml(path), source=str(path), library=library)
    expected = f"v{standard.version}"
    if path.stem.startswith("v") and path.stem != expected:
        problem = Problem("version", f"file is named {path.name} but declares version {standard.version}")
        raise StandardInvalid(f"{path}: invalid standard", [problem])
    return standard


def load_shipped_standards(checklists_dir: Path) -> list[Standard]:
    """Every ``<product>/v<N>.yaml`` under ``checklists_dir``, ordered by product then version."""
    paths = [p for p in checklists_dir.glob("*/v*.yaml") if p.parent.name != LIBRARY_DIR]
    standards = [load_standard_file(p, checklists_dir=checklists_dir) for p in paths]
    return sorted(standards, key=lambda s: (s.product, s.version))


def _guess_checklists_dir(path: Path) -> Path | None:
    for parent in path.resolve().parents:
        if (parent / LIBRARY_DIR).is_dir():
            return parent
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise StandardInvalid(f"{path}: cannot read", [Problem("", str(exc))]) from exc
    except yaml.YAMLError as exc:
        raise StandardInvalid(f"{path}: not valid YAML", [Problem("", str(exc))]) from exc
    if not isinstance(data, dict):
        raise StandardInvalid(f"{path}: invalid standard", [Problem("", "expected a mapping of fields")])
    return data
