"""The edges: HTTP API, database, photo store, CLI and web app."""
