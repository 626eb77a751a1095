"""Pure quality-control domain: standards, evaluation, statistics, record hashing.

Imports no I/O frameworks (no FastAPI, SQLAlchemy or OpenCV); takes values and
returns values. ``now`` is always an argument.
"""
