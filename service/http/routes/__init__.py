"""HTTP routes, one module per resource; ``service.http.app.create_app`` includes them under ``/api/v1``."""
