"""Packaging beyond pyproject.toml: the wheel carries the top-level ``checklists/`` and ``models/``.

The two folders stay at the repository's top level (the project's layout). ``build_py`` copies them
into the built package as ``service/_shipped/{checklists,models}``, where ``service.settings`` finds
them in an installed copy. An editable install skips the copy: it reads the checkout's folders.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("checklists", "models")  # must match service.settings.SHIPPED_DIR's contents


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "service" / "_shipped"
        shutil.rmtree(target, ignore_errors=True)  # no stale file from an earlier build in build/
        for name in SHIPPED:
            shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__", ".*"))


setup(cmdclass={"build_py": BuildPyWithData})
