"""Use cases: submissions, standards, auth, alerts, analytics; ServiceContext with the clock. No FastAPI, no click."""
