"""``qc`` console command. Each module below adds its commands to ``cli``."""

from service.cli.base import cli

# Command modules register themselves on import (one line per module).

main = cli

__all__ = ["main", "cli"]
