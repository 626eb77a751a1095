"""``qc`` console command. Each module below adds its commands to ``cli``."""

# Command modules register themselves on import (one line per module).
import service.cli.report  # noqa: F401  (report, alerts)
import service.cli.sampling  # noqa: F401
import service.cli.train  # noqa: F401  (train anomaly, score)
import service.cli.vision  # noqa: F401  (print-card, inspect)
from service.cli import db, init, nodes, outbox, serve, standards, store, tokens  # noqa: F401
from service.cli.base import cli

main = cli

__all__ = ["main", "cli"]
