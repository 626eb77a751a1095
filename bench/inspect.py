"""Benchmark: full inspection of a 12 MP JPEG vs. the floor (bench/inspect_bench.py).

    .venv/bin/python bench/inspect.py [--repeat 7]

This file's name is also the standard library's ``inspect``, and every script
run from bench/ has this folder first on ``sys.path``; so when it is imported
*as* ``inspect`` (by numpy, dataclasses, ...) it hands over the real module.
"""

import os
import sys

if __name__ == "inspect":
    import importlib.util

    _spec = importlib.util.spec_from_file_location("inspect", os.path.join(os.path.dirname(os.__file__), "inspect.py"))
    assert _spec is not None and _spec.loader is not None
    _real = importlib.util.module_from_spec(_spec)
    sys.modules["inspect"] = _real
    _spec.loader.exec_module(_real)
elif __name__ == "__main__":
    from inspect_bench import main

    sys.exit(main())
