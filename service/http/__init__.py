"""The HTTP API: create_app, dependencies, the one error handler, routes/."""
