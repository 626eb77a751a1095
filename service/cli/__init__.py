"""``qc`` console command. Each module below adds its commands to ``cli``."""

# Command modules register themselves on import (one line per module).
import service.cli.sampling  # noqa: F401
from service.cli import db, init, nodes, serve, standards, store, tokens  # noqa: F401  (record spine)
from service.cli import demo  # noqa: F401  (the demo)
from service.cli.base import cli

main = cli

__all__ = ["main", "cli"]
