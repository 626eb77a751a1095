"""The demo network (``make demo``): nodes, records, photos rendered on the calibration card, bulk
synthetic records for benchmarks, and the scene generator. Lives beside the package, not in the wheel."""
