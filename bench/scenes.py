"""Synthetic scenes for the benchmarks: see ``inspection/synthetic.py``.

The generator lives in the package (the demo draws its photos with it); it
draws from physical sizes and never calls the measuring code.
"""

from demo.scenes import (  # noqa: F401
    SENSORS,
    Camera,
    Hole,
    Part,
    Scene,
    encode_jpeg,
    random_part,
    random_scene,
    render_scene,
    truth,
)
